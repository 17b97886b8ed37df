//! An entry: the signed unit of content, its references, and its canonical encoding.
//!
//! Layout (all integers big-endian; see `docs/protocol.md` for the full specification):
//!
//! ```text
//! content   = version:u8 network:[32] author:[32] created_at_ms:u64 kind:u8
//!             ref_count:u8 (relation:u8 id:[32])* body
//! entry     = content signature:[64]
//! signed    = SIGNING_CONTEXT || content
//! entry id  = BLAKE3(entry)
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::body::{Body, EntryKind};
use crate::codec::{saturating_count, Reader, Writer};
use crate::error::EntryError;
use crate::ids::{AuthorId, EntryId, NetworkId};
use crate::limits::{ENTRY_BYTES_MAX, REFS_COUNT_MAX};
use crate::validate::parse_author_key;

/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u8 = 1;

/// Prefixed to the content before signing, so a Staffroom signature can never be replayed as a
/// signature over some other protocol's message (and vice versa).
pub const SIGNING_CONTEXT: &[u8] = b"staffroom/entry/v1\n";

/// How one entry points at another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// This entry is an edit that replaces the target (honoured only for the same author).
    Supersedes = 1,
    /// This enquiry note belongs to the target enquiry.
    InEnquiry = 2,
    /// This comment is about the target entry.
    ReplyTo = 3,
    /// A "see also" link.
    Related = 4,
    /// This membership operation causally follows the target operation (its author had seen
    /// it). Only on membership entries.
    After = 5,
}

impl Relation {
    const ALL: [Relation; 5] = [
        Relation::Supersedes,
        Relation::InEnquiry,
        Relation::ReplyTo,
        Relation::Related,
        Relation::After,
    ];

    fn from_tag(tag: u8) -> Result<Self, EntryError> {
        Self::ALL
            .into_iter()
            .find(|r| *r as u8 == tag)
            .ok_or(EntryError::BadReferences("unknown relation"))
    }
}

/// A typed reference to another entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ref {
    pub relation: Relation,
    pub id: EntryId,
}

/// An entry before it is signed: what the author writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub network: NetworkId,
    pub created_at_ms: u64,
    pub refs: Vec<Ref>,
    pub body: Body,
}

impl Draft {
    /// Signs the draft as `key`'s author. References are put into canonical order.
    pub fn sign(self, key: &SigningKey) -> Entry {
        let mut refs = self.refs;
        refs.sort();
        refs.dedup();
        let mut entry = Entry {
            network: self.network,
            author: AuthorId(key.verifying_key().to_bytes()),
            created_at_ms: self.created_at_ms,
            refs,
            body: self.body,
            signature: [0; 64],
        };
        entry.signature = key.sign(&entry.signed_message()).to_bytes();
        entry
    }
}

