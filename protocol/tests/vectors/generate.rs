//! Builds every verdict vector of `docs/protocol-vectors.json` from fixed keys, times and
//! curve arithmetic (the signature edge cases).

use super::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::limits::CLOCK_SKEW_MS_MAX;

/// 2026-01-01T00:00:00Z, the verifier's clock for every vector.
pub const NOW: u64 = 1_767_225_600_000;
pub(super) const SEED: u8 = 7;
/// The encoding of y = p + 3 (x even): not canonical, and decodes to a point that is not of
/// small order.
const NON_CANONICAL_Y: &str = "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";

fn post(title: &str) -> Entry {
    let body = fixtures::blog_body(title);
    fixtures::signed(&key(SEED), network(0x5a), NOW, vec![], body)
}

pub(super) fn signed(created_at_ms: u64, refs: Vec<Ref>, body: Body) -> Vec<u8> {
    fixtures::signed(&key(SEED), network(0x5a), created_at_ms, refs, body).encode()
}

fn content(entry: &Entry) -> Vec<u8> {
    let bytes = entry.encode();
    bytes[..bytes.len() - 64].to_vec()
}

pub(super) fn resigned(content: &[u8]) -> Vec<u8> {
    fixtures::sign_raw(&key(SEED), content)
}

fn with_post<F: FnOnce(&mut BlogPost)>(f: F) -> Vec<u8> {
    let mut entry = post("A post");
    if let Body::BlogPost(b) = &mut entry.body {
        f(b);
    }
    signed(NOW, vec![], entry.body)
}

fn with_resource<F: FnOnce(&mut Resource)>(f: F) -> Vec<u8> {
    let mut body = fixtures::resource_body("A resource");
    if let Body::Resource(r) = &mut body {
        f(r);
    }
    signed(NOW, vec![], body)
}

fn id(n: u8) -> EntryId {
    EntryId([n; 32])
}

pub(super) fn r(relation: Relation, n: u8) -> Ref {
    Ref {
        relation,
        id: id(n),
    }
}

/// The offset of the first reference's relation tag in a version-1 entry.
pub(super) const REFS_AT: usize = 1 + 32 + 32 + 8 + 1 + 1;

pub(super) fn refused_one(name: &str, why: &str, bytes: Vec<u8>, error: &str) -> Refused {
    // The spec's rule, stated independently of the verifier: the clock is the verifier's, and
    // kinds after the first release (6 to 13) pass first-release nodes unchecked.
    let later_kind = bytes.first() == Some(&1) && matches!(bytes.get(73), Some(6..=13));
    let blames_sender = error != "from_the_future" && !later_kind;
    Refused {
        name: name.into(),
        why: why.into(),
        now_ms: NOW,
        entry_hex: hex::encode(bytes),
        error: error.into(),
        blames_sender,
    }
}

pub(super) fn accepted_one(name: &str, why: &str, bytes: Vec<u8>, understood: bool) -> Accepted {
    Accepted {
        name: name.into(),
        why: why.into(),
        now_ms: NOW,
        id: EntryId(*blake3::hash(&bytes).as_bytes()),
        entry_hex: hex::encode(bytes),
        understood,
    }
}

pub fn accepted() -> Vec<Accepted> {
    let k = key(SEED);
    let (net, emoji) = (network(0x5a), "Teachers 👩\u{200D}🏫 and שלום\u{200F}");
    vec![
        accepted_one(
            "future_kind",
            "kind 42 is unknown: only the envelope is checked (opaque)",
            fixtures::opaque(&k, net, NOW, 1, 42, b"whatever kind 42 holds"),
            false,
        ),
        accepted_one(
            "future_version",
            "format version 2 is unknown: only the envelope is checked (opaque)",
            fixtures::opaque(&k, net, NOW, 2, 1, &[0xff; 40]),
            false,
        ),
        accepted_one(
            "clock_skew_edge",
            "created exactly 600,000 ms ahead of the verifier's clock",
            post_at(NOW + CLOCK_SKEW_MS_MAX),
            true,
        ),
        accepted_one(
            "joiners_and_marks",
            "invisible characters inside text that is not blank are allowed",
            with_post(|b| b.title = emoji.into()),
            true,
        ),
        accepted_one(
            "mixed_order_author_key",
            "A has a small-order component but is not of small order; the cofactorless \
             equation holds",
            mixed_order_author(),
            true,
        ),
    ]
    .into_iter()
    .chain(super::membership_vectors::accepted())
    .chain(super::files_vectors::accepted())
    .chain(super::erasure_vectors::accepted())
    .chain(super::private_vectors::accepted())
    .chain(super::publication_vectors::accepted())
    .chain(super::sources_vectors::accepted())
    .collect()
}

