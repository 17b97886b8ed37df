//! `POST /v1/entries`: a teacher's signed entry, verified, stored durably and gossiped.
//!
//! A content entry is published as soon as it is verified and admitted, while the store works
//! (issue 14: the origin's durable store was the first hop's wait, 25–30 ms of every
//! delivery under load); the teacher's client is answered only once the store has it, so
//! what is acknowledged is durable here. Membership entries are stored first and published
//! after, since they change who is admitted.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::future::Future;

use staffroom_protocol::{EntryId, NetworkId};
use tokio::sync::oneshot;

use super::server::{unavailable, ApiError, ApiState};
use super::types::SubmitResponse;
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::net::{NetError, PublishReport};
use crate::store::InsertOutcome;

pub(super) async fn submit_entry(
    State(s): State<ApiState>,
    body: Bytes,
) -> Result<(StatusCode, Json<SubmitResponse>), ApiError> {
    let publish = |network| s.net.publish(network, body.to_vec());
    let (ingested, published_early) = ingest_publishing(&s.ingest, &body, publish).await;
    let Ingested {
        id,
        network,
        outcome,
        understood,
    } = ingested?;
    let gossip = match published_early {
        Some(report) => report,
        None => s.net.publish(network, body.to_vec()).await,
    }
    .map_err(unavailable)?;
    let status = match outcome {
        InsertOutcome::Inserted => StatusCode::CREATED,
        InsertOutcome::AlreadyStored => StatusCode::OK,
        InsertOutcome::Erased => StatusCode::GONE,
    };
    tracing::info!(entry = %id.short(), network = %network.short(), ?outcome, peers = gossip.peers, "entry submitted");
    Ok((
        status,
        Json(SubmitResponse {
            id,
            outcome,
            understood,
            gossip,
        }),
    ))
}

/// Ingests `bytes`, calling `publish` with its network the moment it is admitted (content
/// entries only). Returns how the ingest ended once it is stored and, if `publish` was
/// called, what it gave (`None`: not published yet).
async fn ingest_publishing<P, F>(
    ingest: &Ingest,
    bytes: &[u8],
    publish: P,
) -> (
    Result<Ingested, IngestError>,
    Option<Result<PublishReport, NetError>>,
)
where
    P: FnOnce(NetworkId) -> F,
    F: Future<Output = Result<PublishReport, NetError>>,
{
    let (admitted_tx, admitted) = oneshot::channel::<NetworkId>();
    let ingesting = async move {
        let admitted_tx = std::sync::Mutex::new(Some(admitted_tx));
        let relay = |_id: EntryId, network: NetworkId| {
            let taken = admitted_tx.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(tx) = taken {
                let _ = tx.send(network);
            }
        };
        let results = ingest
            .ingest_relaying(vec![bytes.to_vec()], None, Some(&relay))
            .await;
        // `relay` (and the sender it holds) drops here, so a publish that never got the word
        // stops waiting.
        results.and_then(|mut r| {
            r.pop()
                .unwrap_or_else(|| Err(IngestError::Worker("no verdict".into())))
        })
    };
    let publishing = async {
        let network = admitted.await.ok()?;
        Some(publish(network).await)
    };
    tokio::join!(ingesting, publishing)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use staffroom_protocol::fixtures::{self, key};
    use staffroom_protocol::membership::{Action, Policy};
    use staffroom_protocol::{AuthorId, Entry};
    use tokio::sync::mpsc;

    use super::*;
    use crate::clock::Clock;
    use crate::store::{NetworkRecord, Store};

    async fn node_in(genesis: &Entry) -> (tempfile::TempDir, Ingest) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store opens");
        let record = NetworkRecord {
            id: genesis.network,
            name: "test".into(),
            joined_at_ms: 0,
        };
        store.join_network(record).await.expect("joined");
        let ingest = Ingest::new(store, Clock::system());
        ingest
            .ingest(genesis.encode(), None)
            .await
            .expect("genesis");
        (dir, ingest)
    }

    /// Publishes by telling `published`, and reports one peer.
    fn publisher(
        published: mpsc::UnboundedSender<NetworkId>,
    ) -> impl FnOnce(NetworkId) -> std::future::Ready<Result<PublishReport, NetError>> {
        move |network| {
            let _ = published.send(network);
            std::future::ready(Ok(PublishReport {
                peers: 1,
                note: None,
            }))
        }
    }

    /// Issue 14: the origin's store was every delivery's first wait. A post goes out while its
    /// store is held up, and the teacher is answered only once it is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_post_is_published_before_it_is_stored_and_answered_after() {
        let t = crate::ingest::now_ms() - 10_000;
        let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
        let (_dir, ingest) = node_in(&genesis).await;
        let post = fixtures::signed(
            &key(1),
            genesis.network,
            t + 1,
            vec![],
            fixtures::blog_body("Hi"),
        );
        let (published_tx, mut published) = mpsc::unbounded_channel();
        let writer = ingest.store().pause_writer();
        let submitting = tokio::spawn({
            let (ingest, bytes) = (ingest.clone(), post.encode());
            async move { ingest_publishing(&ingest, &bytes, publisher(published_tx)).await }
        });
        let network = tokio::time::timeout(Duration::from_secs(10), published.recv())
            .await
            .expect("published while the store is held up");
        assert_eq!(network, Some(genesis.network));
        assert!(
            !submitting.is_finished(),
            "not answered before it is stored"
        );
        assert!(!ingest.store().contains(&post.id()).expect("lookup"));
        drop(writer);
        let (ingested, report) = submitting.await.expect("the submit task");
        let ingested = ingested.expect("stored");
        assert_eq!(ingested.outcome, InsertOutcome::Inserted);
        assert!(ingest.store().contains(&post.id()).expect("lookup"));
        assert_eq!(report.expect("published").expect("published").peers, 1);
    }

    /// A membership entry changes who is admitted: stored first, published by the caller
    /// after; and an entry refused is never published.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn membership_and_refused_entries_are_not_published_early() {
        let t = crate::ingest::now_ms() - 10_000;
        let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
        let (_dir, ingest) = node_in(&genesis).await;
        let member = AuthorId(key(2).verifying_key().to_bytes());
        let add = fixtures::membership(
            &key(1),
            genesis.network,
            t + 1,
            &[genesis.id()],
            Action::Add { member },
        );
        let outsider = fixtures::signed(
            &key(3),
            genesis.network,
            t + 2,
            vec![],
            fixtures::blog_body("Let me in"),
        );
        let (published_tx, mut published) = mpsc::unbounded_channel();
        let (ingested, report) =
            ingest_publishing(&ingest, &add.encode(), publisher(published_tx.clone())).await;
        assert_eq!(ingested.expect("stored").outcome, InsertOutcome::Inserted);
        assert!(report.is_none());
        let (ingested, report) =
            ingest_publishing(&ingest, &outsider.encode(), publisher(published_tx)).await;
        assert!(ingested.is_err(), "not a member");
        assert!(report.is_none());
        assert!(published.try_recv().is_err(), "nothing was published");
    }
}
