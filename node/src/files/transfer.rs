//! Asking one peer over `/staffroom/files/1`: which files it holds (`have`), and a range of
//! chunk groups of one file (`get`), each group verified against the file's root before it
//! is handed on. A wrong byte is caught in the group that carries it.

use std::ops::Range;
use std::time::Duration;

use bao_tree::io::fsm::{ResponseDecoder, ResponseDecoderNext};
use bao_tree::io::{BaoContentItem, DecodeError};
use bao_tree::{BaoTree, ChunkNum, ChunkRanges, TreeNode};
use libp2p::{PeerId, StreamProtocol};
use libp2p_stream::Control;
use staffroom_protocol::files::plan::{Failure, Progress};
use staffroom_protocol::files::wire::{
    FileRequest, GetStatus, FILES_PROTOCOL, HAVE_ANSWER_BYTES, REQUEST_BYTES_MAX,
};
use staffroom_protocol::files::{group_count, CHUNK_GROUP_BYTES};
use staffroom_protocol::{FileRef, FileRoot, NetworkId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use super::blobs::BLOCK_SIZE;

/// How long opening a stream and answering a `have` may take.
pub const HAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait for the next verified group of a `get`: a peer that stalls longer is
/// given up on, and its groups go to another source.
pub const GROUP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn protocol() -> StreamProtocol {
    StreamProtocol::new(FILES_PROTOCOL)
}

/// Why a request to one peer did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("peer sent bytes that do not match the file's root: {0}")]
    Corrupt(String),
    #[error("peer does not hold the file")]
    NotHere,
    #[error("peer is busy")]
    Busy,
    #[error("peer stalled for {0:?}")]
    Stalled(Duration),
    #[error("stream failed: {0}")]
    Stream(String),
    #[error("could not keep the bytes here: {0}")]
    Local(String),
}

impl TransferError {
    /// What the download's plan makes of it. Our own storage failure is not the peer's.
    pub fn failure(&self) -> Failure {
        match self {
            TransferError::Corrupt(_) => Failure::Corrupt,
            TransferError::NotHere => Failure::NotHere,
            TransferError::Busy => Failure::Busy,
            _ => Failure::Transient,
        }
    }
}

type Stream = Compat<libp2p::Stream>;

async fn open(
    control: &mut Control,
    peer: PeerId,
    request: &FileRequest,
) -> Result<Stream, TransferError> {
    let stream = control
        .open_stream(peer, protocol())
        .await
        .map_err(|e| TransferError::Stream(e.to_string()))?;
    let mut stream = stream.compat();
    let bytes = request.encode();
    debug_assert!(bytes.len() <= REQUEST_BYTES_MAX);
    let len =
        u16::try_from(bytes.len()).map_err(|_| TransferError::Local("request too large".into()))?;
    let io = |e: std::io::Error| TransferError::Stream(e.to_string());
    stream.write_all(&len.to_be_bytes()).await.map_err(io)?;
    stream.write_all(&bytes).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    Ok(stream)
}

/// Which of `roots` `peer` holds complete for `network`, and of what size.
pub async fn have(
    control: &mut Control,
    peer: PeerId,
    network: NetworkId,
    roots: Vec<FileRoot>,
) -> Result<Vec<Option<u64>>, TransferError> {
    let asked = roots.len();
    let exchange = async {
        let mut stream = open(control, peer, &FileRequest::Have { network, roots }).await?;
        let mut answer = vec![0u8; 1 + asked * HAVE_ANSWER_BYTES];
        stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| TransferError::Stream(e.to_string()))?;
        if usize::from(answer[0]) != asked {
            return Err(TransferError::Stream(
                "have: answer of the wrong length".into(),
            ));
        }
        let held = answer[1..].chunks_exact(HAVE_ANSWER_BYTES).map(|a| {
            let size = u64::from_be_bytes(a[1..].try_into().unwrap_or([0; 8]));
            (a[0] == 1).then_some(size)
        });
        Ok(held.collect())
    };
    tokio::time::timeout(HAVE_TIMEOUT, exchange)
        .await
        .map_err(|_| TransferError::Stalled(HAVE_TIMEOUT))?
}

/// A verified parent hash pair of the file's tree, as it arrived.
pub type ParentPair = (blake3::Hash, blake3::Hash);

