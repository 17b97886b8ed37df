//! The verdict vectors of sources statements (kind 13): one naming entries and a web page,
//! and an empty one (a withdrawal), accepted; links that are not web addresses, entries out
//! of order or naming the resource itself, too many links and a reference, refused without
//! blaming the sender (nodes before kind 13 relay it unchecked).

use super::generate::{accepted_one, refused_one, signed, NOW};
use super::{Accepted, Refused};
use staffroom_protocol::*;

fn sources(entries: &[u8], links: &[&str]) -> Body {
    Body::Sources(Sources {
        resource: EntryId([0x42; 32]),
        entries: entries.iter().map(|b| EntryId([*b; 32])).collect(),
        links: links.iter().map(|l| l.to_string()).collect(),
    })
}

pub fn accepted() -> Vec<Accepted> {
    vec![
        accepted_one(
            "sources_entries_and_link",
            "kind 13: resource 42…, based on entries 01… and 02… (ascending) and one web page; \
             whether its author wrote the resource is for readers to judge",
            signed(
                NOW,
                vec![],
                sources(
                    &[1, 2],
                    &["https://example.org/lessons/fractions?v=2#intro"],
                ),
            ),
            true,
        ),
        accepted_one(
            "sources_longest_link",
            "kind 13 whose one link is exactly 2,048 bytes, the longest allowed",
            signed(NOW, vec![], sources(&[], &[&longest_link()])),
            true,
        ),
        accepted_one(
            "sources_withdrawn",
            "kind 13 with no entries and no links: the resource is no longer said to be based \
             on anything",
            signed(NOW, vec![], sources(&[], &[])),
            true,
        ),
    ]
}

/// `https://example.org/` and then `a`s: 2,048 bytes in all.
fn longest_link() -> String {
    let start = "https://example.org/";
    format!("{start}{}", "a".repeat(2048 - start.len()))
}

pub fn refused() -> Vec<Refused> {
    let refused = |name, why, body, error| refused_one(name, why, signed(NOW, vec![], body), error);
    let nine: Vec<String> = (0..9).map(|i| format!("https://example.org/{i}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    let too_long = format!("{}a", longest_link());
    let seventeen: Vec<u8> = (1..=17).collect();
    let mut out = link_vectors();
    out.extend([
        refused(
            "sources_link_too_long",
            "kind 13 whose link is 2,049 bytes: at most 2,048",
            sources(&[], &[&too_long]),
            "field_too_long",
        ),
        refused(
            "sources_seventeen_entries",
            "kind 13 naming 17 entries: at most 16 (refused at the count, before the ids)",
            sources(&seventeen, &[]),
            "too_many_items",
        ),
        refused(
            "sources_entry_twice",
            "kind 13 naming entry 01… twice: strictly ascending, so each once",
            sources(&[1, 1], &[]),
            "invalid_field",
        ),
        refused(
            "sources_link_twice",
            "kind 13 naming one web page twice",
            sources(&[], &["https://example.org/", "https://example.org/"]),
            "invalid_field",
        ),
    ]);
    out.extend(vec![
        refused(
            "sources_link_not_web",
            "kind 13 whose link is javascript:…: only http:// and https:// addresses",
            sources(&[], &["javascript:alert(1)"]),
            "invalid_field",
        ),
        refused(
            "sources_link_with_space",
            "kind 13 whose link holds a space: printable ASCII other than space only",
            sources(&[], &["https://example.org/a b"]),
            "invalid_field",
        ),
        refused(
            "sources_entries_descending",
            "kind 13 naming entries 02… then 01…: strictly ascending only",
            sources(&[2, 1], &[]),
            "invalid_field",
        ),
        refused(
            "sources_names_itself",
            "kind 13 naming its own resource as a source",
            sources(&[0x42], &[]),
            "invalid_field",
        ),
        refused(
            "sources_nine_links",
            "kind 13 with 9 links: at most 8",
            sources(&[], &nine),
            "too_many_items",
        ),
        refused_one(
            "sources_with_reference",
            "kind 13 with a related reference: the resource and its sources are in the body",
            signed(
                NOW,
                vec![Ref {
                    relation: Relation::Related,
                    id: EntryId([0x42; 32]),
                }],
                sources(&[1], &[]),
            ),
            "bad_references",
        ),
    ]);
    out
}

/// Links that are not `http://` or `https://` then printable ASCII without spaces.
fn link_vectors() -> Vec<Refused> {
    let cases: [(&str, &str, &str); 5] = [
        (
            "sources_link_upper_case_scheme",
            "HTTPS://example.org/",
            "the scheme in upper case",
        ),
        (
            "sources_link_scheme_only",
            "https://",
            "nothing after the scheme",
        ),
        (
            "sources_link_delete_byte",
            "https://example.org/\u{7f}",
            "a DEL byte (0x7F)",
        ),
        (
            "sources_link_non_ascii",
            "https://example.org/caf\u{e9}",
            "a non-ASCII character (é)",
        ),
        ("sources_link_ftp", "ftp://example.org/", "another scheme"),
    ];
    cases
        .into_iter()
        .map(|(name, link, why)| {
            refused_one(
                name,
                &format!("kind 13 whose link has {why}"),
                signed(NOW, vec![], sources(&[], &[link])),
                "invalid_field",
            )
        })
        .collect()
}
