//! Every way an entry can be refused gives its own typed error.

use staffroom_protocol::fixtures::{self, key, network};
use staffroom_protocol::limits::*;
use staffroom_protocol::*;

const NOW_MS: u64 = 1_800_000_000_000;

fn post(title: &str) -> Entry {
    fixtures::signed(
        &key(1),
        network(9),
        NOW_MS,
        vec![],
        fixtures::blog_body(title),
    )
}

fn resource() -> Entry {
    fixtures::signed(
        &key(1),
        network(9),
        NOW_MS,
        vec![],
        fixtures::resource_body("R"),
    )
}

fn resign(mut entry: Entry) -> Vec<u8> {
    // Sign again after tampering, so only the rule under test can fail.
    let draft = Draft {
        network: entry.network,
        created_at_ms: entry.created_at_ms,
        refs: std::mem::take(&mut entry.refs),
        body: entry.body,
    };
    let mut signed = draft.sign(&key(1));
    signed.refs.sort();
    signed.encode()
}

#[test]
fn a_valid_entry_of_every_kind_verifies() {
    let k = key(1);
    let enquiry = fixtures::signed(&k, network(9), NOW_MS, vec![], fixtures::enquiry_body("Q?"));
    let eid = enquiry.id();
    let entries = [
        post("Hello"),
        fixtures::signed(
            &k,
            network(9),
            NOW_MS,
            vec![],
            fixtures::resource_body("Fractions"),
        ),
        enquiry,
        fixtures::signed(
            &k,
            network(9),
            NOW_MS,
            vec![fixtures::in_enquiry(eid)],
            fixtures::note_body(Stage::Evidence, "Exit tickets rose 20%"),
        ),
        fixtures::signed(
            &k,
            network(9),
            NOW_MS,
            vec![fixtures::reply_to(eid)],
            fixtures::comment_body("Great question"),
        ),
    ];
    for entry in entries {
        let verified = verify_entry(&entry.encode(), NOW_MS).expect("valid entry");
        assert_eq!(verified.id(), entry.id());
        assert_eq!(verified.entry(), Some(&entry));
        assert_eq!(
            verified.header().author,
            AuthorId(k.verifying_key().to_bytes())
        );
    }
}

#[test]
fn forged_signature_is_refused() {
    let mut entry = post("Hello");
    entry.signature[10] ^= 1;
    assert_eq!(
        verify_entry(&entry.encode(), NOW_MS),
        Err(EntryError::BadSignature)
    );
}

#[test]
fn content_changed_after_signing_is_refused() {
    let mut entry = post("Hello");
    entry.created_at_ms -= 1;
    assert_eq!(
        verify_entry(&entry.encode(), NOW_MS),
        Err(EntryError::BadSignature)
    );
}

#[test]
fn author_claimed_by_another_key_is_refused() {
    let mut entry = post("Hello");
    entry.author = AuthorId(key(2).verifying_key().to_bytes());
    assert_eq!(
        verify_entry(&entry.encode(), NOW_MS),
        Err(EntryError::BadSignature)
    );
}

