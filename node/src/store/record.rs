//! How an entry's canonical bytes are kept in the `entries` tree: one tag byte, then either
//! the bytes as they are, or the 74-byte header as it is and the rest compressed with zstd.
//!
//! Compressing once, here, costs one compression per entry; sled's own compression would
//! compress every page it writes again (an entry's bytes ~5 times over, measured: ingest fell
//! to a quarter). The header stays readable so that the open's scan reads networks and times
//! without decompressing. Readers check every unpacked record against its id (a hash of the
//! canonical bytes), so a record that unpacks wrongly is found as damage, never served.

use std::cell::RefCell;

use staffroom_protocol::envelope::{HEADER_BYTES, SIGNATURE_BYTES};
use staffroom_protocol::limits::ENTRY_BYTES_MAX;
use staffroom_protocol::{EntryId, Header};

use super::{StoreError, Trees};

/// The record holds the canonical bytes as they are.
const RAW: u8 = 0;
/// The record holds the header, then the rest of the canonical bytes compressed.
const ZSTD: u8 = 1;
/// Entries smaller than this are kept raw: their signature, keys and ids (~150 bytes that do
/// not compress) leave too little to gain for the work.
const COMPRESS_FROM_BYTES: usize = 512;
/// zstd's level: 1 gives ~0.60 of a 1 KB post against ~0.59 for level 3, in ~60% of the time.
const LEVEL: i32 = 1;

thread_local! {
    /// One compression context per thread (the writer's), reused for every entry.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

/// Why a stored record could not be unpacked: damage, or a store written by a newer node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record is empty")]
    Empty,
    #[error("the record's tag {0} is unknown here")]
    UnknownTag(u8),
    #[error("the record's compressed bytes do not decompress: {0}")]
    Corrupt(String),
}

/// The record an entry's canonical `bytes` are stored as: compressed when that saves at least
/// an eighth, raw otherwise (also when compression fails, which it does only without memory).
pub fn pack(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() >= COMPRESS_FROM_BYTES && bytes.len() > HEADER_BYTES {
        if let Some(packed) = compressed(bytes) {
            let smaller = packed.len() <= bytes.len() - bytes.len() / 8;
            if smaller && packed.len() >= MIN_RECORD_BYTES {
                return packed;
            }
        }
    }
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(RAW);
    out.extend_from_slice(bytes);
    out
}

fn compressed(bytes: &[u8]) -> Option<Vec<u8>> {
    let (header, rest) = bytes.split_at(HEADER_BYTES);
    let body = COMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        slot.as_mut()?.compress(rest).ok()
    })?;
    let mut out = Vec::with_capacity(1 + HEADER_BYTES + body.len());
    out.push(ZSTD);
    out.extend_from_slice(header);
    out.extend_from_slice(&body);
    Some(out)
}

/// The canonical bytes a record holds. Bounded: nothing decompresses past the largest entry.
pub fn unpack(record: &[u8]) -> Result<Vec<u8>, RecordError> {
    let (&tag, rest) = record.split_first().ok_or(RecordError::Empty)?;
    match tag {
        RAW if rest.len() <= ENTRY_BYTES_MAX => Ok(rest.to_vec()),
        RAW => Err(RecordError::Corrupt("longer than the largest entry".into())),
        ZSTD if rest.len() >= HEADER_BYTES => {
            let (header, body) = rest.split_at(HEADER_BYTES);
            let room = ENTRY_BYTES_MAX - HEADER_BYTES;
            let body = zstd::bulk::decompress(body, room)
                .map_err(|e| RecordError::Corrupt(e.to_string()))?;
            let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
            out.extend_from_slice(header);
            out.extend_from_slice(&body);
            Ok(out)
        }
        ZSTD => Err(RecordError::Corrupt("shorter than a header".into())),
        other => Err(RecordError::UnknownTag(other)),
    }
}

/// The smallest record `Header::parse` reads a header from (its bounds: a header and a
/// signature's worth of bytes, after the tag).
const MIN_RECORD_BYTES: usize = 1 + HEADER_BYTES + SIGNATURE_BYTES;

