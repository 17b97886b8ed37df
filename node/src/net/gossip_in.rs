//! Incoming gossip: each message is verified and stored by a task in a bounded set, then its
//! verdict goes back to gossipsub. Only an entry that breaks a rule every node shares is
//! rejected (and counted against the peer that sent it); anything that depends on this node —
//! its clock, membership, storage, a full queue — is ignored: not forwarded, nobody blamed.

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::PeerId;
use staffroom_protocol::NetworkId;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::ingest::{Ingest, IngestError, Ingested};

/// Gossip messages being verified and stored at once; beyond this, messages are ignored
/// (not forwarded, sender not penalised) and left to catch-up sync.
pub const VALIDATIONS_IN_FLIGHT_MAX: usize = 512;

/// A gossiped entry, verified and stored (or not).
pub struct Validated {
    pub message_id: MessageId,
    pub source: PeerId,
    pub network: NetworkId,
    pub result: Result<Ingested, IngestError>,
}

/// What to tell gossipsub about a message, and whether to count it against its sender.
pub fn verdict(result: &Result<Ingested, IngestError>) -> (MessageAcceptance, bool) {
    match result {
        Ok(_) => (MessageAcceptance::Accept, false),
        Err(e) if e.blames_sender() => (MessageAcceptance::Reject, true),
        Err(_) => (MessageAcceptance::Ignore, false),
    }
}

#[derive(Default)]
pub struct Validations {
    tasks: JoinSet<Validated>,
}

impl Validations {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Starts verifying a message; false (and nothing started) when the set is full.
    pub fn start(
        &mut self,
        ingest: &Ingest,
        message_id: MessageId,
        source: PeerId,
        network: NetworkId,
        data: Vec<u8>,
    ) -> bool {
        if self.tasks.len() >= VALIDATIONS_IN_FLIGHT_MAX {
            return false;
        }
        let ingest = ingest.clone();
        let span = tracing::debug_span!("gossip", peer = %source, network = %network.short());
        self.tasks.spawn(
            async move {
                let result = ingest.ingest(data, Some(network)).await;
                Validated {
                    message_id,
                    source,
                    network,
                    result,
                }
            }
            .instrument(span),
        );
        true
    }

    /// The next finished validation. `None` if a task failed (it took its message with it:
    /// gossipsub drops an unreported message after a few heartbeats, blaming nobody).
    pub async fn next(&mut self) -> Option<Validated> {
        match self.tasks.join_next().await? {
            Ok(validated) => Some(validated),
            Err(e) => {
                tracing::error!(error = %e, "gossip validation task failed");
                None
            }
        }
    }

    /// Waits for every validation in flight (so what they verified is stored before shutdown).
    pub async fn drain(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_protocol::EntryError;

    #[test]
    fn only_shared_rule_breaks_are_rejected_and_counted() {
        let invalid = Err(IngestError::Invalid(EntryError::BadSignature));
        assert_eq!(verdict(&invalid), (MessageAcceptance::Reject, true));
        let early = Err(IngestError::TooEarly {
            created_at_ms: 1,
            held: true,
        });
        assert_eq!(verdict(&early), (MessageAcceptance::Ignore, false));
        let not_member = Err(IngestError::NotMember(NetworkId([1; 32])));
        assert_eq!(verdict(&not_member), (MessageAcceptance::Ignore, false));
        let worker = Err(IngestError::Worker("gone".into()));
        assert_eq!(verdict(&worker), (MessageAcceptance::Ignore, false));
        let storage = Err(IngestError::Store(crate::store::StoreError::Closed));
        assert_eq!(verdict(&storage), (MessageAcceptance::Ignore, false));
        let future_kind_body = Err(IngestError::Invalid(EntryError::UnknownKind(42)));
        assert_eq!(
            verdict(&future_kind_body),
            (MessageAcceptance::Ignore, false)
        );
        let wrong = Err(IngestError::WrongNetwork {
            entry: NetworkId([1; 32]),
            channel: NetworkId([2; 32]),
        });
        assert_eq!(verdict(&wrong), (MessageAcceptance::Reject, true));
    }
}