/// Asks `peer` for `groups` of `file`; hands each verified parent pair to `parent` and each
/// verified group to `keep` (its index, its byte offset, its bytes), which writes it and says
/// whether to go on. Returns when every group came, or `keep` said stop.
pub async fn get(
    control: &mut Control,
    peer: PeerId,
    network: NetworkId,
    file: &FileRef,
    groups: Range<u64>,
    mut parent: impl FnMut(TreeNode, &ParentPair),
    mut keep: impl FnMut(u64, u64, &[u8]) -> Result<Progress, String>,
) -> Result<(), TransferError> {
    let request = FileRequest::Get {
        network,
        root: file.root,
        size_bytes: file.size_bytes,
        groups: vec![groups.clone()],
    };
    let mut stream = tokio::time::timeout(HAVE_TIMEOUT, open(control, peer, &request))
        .await
        .map_err(|_| TransferError::Stalled(HAVE_TIMEOUT))??;
    let status = tokio::time::timeout(GROUP_TIMEOUT, stream.read_u8())
        .await
        .map_err(|_| TransferError::Stalled(GROUP_TIMEOUT))?
        .map_err(|e| TransferError::Stream(e.to_string()))?;
    match GetStatus::from_byte(status) {
        Some(GetStatus::Ok) => {}
        Some(GetStatus::NotHere) => return Err(TransferError::NotHere),
        Some(GetStatus::Busy) => return Err(TransferError::Busy),
        None => return Err(TransferError::Stream(format!("unknown status {status}"))),
    }
    let mut decoder = ResponseDecoder::new(
        blake3::Hash::from_bytes(file.root.0),
        chunk_ranges(&groups, file.size_bytes),
        BaoTree::new(file.size_bytes, BLOCK_SIZE),
        iroh_io::TokioStreamReader(stream),
    );
    loop {
        let next = tokio::time::timeout(GROUP_TIMEOUT, decoder.next())
            .await
            .map_err(|_| TransferError::Stalled(GROUP_TIMEOUT))?;
        let item = match next {
            ResponseDecoderNext::More((rest, item)) => {
                decoder = rest;
                item
            }
            ResponseDecoderNext::Done(_) => return Ok(()),
        };
        let leaf = match item.map_err(decode_error)? {
            BaoContentItem::Parent(p) => {
                parent(p.node, &p.pair);
                continue;
            }
            BaoContentItem::Leaf(leaf) => leaf,
        };
        let group = leaf.offset / CHUNK_GROUP_BYTES;
        if leaf.offset % CHUNK_GROUP_BYTES != 0
            || leaf.data.len() as u64 != group_len(group, file.size_bytes)
        {
            return Err(TransferError::Stream(
                "a leaf that is not one whole group".into(),
            ));
        }
        match keep(group, leaf.offset, &leaf.data).map_err(TransferError::Local)? {
            Progress::Continue => {}
            // Dropping the stream resets it: the peer stops sending.
            Progress::Stop => return Ok(()),
        }
    }
}

fn decode_error(e: DecodeError) -> TransferError {
    match e {
        DecodeError::ParentHashMismatch(_) | DecodeError::LeafHashMismatch(_) => {
            TransferError::Corrupt(e.to_string())
        }
        other => TransferError::Stream(other.to_string()),
    }
}

/// The chunks of `groups`, clipped to the file.
pub fn chunk_ranges(groups: &Range<u64>, size_bytes: u64) -> ChunkRanges {
    let per_group = CHUNK_GROUP_BYTES / 1024;
    let end_chunk = ChunkNum::chunks(size_bytes);
    let start = ChunkNum(groups.start.saturating_mul(per_group)).min(end_chunk);
    let end = ChunkNum(groups.end.saturating_mul(per_group)).min(end_chunk);
    ChunkRanges::from(start..end)
}

/// Bytes in group `group` of a file of `size_bytes` (the last one may be short).
pub fn group_len(group: u64, size_bytes: u64) -> u64 {
    let start = group.saturating_mul(CHUNK_GROUP_BYTES);
    if group >= group_count(size_bytes) {
        return 0;
    }
    (size_bytes - start).min(CHUNK_GROUP_BYTES)
}