/// The entry's header, read from a record without unpacking it.
pub fn header(record: &[u8]) -> Option<Header> {
    match record.first()? {
        &RAW | &ZSTD => Header::parse(record.get(1..)?).ok(),
        _ => None,
    }
}

/// The canonical bytes of the entry `id` in a stored value from a store of either layout: the
/// raw bytes of a store written before records were packed, or a record. Told apart by the
/// id, which is the hash of the canonical bytes; `None` when neither matches (damage).
pub fn canonical(id: &EntryId, value: &[u8]) -> Option<Vec<u8>> {
    let matches = |bytes: &[u8]| blake3::hash(bytes).as_bytes() == id.as_bytes();
    if matches(value) {
        return Some(value.to_vec());
    }
    unpack(value).ok().filter(|bytes| matches(bytes))
}

impl Trees {
    /// The canonical bytes stored for `id`, unpacked; a record that does not unpack is damage
    /// ([`StoreError::Corrupt`]).
    pub(crate) fn record(&self, id: &EntryId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.entries.get(id.as_bytes())? {
            Some(record) => unpack(&record)
                .map(Some)
                .map_err(|_| StoreError::Corrupt(*id)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_protocol::fixtures::{key, network, signed};
    use staffroom_protocol::{BlogPost, Body};

    fn post(words: usize) -> Vec<u8> {
        let body = Body::BlogPost(BlogPost {
            title: "Retrieval practice".into(),
            body_md: "pupils practise retrieval in short quizzes ".repeat(words),
            tags: vec![],
        });
        signed(&key(1), network(1), 1_700_000_000_000, vec![], body).encode()
    }

    #[test]
    fn large_entries_are_compressed_small_ones_kept_raw_and_both_come_back() {
        for (words, compressed) in [(1, false), (40, true), (1_000, true)] {
            let bytes = post(words);
            let record = pack(&bytes);
            assert_eq!(record[0] == ZSTD, compressed, "{} bytes", bytes.len());
            assert_eq!(unpack(&record).unwrap(), bytes);
            assert_eq!(header(&record), Header::parse(&bytes).ok());
            if compressed {
                assert!(
                    record.len() < bytes.len() / 2,
                    "{} of {}",
                    record.len(),
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_value_of_either_layout_is_told_apart_by_its_id() {
        for words in [1, 40] {
            let bytes = post(words);
            let id = EntryId(*blake3::hash(&bytes).as_bytes());
            assert_eq!(canonical(&id, &bytes), Some(bytes.clone()), "raw");
            assert_eq!(canonical(&id, &pack(&bytes)), Some(bytes.clone()), "packed");
            assert_eq!(canonical(&id, &pack(&post(words + 1))), None, "another");
        }
    }

    #[test]
    fn damaged_or_unknown_records_are_errors_not_panics() {
        let record = pack(&post(40));
        assert_eq!(unpack(&[]), Err(RecordError::Empty));
        assert_eq!(unpack(&[7, 1, 2]), Err(RecordError::UnknownTag(7)));
        let mut long = vec![RAW];
        long.resize(ENTRY_BYTES_MAX + 2, 1);
        assert!(matches!(unpack(&long), Err(RecordError::Corrupt(_))));
        assert!(matches!(
            unpack(&record[..40]),
            Err(RecordError::Corrupt(_))
        ));
        let mut flipped = record.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        // Either zstd notices, or the bytes differ (readers check them against the id).
        assert_ne!(unpack(&flipped).ok(), Some(post(40)));
        // A bomb: far more than the largest entry once decompressed.
        let huge = vec![0u8; ENTRY_BYTES_MAX * 4];
        let mut bomb = vec![ZSTD];
        bomb.extend_from_slice(&huge[..HEADER_BYTES]);
        bomb.extend_from_slice(&zstd::bulk::compress(&huge, 1).unwrap());
        assert!(matches!(unpack(&bomb), Err(RecordError::Corrupt(_))));
    }
}