#[test]
fn non_canonical_signature_scalar_is_refused() {
    // Adding the group order L to s gives a signature that lax verifiers accept; strict must not.
    let entry = post("Hello");
    let mut forged = entry.clone();
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (s_byte, l_byte) in forged.signature[32..].iter_mut().zip(L) {
        let sum = *s_byte as u16 + l_byte as u16 + carry;
        *s_byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(
        verify_entry(&forged.encode(), NOW_MS),
        Err(EntryError::BadSignature)
    );
}

#[test]
fn unknown_kinds_and_versions_are_accepted_opaquely() {
    let k = key(1);
    let future_kind = fixtures::opaque(
        &k,
        network(9),
        NOW_MS,
        1,
        42,
        b"a body this node cannot read",
    );
    let verified = verify_entry(&future_kind, NOW_MS).expect("opaque entries pass");
    assert_eq!(verified.entry(), None, "not understood");
    assert_eq!(verified.header().kind, 42);
    assert_eq!(verified.header().network, network(9));
    assert_eq!(
        verified.id(),
        EntryId(*blake3::hash(&future_kind).as_bytes())
    );
    let future_version = fixtures::opaque(&k, network(9), NOW_MS, 2, 1, &[0xff; 10]);
    assert_eq!(
        verify_entry(&future_version, NOW_MS)
            .unwrap()
            .header()
            .version,
        2
    );
    // The envelope's rules still hold for them: signature, author key, clock, size.
    let mut tampered = future_kind.clone();
    tampered[100] ^= 1;
    assert_eq!(
        verify_entry(&tampered, NOW_MS),
        Err(EntryError::BadSignature)
    );
    let ahead = fixtures::opaque(&k, network(9), NOW_MS + CLOCK_SKEW_MS_MAX + 1, 1, 42, b"x");
    assert!(matches!(
        verify_entry(&ahead, NOW_MS),
        Err(EntryError::FromTheFuture { .. })
    ));
    assert!(matches!(
        verify_entry(&future_kind[..120], NOW_MS),
        Err(EntryError::Truncated { .. })
    ));
    // A known kind whose tag was changed after signing is simply a bad signature.
    let mut bytes = post("Hello").encode();
    bytes[1 + 32 + 32 + 8] = 42;
    assert_eq!(verify_entry(&bytes, NOW_MS), Err(EntryError::BadSignature));
}

#[test]
fn blank_invisible_and_reordering_text_is_refused() {
    for title in ["\u{200B}", " \u{FEFF} ", "evil\u{202E}gpj.exe"] {
        assert!(
            matches!(
                verify_entry(&resign(post(title)), NOW_MS),
                Err(EntryError::InvalidField { field: "title", .. })
            ),
            "{title:?}"
        );
    }
    let mut entry = post("Hello");
    if let Body::BlogPost(b) = &mut entry.body {
        b.tags = vec!["maths".into(), " ".into()];
    }
    assert!(matches!(
        verify_entry(&resign(entry), NOW_MS),
        Err(EntryError::InvalidField { field: "tags", .. })
    ));
    let mut entry = resource();
    if let Body::Resource(r) = &mut entry.body {
        r.key_stage = "\u{3000}".into();
    }
    assert!(matches!(
        verify_entry(&resign(entry), NOW_MS),
        Err(EntryError::InvalidField {
            field: "key_stage",
            ..
        })
    ));
    assert!(verify_entry(&resign(post("Teachers 👩‍🏫 and ZWJ emoji")), NOW_MS).is_ok());
}

#[test]
fn oversize_fields_are_refused() {
    let long_title = "x".repeat(TITLE_BYTES_MAX + 1);
    assert_eq!(
        verify_entry(&resign(post(&long_title)), NOW_MS),
        Err(EntryError::FieldTooLong {
            field: "title",
            len: TITLE_BYTES_MAX + 1,
            max: TITLE_BYTES_MAX
        })
    );
    let mut entry = post("Hello");
    if let Body::BlogPost(b) = &mut entry.body {
        b.body_md = "y".repeat(BODY_BYTES_MAX + 1);
    }
    assert!(matches!(
        verify_entry(&resign(entry), NOW_MS),
        Err(EntryError::FieldTooLong { field: "body", .. })
    ));
    let mut entry = post("Hello");
    if let Body::BlogPost(b) = &mut entry.body {
        b.tags = (0..=LABELS_COUNT_MAX).map(|i| format!("t{i}")).collect();
    }
    assert!(matches!(
        verify_entry(&resign(entry), NOW_MS),
        Err(EntryError::TooMany { field: "tags", .. })
    ));
    let huge = vec![0u8; ENTRY_BYTES_MAX + 1];
    assert!(matches!(
        verify_entry(&huge, NOW_MS),
        Err(EntryError::TooLarge { .. })
    ));
}

#[test]
fn creation_time_too_far_ahead_is_refused() {
    let ahead = fixtures::signed(
        &key(1),
        network(9),
        NOW_MS + CLOCK_SKEW_MS_MAX + 1,
        vec![],
        fixtures::blog_body("From the future"),
    );
    assert!(matches!(
        verify_entry(&ahead.encode(), NOW_MS),
        Err(EntryError::FromTheFuture { .. })
    ));
    let within = fixtures::signed(
        &key(1),
        network(9),
        NOW_MS + CLOCK_SKEW_MS_MAX,
        vec![],
        fixtures::blog_body("Slightly fast clock"),
    );
    assert!(verify_entry(&within.encode(), NOW_MS).is_ok());
}

#[test]
fn malformed_references_are_refused() {
    let k = key(1);
    let target = post("target").id();
    let note_without_enquiry = fixtures::signed(
        &k,
        network(9),
        NOW_MS,
        vec![],
        fixtures::note_body(Stage::Action, "x"),
    );
    assert!(matches!(
        verify_entry(&note_without_enquiry.encode(), NOW_MS),
        Err(EntryError::BadReferences(_))
    ));
    let comment_without_target =
        fixtures::signed(&k, network(9), NOW_MS, vec![], fixtures::comment_body("x"));
    assert!(matches!(
        verify_entry(&comment_without_target.encode(), NOW_MS),
        Err(EntryError::BadReferences(_))
    ));
    let post_in_enquiry = fixtures::signed(
        &k,
        network(9),
        NOW_MS,
        vec![fixtures::in_enquiry(target)],
        fixtures::blog_body("x"),
    );
    assert!(matches!(
        verify_entry(&post_in_enquiry.encode(), NOW_MS),
        Err(EntryError::BadReferences(_))
    ));
    // Out-of-order references: hand-build them, then sign the raw content.
    let mut entry = post("x");
    entry.refs = vec![
        Ref {
            relation: Relation::Related,
            id: EntryId([2; 32]),
        },
        Ref {
            relation: Relation::Related,
            id: EntryId([1; 32]),
        },
    ];
    let mut bytes = entry.encode();
    let refs_at = 1 + 32 + 32 + 8 + 1 + 1;
    assert_eq!(bytes[refs_at], Relation::Related as u8);
    bytes.truncate(bytes.len() - 64);
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(&bytes);
    use ed25519_dalek::Signer;
    bytes.extend_from_slice(&k.sign(&message).to_bytes());
    assert!(matches!(
        verify_entry(&bytes, NOW_MS),
        Err(EntryError::BadReferences(_))
    ));
    // Unknown relation tag.
    bytes[refs_at] = 99;
    assert!(matches!(
        verify_entry(&bytes, NOW_MS),
        Err(EntryError::BadReferences(_))
    ));
}

#[test]
fn invalid_field_values_are_refused() {
    let mut entry = resource();
    if let Body::Resource(r) = &mut entry.body {
        r.licence = "CC BY".into();
    }
    assert!(matches!(
        verify_entry(&resign(entry.clone()), NOW_MS),
        Err(EntryError::InvalidField {
            field: "licence",
            ..
        })
    ));
    if let Body::Resource(r) = &mut entry.body {
        r.licence = "CC-BY-4.0".into();
        r.age_min_years = 15;
        r.age_max_years = 11;
    }
    assert!(matches!(
        verify_entry(&resign(entry), NOW_MS),
        Err(EntryError::InvalidField {
            field: "age range",
            ..
        })
    ));
    assert!(matches!(
        verify_entry(&resign(post("two\nlines")), NOW_MS),
        Err(EntryError::InvalidField { field: "title", .. })
    ));
}

#[test]
fn truncated_and_padded_bytes_are_refused() {
    let bytes = post("Hello").encode();
    for cut in [0, 1, 40, bytes.len() - 1] {
        assert!(matches!(
            verify_entry(&bytes[..cut], NOW_MS),
            Err(EntryError::Truncated { .. })
        ));
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert_eq!(
        verify_entry(&padded, NOW_MS),
        Err(EntryError::TrailingBytes { count: 1 })
    );
}

#[test]
fn error_messages_are_one_clear_line() {
    let err = EntryError::FieldTooLong {
        field: "title",
        len: 300,
        max: 200,
    };
    assert_eq!(
        err.to_string(),
        "title is 300 bytes, more than the 200-byte limit"
    );
    assert!(EntryError::BadSignature
        .to_string()
        .starts_with("bad signature"));
}

#[test]
fn encoding_never_panics_on_oversized_drafts() {
    // The CLI builds drafts from what a teacher typed: 300 tags must give an error, not a panic.
    let tags: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
    let body = Body::BlogPost(BlogPost {
        title: "x".into(),
        body_md: "y".into(),
        tags,
    });
    let refs = (0..300u32)
        .map(|i| Ref {
            relation: Relation::Related,
            id: EntryId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
        })
        .collect();
    let entry = Draft {
        network: network(9),
        created_at_ms: NOW_MS,
        refs,
        body,
    }
    .sign(&key(1));
    assert!(matches!(
        verify_entry(&entry.encode(), NOW_MS),
        Err(EntryError::TooMany {
            field: "references",
            ..
        } | EntryError::TooMany { field: "tags", .. })
    ));
}
