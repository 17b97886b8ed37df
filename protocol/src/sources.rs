//! Sources entries (kind 13): what a resource is based on — other entries and web pages —
//! stated by the resource's author (schema.org's `isBasedOn`). A resource's own fields are
//! frozen (kinds 2 and 8 are first-release or relayed by first-release nodes as resources),
//! so the statement travels beside it as a later kind that older nodes pass on unchecked.
//!
//! The bytes say which resource and which sources; whether the statement applies (its author
//! wrote the resource, in the same network) is for the reader to judge once it holds both,
//! as for edits: every node holding the same entries shows the same sources.

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::error::EntryError;
use crate::ids::EntryId;
use crate::limits::{SOURCE_ENTRIES_COUNT_MAX, SOURCE_LINKS_COUNT_MAX, SOURCE_LINK_BYTES_MAX};

/// The body of a kind-13 entry. Both lists empty withdraws an earlier statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// The resource (the id of any of its versions) these are the sources of.
    pub resource: EntryId,
    /// Entries it is based on, strictly ascending by bytes (so each once), never `resource`.
    pub entries: Vec<EntryId>,
    /// Web pages it is based on: `http://` or `https://` addresses, each once, in the
    /// author's order.
    pub links: Vec<String>,
}

impl Sources {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(self.resource.as_bytes());
        w.u8(crate::codec::saturating_count(self.entries.len()));
        for id in &self.entries {
            w.bytes(id.as_bytes());
        }
        w.str_list(&self.links);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Sources, EntryError> {
        let resource = EntryId(r.array("resource")?);
        let count = usize::from(r.u8("entries")?);
        if count > SOURCE_ENTRIES_COUNT_MAX {
            return Err(EntryError::TooMany {
                field: "entries",
                count,
                max: SOURCE_ENTRIES_COUNT_MAX,
            });
        }
        let entries = (0..count)
            .map(|_| r.array("entries").map(EntryId))
            .collect::<Result<Vec<_>, _>>()?;
        let links = r.str_list("links", SOURCE_LINKS_COUNT_MAX, SOURCE_LINK_BYTES_MAX)?;
        Ok(Sources {
            resource,
            entries,
            links,
        })
    }

    /// The rules beyond the decoder's byte and count limits.
    pub(crate) fn check(&self) -> Result<(), EntryError> {
        let too_many = |field, count, max| EntryError::TooMany { field, count, max };
        if self.entries.len() > SOURCE_ENTRIES_COUNT_MAX {
            return Err(too_many(
                "entries",
                self.entries.len(),
                SOURCE_ENTRIES_COUNT_MAX,
            ));
        }
        if self.links.len() > SOURCE_LINKS_COUNT_MAX {
            return Err(too_many("links", self.links.len(), SOURCE_LINKS_COUNT_MAX));
        }
        if self.entries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EntryError::InvalidField {
                field: "entries",
                reason: "must be in ascending order, each once",
            });
        }
        if self.entries.contains(&self.resource) {
            return Err(EntryError::InvalidField {
                field: "entries",
                reason: "a resource is not its own source",
            });
        }
        for (i, link) in self.links.iter().enumerate() {
            check_link(link)?;
            if self.links[..i].contains(link) {
                return Err(EntryError::InvalidField {
                    field: "links",
                    reason: "contains a duplicate",
                });
            }
        }
        Ok(())
    }
}

/// A link: at most [`SOURCE_LINK_BYTES_MAX`] bytes, `http://` or `https://` (lower case)
/// and then at least one byte, every byte printable ASCII other than space (0x21 to 0x7E).
/// Characters beyond are percent-encoded, as URLs carry them anyway.
pub fn check_link(link: &str) -> Result<(), EntryError> {
    if link.len() > SOURCE_LINK_BYTES_MAX {
        return Err(EntryError::FieldTooLong {
            field: "links",
            len: link.len(),
            max: SOURCE_LINK_BYTES_MAX,
        });
    }
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"));
    let invalid = |reason| {
        Err(EntryError::InvalidField {
            field: "links",
            reason,
        })
    };
    match rest {
        None => invalid("must start with http:// or https://"),
        Some("") => invalid("names no page"),
        Some(_) if !link.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
            invalid("must be printable ASCII without spaces (percent-encode the rest)")
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(entries: &[u8], links: &[&str]) -> Sources {
        Sources {
            resource: EntryId([9; 32]),
            entries: entries.iter().map(|b| EntryId([*b; 32])).collect(),
            links: links.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn round_trip(s: &Sources) -> Sources {
        let mut w = Writer::with_capacity(64);
        s.encode(&mut w);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        let back = Sources::decode(&mut r).unwrap();
        r.finish().unwrap();
        back
    }

    #[test]
    fn statements_round_trip_including_an_empty_one() {
        for s in [
            sources(&[], &[]),
            sources(&[1, 2], &["https://example.org/a?b=c%20d", "http://x"]),
        ] {
            s.check().unwrap();
            assert_eq!(round_trip(&s), s);
        }
    }

    #[test]
    fn entries_are_ascending_once_and_never_the_resource() {
        for bad in [
            sources(&[2, 1], &[]),
            sources(&[1, 1], &[]),
            sources(&[9], &[]),
        ] {
            assert!(
                matches!(
                    bad.check(),
                    Err(EntryError::InvalidField {
                        field: "entries",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let many: Vec<u8> = (0..=16).collect();
        assert!(matches!(
            sources(&many, &[]).check(),
            Err(EntryError::TooMany {
                field: "entries",
                ..
            })
        ));
    }

    #[test]
    fn links_are_web_addresses_without_spaces() {
        for good in [
            "https://a",
            "http://example.org/path#frag",
            "https://b/%E2%9C%93",
        ] {
            check_link(good).unwrap();
        }
        let long = format!("https://{}", "a".repeat(SOURCE_LINK_BYTES_MAX));
        for bad in [
            "",
            "https://",
            "ftp://example.org",
            "HTTPS://example.org",
            "javascript:alert(1)",
            "https://example.org/a b",
            "https://example.org/\u{e9}",
            "https://example.org/\n",
            long.as_str(),
        ] {
            assert!(check_link(bad).is_err(), "{bad:?}");
        }
        assert!(sources(&[], &["https://a", "https://a"]).check().is_err());
    }

    #[test]
    fn decoding_stops_at_a_count_over_the_limit() {
        let mut w = Writer::with_capacity(64);
        w.bytes(&[9; 32]);
        w.u8(17);
        let bytes = w.finish();
        assert!(matches!(
            Sources::decode(&mut Reader::new(&bytes)),
            Err(EntryError::TooMany { count: 17, .. })
        ));
    }
}
