//! Property tests: encoding round-trips, decoding is canonical, and no input panics.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use staffroom_protocol::fixtures::{key, network};
use staffroom_protocol::*;

fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}"
}

fn text() -> impl Strategy<Value = String> {
    // At most 49 four-byte characters plus one: always within the 200-byte title limit.
    "[^\\p{Cc}\\u{2028}\\u{2029}\\u{202A}-\\u{202E}\\u{2066}-\\u{2069}]{0,49}[a-zé]"
}

/// 0 to 3 files with distinct names: a resource with none is kind 2, with some kind 8.
fn files() -> impl Strategy<Value = Vec<FileRef>> {
    prop::collection::vec((1u64..1 << 40, any::<[u8; 32]>()), 0..=3).prop_map(|files| {
        files
            .into_iter()
            .enumerate()
            .map(|(i, (size_bytes, root))| FileRef {
                name: format!("file {i}.pdf"),
                media_type: "application/pdf".into(),
                size_bytes,
                root: FileRoot(root),
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (text(), text(), prop::collection::btree_set(label(), 0..5)).prop_map(|(t, b, tags)| {
            Body::BlogPost(BlogPost {
                title: t,
                body_md: b,
                tags: tags.into_iter().collect(),
            })
        }),
        (text(), 0u8..20, 0u8..20, files()).prop_map(|(t, a, b, files)| Body::Resource(Resource {
            title: t,
            description_md: String::new(),
            subjects: vec!["science".into()],
            age_min_years: a.min(b),
            age_max_years: a.max(b),
            key_stage: String::new(),
            licence: "CC-BY-SA-4.0".into(),
            language: "cy".into(),
            files,
        })),
        text().prop_map(|q| Body::Enquiry(Enquiry {
            question: q,
            description_md: String::new()
        })),
        text().prop_map(|b| Body::Comment(Comment { body_md: b })),
        (prop::sample::select(Stage::ALL.to_vec()), text())
            .prop_map(|(stage, b)| Body::EnquiryNote(EnquiryNote { stage, body_md: b })),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        body(),
        any::<u64>(),
        any::<u8>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(body, at, seed, target, related)| {
            let mut refs = vec![Ref {
                relation: Relation::Related,
                id: EntryId(related),
            }];
            match body.kind() {
                EntryKind::EnquiryNote => refs.push(Ref {
                    relation: Relation::InEnquiry,
                    id: EntryId(target),
                }),
                EntryKind::Comment => refs.push(Ref {
                    relation: Relation::ReplyTo,
                    id: EntryId(target),
                }),
                _ => {}
            }
            Draft {
                network: network(seed),
                created_at_ms: at % 4_000_000_000_000,
                refs,
                body,
            }
            .sign(&key(seed))
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        // Committed, so a failure found once is replayed on every run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/roundtrip.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn signed_entries_verify_and_round_trip(entry in entry()) {
        let bytes = entry.encode();
        let verified = verify_entry(&bytes, u64::MAX / 2).expect("valid");
        prop_assert_eq!(verified.entry(), Some(&entry));
        prop_assert_eq!(verified.bytes(), &bytes[..]);
        prop_assert_eq!(verified.id(), entry.id());
        // The JSON view round-trips too, and re-encodes to the same signed bytes.
        let json = serde_json::to_string(&entry).unwrap();
        let back: Entry = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn any_single_byte_change_is_refused_or_canonical(entry in entry(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = entry.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        // Whatever else happens, a tampered entry never passes as the original author's.
        prop_assert!(verify_entry(&bytes, u64::MAX / 2).is_err());
        if let Ok(decoded) = Entry::decode(&bytes) {
            prop_assert_eq!(&decoded.encode(), &bytes, "decoding must be canonical");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(decoded) = Entry::decode(&bytes) {
            prop_assert_eq!(&decoded.encode(), &bytes);
        }
        let _ = verify_entry(&bytes, 0);
    }
}
