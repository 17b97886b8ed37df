//! Erasure entries (kind 9): an author deleting their own entry, or a facilitator removing or
//! hiding one in their network. They are signed entries in the network's synced set, so a node
//! that was offline learns of them by catch-up like anything else, and they never expire.
//!
//! A tombstone is kept forever, so it carries no free text: the reason is a code, and the
//! target is named by what is needed to recognise it again — its id, author and time.

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::entry::Entry;
use crate::error::EntryError;
use crate::ids::{AuthorId, EntryId};

/// What an erasure does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureAction {
    /// The target's author takes it back: every node purges it.
    Delete = 1,
    /// A facilitator of the network takes it down: every node purges it.
    Remove = 2,
    /// A facilitator hides it from listings; nodes keep it.
    Hide = 3,
}

/// Why, as a code: never words, which could name the very person the erasure protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    Mistake = 1,
    PersonalData = 2,
    Copyright = 3,
    Other = 4,
}

/// The body of a kind-9 entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub action: ErasureAction,
    pub reason: ErasureReason,
    /// The entry erased.
    pub target: EntryId,
    /// Its author, as its header says: a node can judge a deletion before it has the target.
    pub target_author: AuthorId,
    /// Its creation time, as its header says.
    pub target_created_at_ms: u64,
}

impl ErasureAction {
    pub const ALL: [ErasureAction; 3] = [
        ErasureAction::Delete,
        ErasureAction::Remove,
        ErasureAction::Hide,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErasureAction::Delete => "delete",
            ErasureAction::Remove => "remove",
            ErasureAction::Hide => "hide",
        }
    }

    /// True when nodes purge the target's body and files (not for hiding).
    pub fn purges(self) -> bool {
        self != ErasureAction::Hide
    }
}

impl ErasureReason {
    pub const ALL: [ErasureReason; 4] = [
        ErasureReason::Mistake,
        ErasureReason::PersonalData,
        ErasureReason::Copyright,
        ErasureReason::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErasureReason::Mistake => "mistake",
            ErasureReason::PersonalData => "personal_data",
            ErasureReason::Copyright => "copyright",
            ErasureReason::Other => "other",
        }
    }
}

impl std::str::FromStr for ErasureReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|r| r.name() == wanted)
            .ok_or_else(|| {
                format!("unknown reason {s:?}: use mistake, personal_data, copyright or other")
            })
    }
}

impl Erasure {
    /// An erasure of `target` (whose header gives its author and time).
    pub fn of(target: &Entry, action: ErasureAction, reason: ErasureReason) -> Erasure {
        Erasure {
            action,
            reason,
            target: target.id(),
            target_author: target.author,
            target_created_at_ms: target.created_at_ms,
        }
    }

    /// Whether this erasure names `entry`: the same id, and the header it claims.
    pub fn covers(&self, id: &EntryId, entry_header: &crate::Header) -> bool {
        self.target == *id
            && self.target_author == entry_header.author
            && self.target_created_at_ms == entry_header.created_at_ms
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.action as u8);
        w.u8(self.reason as u8);
        w.bytes(self.target.as_bytes());
        w.bytes(self.target_author.as_bytes());
        w.u64(self.target_created_at_ms);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Erasure, EntryError> {
        let action = r.u8("erasure action")?;
        let action = ErasureAction::ALL
            .into_iter()
            .find(|a| *a as u8 == action)
            .ok_or(invalid("erasure action", "must be delete, remove or hide"))?;
        let reason = r.u8("erasure reason")?;
        let reason = ErasureReason::ALL
            .into_iter()
            .find(|a| *a as u8 == reason)
            .ok_or(invalid(
                "erasure reason",
                "must be mistake, personal_data, copyright or other",
            ))?;
        Ok(Erasure {
            action,
            reason,
            target: EntryId(r.array("erasure target")?),
            target_author: AuthorId(r.array("erasure target author")?),
            target_created_at_ms: r.u64("erasure target time")?,
        })
    }
}

/// The rules of a kind-9 entry that need nothing but the entry: no references, and only the
/// target's author deletes (removing and hiding are for facilitators: a membership question,
/// answered where membership is known).
pub(crate) fn check_entry(entry: &Entry, erasure: &Erasure) -> Result<(), EntryError> {
    if !entry.refs.is_empty() {
        return Err(EntryError::BadReferences(
            "an erasure names its target in its body and references nothing",
        ));
    }
    if erasure.action == ErasureAction::Delete && erasure.target_author != entry.author {
        return Err(invalid(
            "erasure action",
            "only an entry's author may delete it (facilitators remove)",
        ));
    }
    if erasure.target_created_at_ms > entry.created_at_ms {
        return Err(invalid(
            "erasure target time",
            "an erasure cannot be older than the entry it erases",
        ));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: &'static str) -> EntryError {
    EntryError::InvalidField { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{blog_body, erasure_body, key, network, signed};
    use crate::{verify_entry, Header};

    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn an_author_deletes_their_own_entry_and_no_one_else_does() {
        let post = signed(&key(1), network(1), NOW, vec![], blog_body("Oops"));
        let reason = ErasureReason::PersonalData;
        let delete = |by: u8, action| {
            let body = erasure_body(&post, action, reason);
            signed(&key(by), network(1), NOW + 5, vec![], body).encode()
        };
        let own = verify_entry(&delete(1, ErasureAction::Delete), NOW).expect("own delete");
        let Some(crate::Body::Erasure(e)) = own.entry().map(|e| &e.body) else {
            panic!("an erasure");
        };
        let header = Header::parse(&post.encode()).unwrap();
        assert!(e.covers(&post.id(), &header));
        assert!(!e.covers(&EntryId([0; 32]), &header));
        let error = verify_entry(&delete(2, ErasureAction::Delete), NOW).unwrap_err();
        assert_eq!(error.code(), "invalid_field");
        assert!(!error.blames_sender(), "a later kind: refused, not blamed");
        // Removing and hiding are facilitators' business: judged where membership is known.
        assert!(verify_entry(&delete(2, ErasureAction::Remove), NOW).is_ok());
        assert!(verify_entry(&delete(2, ErasureAction::Hide), NOW).is_ok());
    }

    #[test]
    fn an_erasure_references_nothing_and_is_not_older_than_its_target() {
        let post = signed(&key(1), network(1), NOW, vec![], blog_body("Oops"));
        let body = erasure_body(&post, ErasureAction::Delete, ErasureReason::Mistake);
        let early = signed(&key(1), network(1), NOW - 1, vec![], body.clone());
        let error = verify_entry(&early.encode(), NOW).unwrap_err();
        assert_eq!(error.code(), "invalid_field");
        let refs = vec![crate::fixtures::reply_to(post.id())];
        let with_ref = signed(&key(1), network(1), NOW, refs, body).encode();
        assert_eq!(
            verify_entry(&with_ref, NOW).unwrap_err().code(),
            "bad_references"
        );
        assert_eq!("personal-data".parse(), Ok(ErasureReason::PersonalData));
        assert!("gossip".parse::<ErasureReason>().is_err());
    }
}
