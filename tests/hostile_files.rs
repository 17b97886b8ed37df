//! The hostile peer's file server: answers `have` with yes for its one file, and `get` with
//! that file's true parent hashes around bytes in which every group has one byte flipped.

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

pub async fn serve_corrupt(
    mut incoming: libp2p_stream::IncomingStreams,
    data: Vec<u8>,
    sent: Arc<AtomicU64>,
) {
    let outboard = PreOrderOutboard::<Vec<u8>>::create(std::io::Cursor::new(&data), BLOCK_SIZE)
        .expect("outboard in memory");
    let root = staffroom_protocol::FileRoot(*outboard.root.as_bytes());
    let outboard = PreOrderOutboard {
        root: outboard.root,
        tree: BaoTree::new(data.len() as u64, BLOCK_SIZE),
        data: bytes::Bytes::from(outboard.data),
    };
    let mut corrupted = data;
    for at in (100..corrupted.len()).step_by(CHUNK_GROUP_BYTES as usize) {
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
                    answer.extend(roots.iter().map(|r| u8::from(*r == root)));
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
