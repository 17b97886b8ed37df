//! The hostile peer's file server: answers `have` with yes for its one file, and `get` with
//! that file's true parent hashes around bytes in which one group in every 64 — groups 37,
//! 101, 165, … — has a byte flipped. Every request it can be given (up to 256 groups) holds
//! a corrupt group, and the groups before it are true.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::CreateOutboard;
use bao_tree::BaoTree;
use futures::StreamExt;
use staffroom_node::files::blobs::BLOCK_SIZE;
use staffroom_node::files::transfer::chunk_ranges;
use staffroom_protocol::files::wire::{FileRequest, GetStatus};
use staffroom_protocol::files::CHUNK_GROUP_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// One group in this many is corrupted.
pub const CORRUPT_EVERY_GROUPS: u64 = 64;

pub async fn serve_corrupt(
    mut incoming: libp2p_stream::IncomingStreams,
    data: Vec<u8>,
    sent: Arc<AtomicU64>,
) {
    let outboard = PreOrderOutboard::<Vec<u8>>::create(std::io::Cursor::new(&data), BLOCK_SIZE)
        .expect("outboard in memory");
    let root = staffroom_protocol::FileRoot(*outboard.root.as_bytes());
    let size_bytes = data.len() as u64;
    let outboard = PreOrderOutboard {
        root: outboard.root,
        tree: BaoTree::new(data.len() as u64, BLOCK_SIZE),
        data: bytes::Bytes::from(outboard.data),
    };
    let mut corrupted = data;
    let first = (CORRUPT_EVERY_GROUPS / 2 + 5) * CHUNK_GROUP_BYTES + 100;
    let step = (CORRUPT_EVERY_GROUPS * CHUNK_GROUP_BYTES) as usize;
    for at in (first as usize..corrupted.len()).step_by(step) {
        corrupted[at] ^= 0xff;
    }
    let corrupted = bytes::Bytes::from(corrupted);
    while let Some((_, stream)) = incoming.next().await {
        let (outboard, corrupted, sent) = (outboard.clone(), corrupted.clone(), sent.clone());
        tokio::spawn(async move {
            let mut stream = stream.compat();
            let len = stream.read_u16().await.unwrap_or(0);
            let mut request = vec![0u8; usize::from(len)];
            if stream.read_exact(&mut request).await.is_err() {
                return;
            }
            match FileRequest::decode(&request) {
                Ok(FileRequest::Have { roots, .. }) => {
                    let mut answer = vec![roots.len() as u8];
                    for r in &roots {
                        let size = if *r == root { size_bytes } else { 0 };
                        answer.push(u8::from(*r == root));
                        answer.extend_from_slice(&size.to_be_bytes());
                    }
                    let _ = stream.write_all(&answer).await;
                }
                Ok(FileRequest::Get {
                    size_bytes, groups, ..
                }) => {
                    let _ = stream.write_u8(GetStatus::Ok as u8).await;
                    let mut ranges = bao_tree::ChunkRanges::empty();
                    for range in &groups {
                        ranges |= chunk_ranges(range, size_bytes);
                        sent.fetch_add(range.end - range.start, Ordering::Relaxed);
                    }
                    let mut writer = iroh_io::TokioStreamWriter(&mut stream);
                    let _ =
                        bao_tree::io::fsm::encode_ranges(corrupted, outboard, &ranges, &mut writer)
                            .await;
                }
                Err(_) => return,
            }
            let _ = stream.shutdown().await;
        });
    }
}
