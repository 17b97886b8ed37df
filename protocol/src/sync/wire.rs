//! The request and response frames of the sync protocol (`/staffroom/sync/2`), hand-encoded
//! and bounded on encode and decode.
//!
//! ```text
//! request  = 0 network:[32] message:blob        reconcile: a range message
//!          | 1 network:[32] count:varint prefix:[8]*count      fetch the entries whose ids
//!                                                            start with these prefixes
//!          | 2 network:[32] count:varint entry:blob*count       push these entries
//! response = 0 message:blob                     reconcile
//!          | 1 count:varint entry:blob*count    entries (those found, in request order)
//!          | 2 accepted:varint rejected:varint  push result
//!          | 3 reason:blob                      refused (not a member, busy), UTF-8
//! blob     = len:varint bytes
//! ```

use super::bytes::{put_varint, Cursor, Malformed};
use super::message::{IdPrefix, ID_PREFIX_BYTES};
use crate::ids::NetworkId;
use crate::limits::ENTRY_BYTES_MAX;

/// One frame at most, either way.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Ids in one fetch.
pub const FETCH_IDS_MAX: usize = 1024;
/// Entry bytes in one push or one fetch response (a frame has room for this plus framing).
pub const PUSH_BYTES_MAX: usize = 2 * 1024 * 1024;
const REASON_BYTES_MAX: usize = 200;
/// Entries in one push or fetch response at most.
pub const ENTRIES_PER_FRAME_MAX: usize =
    PUSH_BYTES_MAX / (crate::envelope::HEADER_BYTES + crate::envelope::SIGNATURE_BYTES);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    Reconcile {
        network: NetworkId,
        message: Vec<u8>,
    },
    Fetch {
        network: NetworkId,
        ids: Vec<IdPrefix>,
    },
    Push {
        network: NetworkId,
        entries: Vec<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    Reconcile { message: Vec<u8> },
    Entries { entries: Vec<Vec<u8>> },
    Pushed { accepted: u64, rejected: u64 },
    Refused { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("sync frame is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("sync frame is malformed: {0}")]
    Malformed(&'static str),
}

impl SyncRequest {
    pub fn network(&self) -> NetworkId {
        match self {
            SyncRequest::Reconcile { network, .. }
            | SyncRequest::Fetch { network, .. }
            | SyncRequest::Push { network, .. } => *network,
        }
    }

    /// Bytes of the encoding, without encoding (for accounting).
    pub fn encoded_len(&self) -> usize {
        1 + 32
            + match self {
                SyncRequest::Reconcile { message, .. } => blob_len(message.len()),
                SyncRequest::Fetch { ids, .. } => {
                    varint_len(ids.len()) + ids.len() * ID_PREFIX_BYTES
                }
                SyncRequest::Push { entries, .. } => entries_len(entries),
            }
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        match self {
            SyncRequest::Reconcile { network, message } => {
                out.push(0);
                out.extend_from_slice(network.as_bytes());
                put_blob(&mut out, message);
            }
            SyncRequest::Fetch { network, ids } => {
                if ids.len() > FETCH_IDS_MAX {
                    return Err(WireError::Malformed("too many ids in one fetch"));
                }
                out.push(1);
                out.extend_from_slice(network.as_bytes());
                put_varint(&mut out, ids.len() as u64);
                ids.iter().for_each(|p| out.extend_from_slice(p));
            }
            SyncRequest::Push { network, entries } => {
                out.push(2);
                out.extend_from_slice(network.as_bytes());
                put_entries(&mut out, entries)?;
            }
        }
        check_len(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, WireError> {
        check_len_ref(bytes)?;
        let mut r = Cursor::new(bytes);
        let tag = r.u8()?;
        let mut network = [0u8; 32];
        network.copy_from_slice(r.take(32)?);
        let network = NetworkId(network);
        let request = match tag {
            0 => SyncRequest::Reconcile {
                network,
                message: r.blob(FRAME_BYTES_MAX)?.to_vec(),
            },
            1 => {
                let count = r.varint()? as usize;
                if count > FETCH_IDS_MAX {
                    return Err(WireError::Malformed("too many ids in one fetch"));
                }
                let ids = r.chunks::<ID_PREFIX_BYTES>(count as u64)?;
                SyncRequest::Fetch { network, ids }
            }
            2 => SyncRequest::Push {
                network,
                entries: read_entries(&mut r)?,
            },
            _ => return Err(WireError::Malformed("unknown request")),
        };
        r.finish()?;
        Ok(request)
    }
}

impl SyncResponse {
    /// Bytes of the encoding, without encoding (for accounting).
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            SyncResponse::Reconcile { message } => blob_len(message.len()),
            SyncResponse::Entries { entries } => entries_len(entries),
            SyncResponse::Pushed { accepted, rejected } => {
                varint_len(*accepted as usize) + varint_len(*rejected as usize)
            }
            SyncResponse::Refused { reason } => blob_len(reason_cut(reason).len()),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        match self {
            SyncResponse::Reconcile { message } => {
                out.push(0);
                put_blob(&mut out, message);
            }
            SyncResponse::Entries { entries } => {
                out.push(1);
                put_entries(&mut out, entries)?;
            }
            SyncResponse::Pushed { accepted, rejected } => {
                out.push(2);
                put_varint(&mut out, *accepted);
                put_varint(&mut out, *rejected);
            }
            SyncResponse::Refused { reason } => {
                out.push(3);
                put_blob(&mut out, reason_cut(reason).as_bytes());
            }
        }
        check_len(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, WireError> {
        check_len_ref(bytes)?;
        let mut r = Cursor::new(bytes);
        let response = match r.u8()? {
            0 => SyncResponse::Reconcile {
                message: r.blob(FRAME_BYTES_MAX)?.to_vec(),
            },
            1 => SyncResponse::Entries {
                entries: read_entries(&mut r)?,
            },
            2 => SyncResponse::Pushed {
                accepted: r.varint()?,
                rejected: r.varint()?,
            },
            3 => {
                let raw = r.blob(REASON_BYTES_MAX)?;
                SyncResponse::Refused {
                    reason: String::from_utf8_lossy(raw).into_owned(),
                }
            }
            _ => return Err(WireError::Malformed("unknown response")),
        };
        r.finish()?;
        Ok(response)
    }
}

fn check_len(out: Vec<u8>) -> Result<Vec<u8>, WireError> {
    check_len_ref(&out)?;
    Ok(out)
}

fn check_len_ref(bytes: &[u8]) -> Result<(), WireError> {
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: FRAME_BYTES_MAX,
        });
    }
    Ok(())
}

/// A refusal's reason as sent: its first characters, within the reason's byte limit.
fn reason_cut(reason: &str) -> &str {
    let end = reason
        .char_indices()
        .nth(REASON_BYTES_MAX / 4)
        .map_or(reason.len(), |(i, _)| i);
    &reason[..end]
}

fn varint_len(v: usize) -> usize {
    let mut out = Vec::with_capacity(10);
    put_varint(&mut out, v as u64);
    out.len()
}

fn blob_len(len: usize) -> usize {
    varint_len(len) + len
}

fn entries_len(entries: &[Vec<u8>]) -> usize {
    varint_len(entries.len()) + entries.iter().map(|e| blob_len(e.len())).sum::<usize>()
}

fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    put_varint(out, blob.len() as u64);
    out.extend_from_slice(blob);
}

fn put_entries(out: &mut Vec<u8>, entries: &[Vec<u8>]) -> Result<(), WireError> {
    let total: usize = entries.iter().map(Vec::len).sum();
    let too_many = entries.len() > ENTRIES_PER_FRAME_MAX;
    if too_many || total > PUSH_BYTES_MAX || entries.iter().any(|e| e.len() > ENTRY_BYTES_MAX) {
        return Err(WireError::Malformed(
            "entries exceed the batch or entry size limit",
        ));
    }
    put_varint(out, entries.len() as u64);
    entries.iter().for_each(|e| put_blob(out, e));
    Ok(())
}

fn read_entries(r: &mut Cursor<'_>) -> Result<Vec<Vec<u8>>, Malformed> {
    let count = r.varint()?;
    // No valid entry is shorter than its header and signature, so no honest frame holds more
    // than this many; the bound keeps a frame of empty blobs from costing many allocations.
    if count > ENTRIES_PER_FRAME_MAX as u64 || count > r.remaining() as u64 {
        return Err(Malformed("entry count exceeds the frame"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut total = 0usize;
    for _ in 0..count {
        let entry = r.blob(ENTRY_BYTES_MAX)?;
        total = total.saturating_add(entry.len());
        if total > PUSH_BYTES_MAX {
            return Err(Malformed("entries exceed the batch size limit"));
        }
        entries.push(entry.to_vec());
    }
    Ok(entries)
}

impl From<Malformed> for WireError {
    fn from(m: Malformed) -> Self {
        WireError::Malformed(m.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let net = NetworkId([3; 32]);
        let requests = [
            SyncRequest::Reconcile {
                network: net,
                message: vec![1, 0, 0],
            },
            SyncRequest::Fetch {
                network: net,
                ids: vec![[1; 8], [2; 8]],
            },
            SyncRequest::Push {
                network: net,
                entries: vec![vec![9; 300], vec![]],
            },
        ];
        for r in requests {
            let bytes = r.encode().unwrap();
            assert_eq!(bytes.len(), r.encoded_len());
            assert_eq!(SyncRequest::decode(&bytes).unwrap(), r);
        }
        let responses = [
            SyncResponse::Reconcile {
                message: vec![1, 0, 0],
            },
            SyncResponse::Entries {
                entries: vec![vec![7; 10]],
            },
            SyncResponse::Pushed {
                accepted: 3,
                rejected: 1,
            },
            SyncResponse::Refused {
                reason: "not a member".into(),
            },
        ];
        for r in responses {
            let bytes = r.encode().unwrap();
            assert_eq!(bytes.len(), r.encoded_len());
            assert_eq!(SyncResponse::decode(&bytes).unwrap(), r);
        }
    }

    #[test]
    fn bounds_hold_both_ways() {
        let net = NetworkId([3; 32]);
        let ids = vec![[1u8; 8]; FETCH_IDS_MAX + 1];
        assert!(SyncRequest::Fetch { network: net, ids }.encode().is_err());
        let big = vec![vec![0u8; ENTRY_BYTES_MAX]; PUSH_BYTES_MAX / ENTRY_BYTES_MAX + 1];
        assert!(SyncRequest::Push {
            network: net,
            entries: big
        }
        .encode()
        .is_err());
        assert!(SyncRequest::decode(&vec![0u8; FRAME_BYTES_MAX + 1]).is_err());
        // A count claiming more entries than bytes left is refused before allocating.
        let mut lie = vec![1u8];
        put_varint(&mut lie, u64::MAX >> 1);
        assert!(SyncResponse::decode(&lie).is_err());
        assert!(SyncResponse::decode(&[9]).is_err());
        // A frame of empty blobs is refused by count, before any allocation per blob.
        let mut empties = vec![1u8];
        put_varint(&mut empties, ENTRIES_PER_FRAME_MAX as u64 + 1);
        empties.extend(std::iter::repeat_n(0u8, ENTRIES_PER_FRAME_MAX + 1));
        assert!(SyncResponse::decode(&empties).is_err());
        assert!(
            SyncResponse::decode(&[2, 1, 1, 0]).is_err(),
            "trailing bytes"
        );
    }
}
