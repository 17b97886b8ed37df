//! Sync requests through the swarm, both ways: requests this node sent, waiting for their
//! answers, and requests from peers being answered by tasks in a bounded set.

use std::collections::HashMap;

use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use staffroom_protocol::sync::{SyncRequest, SyncResponse};
use staffroom_protocol::NetworkId;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::client::NetError;
use crate::ingest::Ingest;
use crate::sync::serve::{self, Verdict};

/// Sync requests this node waits on at once.
pub const SYNC_PENDING_MAX: usize = 64;
/// Sync requests from peers being answered at once; beyond, peers are told to come back.
pub const SYNC_SERVING_MAX: usize = 32;

pub type SyncReply = oneshot::Sender<Result<SyncResponse, NetError>>;

/// A peer's request, answered, waiting to be sent back.
pub struct Served {
    pub channel: ResponseChannel<SyncResponse>,
    pub response: SyncResponse,
    pub peer: PeerId,
    pub verdict: Verdict,
    /// The network, and membership entries new here to gossip on.
    pub relay: (NetworkId, Vec<Vec<u8>>),
}

#[derive(Default)]
pub struct SyncRoutes {
    pending: HashMap<OutboundRequestId, SyncReply>,
    serving: JoinSet<Served>,
}

impl SyncRoutes {
    pub fn can_send(&self) -> bool {
        self.pending.len() < SYNC_PENDING_MAX
    }

    pub fn sent(&mut self, id: OutboundRequestId, reply: SyncReply) {
        self.pending.insert(id, reply);
    }

    /// The answer (or failure) of a request this node sent.
    pub fn answered(&mut self, id: OutboundRequestId, answer: Result<SyncResponse, NetError>) {
        if let Some(reply) = self.pending.remove(&id) {
            let _ = reply.send(answer);
        }
    }

    /// Starts answering a peer's request. Gives the channel back when the set is full.
    pub fn serve(
        &mut self,
        ingest: &Ingest,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) -> Result<(), ResponseChannel<SyncResponse>> {
        if self.serving.len() >= SYNC_SERVING_MAX {
            return Err(channel);
        }
        let ingest = ingest.clone();
        let span = tracing::debug_span!("sync_serve", %peer, network = %request.network().short());
        self.serving.spawn(
            async move {
                let network = request.network();
                let (response, verdict, relay) =
                    serve::serve_relaying(peer, request, &ingest).await;
                Served {
                    channel,
                    response,
                    peer,
                    verdict,
                    relay: (network, relay),
                }
            }
            .instrument(span),
        );
        Ok(())
    }

    pub fn is_serving(&self) -> bool {
        !self.serving.is_empty()
    }

    /// The next answered request. `None` if its task failed: the peer's request then fails
    /// on its side (no answer), and nobody is blamed.
    pub async fn next_served(&mut self) -> Option<Served> {
        match self.serving.join_next().await? {
            Ok(served) => Some(served),
            Err(e) => {
                tracing::error!(error = %e, "sync serving task failed");
                None
            }
        }
    }

    pub async fn shutdown(&mut self) {
        self.serving.shutdown().await;
    }
}