/// A signed entry. Construct one with [`Draft::sign`] or [`Entry::decode`]; accept one from
/// anyone else only through [`crate::verify_entry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub network: NetworkId,
    pub author: AuthorId,
    pub created_at_ms: u64,
    pub refs: Vec<Ref>,
    pub body: Body,
    #[serde(with = "signature_hex")]
    pub signature: [u8; 64],
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        self.body.kind()
    }

    /// The target of a reference with this relation, if the entry has one.
    pub fn reference(&self, relation: Relation) -> Option<EntryId> {
        self.refs
            .iter()
            .find(|r| r.relation == relation)
            .map(|r| r.id)
    }

    fn encode_content(&self, w: &mut Writer) {
        w.u8(FORMAT_VERSION);
        w.bytes(self.network.as_bytes());
        w.bytes(self.author.as_bytes());
        w.u64(self.created_at_ms);
        w.u8(self.kind().tag());
        // Total, like every field: more than 255 references (never valid) are cut, and
        // verification refuses the entry.
        let count = saturating_count(self.refs.len());
        w.u8(count);
        for r in &self.refs[..usize::from(count)] {
            w.u8(r.relation as u8);
            w.bytes(r.id.as_bytes());
        }
        self.body.encode(w);
    }

    /// The bytes the author signs: [`SIGNING_CONTEXT`] followed by the content.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.bytes(SIGNING_CONTEXT);
        self.encode_content(&mut w);
        w.finish()
    }

    /// The canonical encoding: content then signature. This is what is stored and gossiped.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        self.encode_content(&mut w);
        w.bytes(&self.signature);
        w.finish()
    }

    /// The entry's id: BLAKE3 of its canonical encoding.
    pub fn id(&self) -> EntryId {
        EntryId(*blake3::hash(&self.encode()).as_bytes())
    }

    /// Parses a canonical encoding, enforcing sizes as it reads. It does not check the
    /// signature or field rules: that is [`crate::verify_entry`]'s job.
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(EntryError::TooLarge {
                len: bytes.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != FORMAT_VERSION {
            return Err(EntryError::UnknownVersion(version));
        }
        let network = NetworkId(r.array("network")?);
        let author = AuthorId(r.array("author")?);
        let created_at_ms = r.u64("created_at_ms")?;
        let kind = EntryKind::from_tag(r.u8("kind")?)?;
        let ref_count = r.u8("references")? as usize;
        if ref_count > REFS_COUNT_MAX {
            return Err(EntryError::TooMany {
                field: "references",
                count: ref_count,
                max: REFS_COUNT_MAX,
            });
        }
        let mut refs = Vec::with_capacity(ref_count);
        for _ in 0..ref_count {
            let relation = Relation::from_tag(r.u8("references")?)?;
            refs.push(Ref {
                relation,
                id: EntryId(r.array("references")?),
            });
        }
        let body = Body::decode(kind, &mut r)?;
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Entry {
            network,
            author,
            created_at_ms,
            refs,
            body,
            signature,
        })
    }

    /// Checks the signature with strict ed25519 verification (no malleable or small-order
    /// signatures, no weak keys), so every node reaches the same verdict.
    pub fn verify_signature(&self) -> Result<(), EntryError> {
        let key = parse_author_key(&self.author)?;
        verify_strict(&key, &self.signed_message(), &self.signature)
    }

    /// Reference rules: canonical order, no duplicates, and what each kind requires.
    pub fn check_references(&self) -> Result<(), EntryError> {
        if self.refs.len() > REFS_COUNT_MAX {
            return Err(EntryError::TooMany {
                field: "references",
                count: self.refs.len(),
                max: REFS_COUNT_MAX,
            });
        }
        if self.refs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EntryError::BadReferences(
                "not in canonical order, or duplicated",
            ));
        }
        let count = |rel| self.refs.iter().filter(|r| r.relation == rel).count();
        if count(Relation::Supersedes) > 1 {
            return Err(EntryError::BadReferences(
                "an edit supersedes exactly one entry",
            ));
        }
        let (enquiry, reply) = (count(Relation::InEnquiry), count(Relation::ReplyTo));
        match self.kind() {
            // Its content kind is secret: members check the rest once they open it.
            EntryKind::Sealed if enquiry > 1 || reply > 1 => Err(EntryError::BadReferences(
                "a sealed entry belongs to one enquiry and replies to one entry at most",
            )),
            EntryKind::Sealed | EntryKind::KeyGrants => crate::private::check_entry(self),
            EntryKind::Publication if !self.refs.is_empty() => Err(EntryError::BadReferences(
                "a publication references nothing",
            )),
            // The resource and its sources are in the body: a reference would say nothing more.
            EntryKind::Sources if !self.refs.is_empty() => Err(EntryError::BadReferences(
                "a sources statement references nothing (the resource is in its body)",
            )),
            EntryKind::EnquiryNote if enquiry != 1 => Err(EntryError::BadReferences(
                "an enquiry note must belong to exactly one enquiry",
            )),
            EntryKind::Comment if reply != 1 => Err(EntryError::BadReferences(
                "a comment must reply to exactly one entry",
            )),
            kind if kind != EntryKind::EnquiryNote && enquiry != 0 => Err(
                EntryError::BadReferences("only enquiry notes belong to an enquiry"),
            ),
            kind if kind != EntryKind::Comment && reply != 0 => {
                Err(EntryError::BadReferences("only comments reply to an entry"))
            }
            _ => match &self.body {
                crate::Body::Erasure(e) => crate::erasure::check_entry(self, e),
                _ => crate::membership::wire::check_entry(self),
            },
        }
    }
}

mod signature_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(&text, &mut out)
            .map_err(|_| serde::de::Error::custom("signature must be 128 hex characters"))?;
        Ok(out)
    }
}

/// Strict ed25519 verification of `signed_message` (context included).
pub(crate) fn verify_strict(
    key: &VerifyingKey,
    signed_message: &[u8],
    signature: &[u8; 64],
) -> Result<(), EntryError> {
    key.verify_strict(signed_message, &Signature::from_bytes(signature))
        .map_err(|_| EntryError::BadSignature)
}
