//! The event loop's routes for catch-up sync: requests served (or refused when busy),
//! answers to this node's requests handed back, and served responses sent, with what they
//! carried to relay published.

use libp2p::request_response::{self, ResponseChannel};
use staffroom_protocol::sync::{SyncRequest, SyncResponse};

use super::super::client::NetError;
use super::super::sync_route::Served;
use super::EventLoop;
use crate::sync::serve::Verdict;

impl EventLoop {
    pub(super) fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if let Err(channel) = self.sync.serve(&self.ingest, peer, request, channel) {
                        self.refuse(channel, "busy; try again later");
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.sync.answered(request_id, Ok(response)),
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                tracing::debug!(%peer, error = %error, "sync request failed");
                self.sync
                    .answered(request_id, Err(NetError::Sync(error.to_string())));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, error = %error, "answering a sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn refuse(&mut self, channel: ResponseChannel<SyncResponse>, reason: &str) {
        let refusal = SyncResponse::Refused {
            reason: reason.into(),
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, refusal);
    }

    pub(super) fn send_sync_response(&mut self, served: Served) {
        if let Verdict::Misbehaved(reason) = &served.verdict {
            self.block(served.peer, reason);
        }
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(served.channel, served.response);
        let (network, relay) = served.relay;
        for entry in relay {
            self.publish(network, entry);
        }
    }
}
