//! The file transfer protocol's requests (`/staffroom/files/1`), encoded canonically and
//! bounded both ways. The replies are a status byte and then, for `get`, the BLAKE3 verified
//! stream of the requested groups (see `docs/protocol.md`, "File transfer").

use std::ops::Range;

use crate::files::{group_count, FileRoot, FILE_BYTES_MAX};
use crate::ids::NetworkId;

/// The protocol id of file transfer streams.
pub const FILES_PROTOCOL: &str = "/staffroom/files/1";
/// Roots one `have` asks about at most.
pub const HAVE_ROOTS_MAX: usize = 64;
/// Group ranges one `get` asks for at most.
pub const GET_RANGES_MAX: usize = 16;
/// Groups one `get` asks for at most (16 MiB): one reply is bounded.
pub const GET_GROUPS_MAX: u64 = 1024;
/// The largest request frame (2,082 bytes): a `have` of [`HAVE_ROOTS_MAX`] roots.
pub const REQUEST_BYTES_MAX: usize = 1 + 32 + 1 + HAVE_ROOTS_MAX * 32;
/// Bytes of one root's answer to a `have`: its state and size.
pub const HAVE_ANSWER_BYTES: usize = 1 + 8;

/// What a node asks a peer for. Both name the network the file belongs to: a node serves a
/// file only to peers of a network that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// Which of these files do you hold complete, and of what size? Reply: `u8` count, then
    /// per root a `u8` (0 = no, 1 = complete) and a `u64` size (0 when not held). The size
    /// tells a fetching node which of the sizes signed for a root is the true one.
    Have {
        network: NetworkId,
        roots: Vec<FileRoot>,
    },
    /// Send these chunk groups of this file. Reply: a status byte ([`GetStatus`]), then for
    /// `Ok` the verified stream of exactly these groups.
    Get {
        network: NetworkId,
        root: FileRoot,
        size_bytes: u64,
        groups: Vec<Range<u64>>,
    },
}

/// The first byte of the reply to a `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// The verified stream follows.
    Ok = 0,
    /// This node does not hold the file complete, or not for that network and peer.
    NotHere = 1,
    /// Too many transfers at once; ask again later or elsewhere.
    Busy = 2,
}

impl GetStatus {
    pub fn from_byte(b: u8) -> Option<GetStatus> {
        [GetStatus::Ok, GetStatus::NotHere, GetStatus::Busy]
            .into_iter()
            .find(|s| *s as u8 == b)
    }
}

/// A request that breaks the protocol's rules: its sender is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("file request is truncated")]
    Truncated,
    #[error("file request has {0} trailing bytes")]
    Trailing(usize),
    #[error("unknown file request tag {0}")]
    UnknownTag(u8),
    #[error("file request is malformed: {0}")]
    Malformed(&'static str),
}

impl FileRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQUEST_BYTES_MAX);
        match self {
            FileRequest::Have { network, roots } => {
                out.push(1);
                out.extend_from_slice(network.as_bytes());
                out.push(u8::try_from(roots.len()).unwrap_or(u8::MAX));
                for root in roots {
                    out.extend_from_slice(&root.0);
                }
            }
            FileRequest::Get {
                network,
                root,
                size_bytes,
                groups,
            } => {
                out.push(2);
                out.extend_from_slice(network.as_bytes());
                out.extend_from_slice(&root.0);
                out.extend_from_slice(&size_bytes.to_be_bytes());
                out.push(u8::try_from(groups.len()).unwrap_or(u8::MAX));
                for range in groups {
                    out.extend_from_slice(&range.start.to_be_bytes());
                    out.extend_from_slice(&range.end.to_be_bytes());
                }
            }
        }
        out
    }

    /// Decodes and checks a request: counts within bounds, ranges non-empty, ascending,
    /// apart, inside the file and at most [`GET_GROUPS_MAX`] groups in all.
    pub fn decode(bytes: &[u8]) -> Result<FileRequest, WireError> {
        let mut r = Cursor(bytes);
        let request = match r.u8()? {
            1 => {
                let network = NetworkId(r.array()?);
                let count = usize::from(r.u8()?);
                if count == 0 || count > HAVE_ROOTS_MAX {
                    return Err(WireError::Malformed("have asks about 1 to 64 roots"));
                }
                let roots = (0..count)
                    .map(|_| r.array().map(FileRoot))
                    .collect::<Result<_, _>>()?;
                FileRequest::Have { network, roots }
            }
            2 => decode_get(&mut r)?,
            tag => return Err(WireError::UnknownTag(tag)),
        };
        match r.0.len() {
            0 => Ok(request),
            n => Err(WireError::Trailing(n)),
        }
    }
}