fn post_at(created_at_ms: u64) -> Vec<u8> {
    signed(created_at_ms, vec![], fixtures::blog_body("On time"))
}

pub fn refused() -> Vec<Refused> {
    let mut out = structure_vectors();
    out.extend(field_vectors());
    out.extend(reference_vectors());
    out.extend(signature_vectors());
    out.extend(super::membership_vectors::refused());
    out.extend(super::files_vectors::refused());
    out.extend(super::erasure_vectors::refused());
    out.extend(super::private_vectors::refused());
    out.extend(super::publication_vectors::refused());
    out.extend(super::sources_vectors::refused());
    out
}

fn structure_vectors() -> Vec<Refused> {
    let valid = post("Valid").encode();
    let mut padded = valid.clone();
    padded.push(0);
    let too_large = fixtures::opaque(&key(SEED), network(0x5a), NOW, 1, 42, &[0; 65_400]);
    // The body's length prefix (after the 5-byte title) claims more than the entry holds.
    let mut truncated_body = content(&post("Valid"));
    let body_len_at = REFS_AT + 4 + 5;
    truncated_body[body_len_at..body_len_at + 4].copy_from_slice(&40_000u32.to_be_bytes());
    let mut bad_utf8 = content(&post("Valid"));
    let title_at = REFS_AT + 4;
    bad_utf8[title_at] = 0xff;
    let seventeen_refs = {
        let mut c = content(&post("Valid"));
        c[REFS_AT - 1] = 17;
        let refs: Vec<u8> = (1..=17u8)
            .flat_map(|n| [[4u8].as_slice(), &[n; 32]].concat())
            .collect();
        c.splice(REFS_AT..REFS_AT, refs);
        resigned(&c)
    };
    let mut early_forgery = post_at(NOW + CLOCK_SKEW_MS_MAX + 1);
    let last = early_forgery.len() - 1;
    early_forgery[last - 10] ^= 1;
    vec![
        refused_one(
            "too_large",
            "65,537 bytes",
            too_large[..65_537].to_vec(),
            "entry_too_large",
        ),
        refused_one(
            "too_short",
            "shorter than header and signature",
            valid[..100].to_vec(),
            "truncated",
        ),
        refused_one(
            "truncated_body",
            "the body's strings end before their lengths say",
            resigned(&truncated_body),
            "truncated",
        ),
        refused_one(
            "trailing_bytes",
            "a byte after the signature",
            padded,
            "trailing_bytes",
        ),
        refused_one(
            "title_not_utf8",
            "a title that is not UTF-8",
            resigned(&bad_utf8),
            "invalid_field",
        ),
        refused_one(
            "title_too_long",
            "a 201-byte title",
            with_post(|b| b.title = "t".repeat(201)),
            "field_too_long",
        ),
        refused_one(
            "too_many_tags",
            "17 tags",
            with_post(|b| b.tags = (0..17).map(|i| format!("t{i}")).collect()),
            "too_many_items",
        ),
        refused_one(
            "too_many_references",
            "17 references",
            seventeen_refs,
            "too_many_items",
        ),
        refused_one(
            "forged_from_the_future",
            "dated too far ahead and badly signed: the signature is checked before the clock",
            early_forgery,
            "bad_signature",
        ),
        refused_one(
            "from_the_future",
            "created 600,001 ms ahead of the verifier's clock",
            post_at(NOW + CLOCK_SKEW_MS_MAX + 1),
            "from_the_future",
        ),
    ]
}