fn decode_get(r: &mut Cursor<'_>) -> Result<FileRequest, WireError> {
    let network = NetworkId(r.array()?);
    let root = FileRoot(r.array()?);
    let size_bytes = u64::from_be_bytes(r.array()?);
    if size_bytes > FILE_BYTES_MAX {
        return Err(WireError::Malformed("file size over 1 TiB"));
    }
    let count = usize::from(r.u8()?);
    if count == 0 || count > GET_RANGES_MAX {
        return Err(WireError::Malformed("get asks for 1 to 16 ranges"));
    }
    let (len, mut total, mut previous_end) = (group_count(size_bytes), 0u64, None);
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        let start = u64::from_be_bytes(r.array()?);
        let end = u64::from_be_bytes(r.array()?);
        let apart = previous_end.is_none_or(|e| start > e);
        if start >= end || end > len || !apart {
            return Err(WireError::Malformed(
                "ranges must be non-empty, ascending, apart and inside the file",
            ));
        }
        total += end - start;
        previous_end = Some(end);
        groups.push(start..end);
    }
    if total > GET_GROUPS_MAX {
        return Err(WireError::Malformed("get asks for more than 1024 groups"));
    }
    Ok(FileRequest::Get {
        network,
        root,
        size_bytes,
        groups,
    })
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        if self.0.len() < N {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.0.split_at(N);
        self.0 = tail;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
}

#[cfg(test)]
// A get carries a list of ranges; a list of one range is what these tests mean.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::files::CHUNK_GROUP_BYTES;

    fn get(groups: Vec<Range<u64>>) -> FileRequest {
        FileRequest::Get {
            network: NetworkId([1; 32]),
            root: FileRoot([2; 32]),
            size_bytes: 100 * CHUNK_GROUP_BYTES - 1,
            groups,
        }
    }

    #[test]
    fn requests_round_trip() {
        let have = FileRequest::Have {
            network: NetworkId([3; 32]),
            roots: vec![FileRoot([4; 32]); HAVE_ROOTS_MAX],
        };
        assert_eq!(have.encode().len(), REQUEST_BYTES_MAX);
        for request in [
            have,
            get(vec![0..1, 5..99, 99..100][..2].to_vec()),
            get(vec![99..100]),
        ] {
            assert_eq!(FileRequest::decode(&request.encode()), Ok(request));
        }
    }

    #[test]
    fn malformed_requests_are_refused() {
        for groups in [
            vec![],
            vec![3..3],
            vec![5..9, 9..12],
            vec![9..12, 1..2],
            vec![99..101],
        ] {
            assert!(
                FileRequest::decode(&get(groups.clone()).encode()).is_err(),
                "{groups:?}"
            );
        }
        let too_many = get((0..17).map(|i| i * 2..i * 2 + 1).collect());
        assert!(FileRequest::decode(&too_many.encode()).is_err());
        let mut big = get(vec![0..2]);
        if let FileRequest::Get {
            size_bytes, groups, ..
        } = &mut big
        {
            *size_bytes = 4096 * CHUNK_GROUP_BYTES;
            *groups = vec![0..1025];
        }
        assert!(FileRequest::decode(&big.encode()).is_err());
        let bytes = get(vec![0..1]).encode();
        assert_eq!(
            FileRequest::decode(&bytes[..bytes.len() - 1]),
            Err(WireError::Truncated)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(FileRequest::decode(&trailing), Err(WireError::Trailing(1)));
        assert_eq!(FileRequest::decode(&[9]), Err(WireError::UnknownTag(9)));
        assert!(FileRequest::decode(&[]).is_err());
    }
}