fn field_vectors() -> Vec<Refused> {
    let note = |stage_tag: u8| {
        let entry = fixtures::signed(
            &key(SEED),
            network(0x5a),
            NOW,
            vec![fixtures::in_enquiry(id(1))],
            fixtures::note_body(Stage::Action, "Note"),
        );
        let mut c = content(&entry);
        c[REFS_AT + 33] = stage_tag;
        resigned(&c)
    };
    let field = |name: &str, why: &str, bytes| refused_one(name, why, bytes, "invalid_field");
    vec![
        field(
            "blank_title",
            "a title of only U+200B ZERO WIDTH SPACE",
            with_post(|b| b.title = "\u{200B}".into()),
        ),
        field(
            "whitespace_title",
            "a title of only U+00A0 and U+3000",
            with_post(|b| b.title = "\u{A0}\u{3000}".into()),
        ),
        field(
            "bidi_override_title",
            "U+202E RIGHT-TO-LEFT OVERRIDE in a title",
            with_post(|b| b.title = "report\u{202E}fdp.exe".into()),
        ),
        field(
            "two_line_title",
            "a line feed in a title",
            with_post(|b| b.title = "two\nlines".into()),
        ),
        field(
            "line_separator_title",
            "U+2028 LINE SEPARATOR in a title",
            with_post(|b| b.title = "two\u{2028}lines".into()),
        ),
        field(
            "blank_tag",
            "a tag of spaces",
            with_post(|b| b.tags = vec!["  ".into()]),
        ),
        field(
            "duplicate_tags",
            "the same tag twice",
            with_post(|b| b.tags = vec!["ks3".into(), "ks3".into()]),
        ),
        field(
            "blank_body",
            "a body of only whitespace and U+FEFF",
            with_post(|b| b.body_md = " \n\u{FEFF}\t".into()),
        ),
        field(
            "control_in_body",
            "U+0007 BELL in a body",
            with_post(|b| b.body_md = "ding\u{7}".into()),
        ),
        field(
            "c1_control_in_body",
            "U+0085 NEXT LINE in a body",
            with_post(|b| b.body_md = "next\u{85}line".into()),
        ),
        field(
            "isolate_in_body",
            "U+2066 LEFT-TO-RIGHT ISOLATE in a body",
            with_post(|b| b.body_md = "a\u{2066}b".into()),
        ),
        field(
            "blank_key_stage",
            "a key stage of only U+3000",
            with_resource(|r| r.key_stage = "\u{3000}".into()),
        ),
        field(
            "licence_with_space",
            "a licence that is not an SPDX id",
            with_resource(|r| r.licence = "CC BY".into()),
        ),
        field(
            "language_word",
            "a language that is not a BCP 47 tag",
            with_resource(|r| r.language = "english".into()),
        ),
        field(
            "age_over_99",
            "age_max_years 100",
            with_resource(|r| r.age_max_years = 100),
        ),
        field(
            "ages_inverted",
            "age_min_years above age_max_years",
            with_resource(|r| {
                r.age_min_years = 12;
                r.age_max_years = 11
            }),
        ),
        field("stage_zero", "an enquiry note of stage 0", note(0)),
        field("stage_six", "an enquiry note of stage 6", note(6)),
    ]
}

fn reference_vectors() -> Vec<Refused> {
    let with_refs = |refs: Vec<Ref>, body| signed(NOW, refs, body);
    let unordered = {
        let mut entry = post("Valid");
        entry.refs = vec![r(Relation::Related, 2), r(Relation::Related, 1)];
        let c = content(&entry);
        assert_eq!(c[REFS_AT], Relation::Related as u8);
        resigned(&c)
    };
    let duplicated = {
        let mut entry = post("Valid");
        entry.refs = vec![r(Relation::Related, 1), r(Relation::Related, 1)];
        resigned(&content(&entry))
    };
    let unknown_relation = {
        let mut entry = post("Valid");
        entry.refs = vec![r(Relation::Related, 1)];
        let mut c = content(&entry);
        c[REFS_AT] = 9;
        resigned(&c)
    };
    let refs = |name: &str, why: &str, bytes| refused_one(name, why, bytes, "bad_references");
    vec![
        refs(
            "note_without_enquiry",
            "an enquiry note with no in_enquiry reference",
            with_refs(vec![], fixtures::note_body(Stage::Action, "x")),
        ),
        refs(
            "comment_without_target",
            "a comment with no reply_to reference",
            with_refs(vec![], fixtures::comment_body("x")),
        ),
        refs(
            "post_in_enquiry",
            "a blog post with an in_enquiry reference",
            with_refs(vec![r(Relation::InEnquiry, 1)], fixtures::blog_body("x")),
        ),
        refs(
            "two_edits",
            "two supersedes references",
            with_refs(
                vec![r(Relation::Supersedes, 1), r(Relation::Supersedes, 2)],
                fixtures::blog_body("x"),
            ),
        ),
        refs(
            "unordered_references",
            "references not in ascending order",
            unordered,
        ),
        refs(
            "duplicate_references",
            "the same reference twice",
            duplicated,
        ),
        refs("unknown_relation", "relation tag 9", unknown_relation),
    ]
}

// ---- Signature edge cases, built with curve arithmetic. ----

fn secret_scalar(seed: u8) -> Scalar {
    let digest = Sha512::digest([seed; 32]);
    let mut a = [0u8; 32];
    a.copy_from_slice(&digest[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// k = SHA-512(R ‖ A ‖ M) mod L.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn nonce(n: u32) -> Scalar {
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&Sha512::digest(
        format!("staffroom vector nonce {n}").as_bytes(),
    ));
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// The test post, claiming `author`, signed with the raw signature `(r, s)`.
fn raw_signed(author: [u8; 32], sign: impl FnOnce(&[u8]) -> ([u8; 32], Scalar)) -> Vec<u8> {
    let mut entry = post("Signed at the edge");
    entry.author = AuthorId(author);
    let (r, s) = sign(&entry.signed_message());
    entry.signature[..32].copy_from_slice(&r);
    entry.signature[32..].copy_from_slice(&s.to_bytes());
    entry.encode()
}

fn honest_author() -> [u8; 32] {
    key(SEED).verifying_key().to_bytes()
}

fn mixed_order_author() -> Vec<u8> {
    let a = secret_scalar(SEED);
    let author = (ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    raw_signed(author, |m| {
        // A nonce whose challenge is a multiple of 8, so [k]A loses the torsion part.
        (0..)
            .find_map(|n| {
                let r = nonce(n);
                let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
                let k = challenge(&big_r, &author, m);
                k.to_bytes()[0]
                    .is_multiple_of(8)
                    .then(|| (big_r, r + k * a))
            })
            .expect("one nonce in eight works")
    })
}

fn signature_vectors() -> Vec<Refused> {
    let a = secret_scalar(SEED);
    let author = honest_author();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut non_canonical = [0u8; 32];
    hex::decode_to_slice(NON_CANONICAL_Y, &mut non_canonical).unwrap();
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    let order_eight = EIGHT_TORSION[1].compress().to_bytes();
    let honest_s = |m: &[u8], big_r: [u8; 32], r: Scalar| r + challenge(&big_r, &author, m) * a;

    let mut flipped = post("Signed").encode();
    let last = flipped.len() - 1;
    flipped[last - 10] ^= 1;
    let mut claimed = post("Signed");
    claimed.author = AuthorId(key(8).verifying_key().to_bytes());
    let s_plus_l = raw_signed(author, |m| {
        let (r, big_r) = (
            nonce(1),
            (ED25519_BASEPOINT_POINT * nonce(1)).compress().to_bytes(),
        );
        let s = honest_s(m, big_r, r);
        (big_r, s)
    });
    let s_plus_l = add_l_to_s(s_plus_l);
    let small_r = raw_signed(author, |m| (identity, challenge(&identity, &author, m) * a));
    let cofactored_only = raw_signed(author, |m| {
        let r = nonce(2);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        (big_r, honest_s(m, big_r, r))
    });
    let non_canonical_r = raw_signed(author, |_| (non_canonical, nonce(3)));
    let small_author = raw_signed(identity, |_| {
        let r = nonce(4);
        ((ED25519_BASEPOINT_POINT * r).compress().to_bytes(), r)
    });
    let any_sig = |_: &[u8]| {
        (
            (ED25519_BASEPOINT_POINT * nonce(5)).compress().to_bytes(),
            nonce(6),
        )
    };
    let sig = |name: &str, why: &str, bytes| refused_one(name, why, bytes, "bad_signature");
    let key_err = |name: &str, why: &str, bytes| refused_one(name, why, bytes, "bad_author_key");
    vec![
        sig("flipped_signature_bit", "one bit of S changed", flipped),
        sig(
            "claimed_author",
            "signed by one key, claiming another",
            claimed.encode(),
        ),
        sig("s_not_reduced", "S + L in place of S (S >= L)", s_plus_l),
        sig(
            "small_order_r",
            "R is the identity (small order); the equation holds",
            small_r,
        ),
        sig(
            "cofactored_only",
            "R has a small-order component: only [8]R = [8]([S]B - [k]A) holds",
            cofactored_only,
        ),
        sig("non_canonical_r", "R encodes y = p + 3", non_canonical_r),
        key_err(
            "identity_author_key",
            "A is the identity (small order); the equation holds",
            small_author,
        ),
        key_err(
            "order_eight_author_key",
            "A is a point of order 8",
            raw_signed(order_eight, any_sig),
        ),
        key_err(
            "non_canonical_author_key",
            "A encodes y = p + 3",
            raw_signed(non_canonical, any_sig),
        ),
        key_err(
            "author_key_off_curve",
            "A encodes y = 2, which is on no point of the curve",
            raw_signed(off_curve, any_sig),
        ),
    ]
}

/// Adds the group order L to S (little-endian), keeping R and the content.
fn add_l_to_s(mut bytes: Vec<u8>) -> Vec<u8> {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let at = bytes.len() - 32;
    let mut carry = 0u16;
    for (s, l) in bytes[at..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = sum as u8;
        carry = sum >> 8;
    }
    bytes
}
