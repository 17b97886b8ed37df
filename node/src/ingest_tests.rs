//! Admission through the real ingest pipeline: entries that arrive before their author's
//! membership are held and stored once it arrives; a former member's later entries are refused;
//! none of it is blamed on the sender.

use std::time::Duration;

use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::membership::{Action, Policy};
use staffroom_protocol::{AuthorId, Entry, EntryId};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::ingest::{now_ms, Ingest, IngestError};
use crate::store::{NetworkRecord, Store};

async fn node_in(genesis: &Entry) -> (tempfile::TempDir, Ingest) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = NetworkRecord {
        id: genesis.network,
        name: "test".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    let ingest = Ingest::new(store, Clock::system());
    ingest.ingest(genesis.encode(), None).await.unwrap();
    (dir, ingest)
}

fn post(seed: u8, genesis: &Entry, at: u64) -> Entry {
    let body = fixtures::blog_body(&format!("Post at {at}"));
    fixtures::signed(&key(seed), genesis.network, at, vec![], body)
}

fn member(seed: u8) -> AuthorId {
    AuthorId(key(seed).verifying_key().to_bytes())
}

async fn stored(ingest: &Ingest, id: EntryId) -> bool {
    for _ in 0..200 {
        if ingest.store().get(&id).unwrap().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_before_its_authors_admission_is_held_then_stored() {
    let t = now_ms() - 100_000;
    let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
    let (_dir, ingest) = node_in(&genesis).await;
    let (stop, stopped) = watch::channel(false);
    let release = tokio::spawn(ingest.clone().release_held(stopped));
    let early = post(2, &genesis, t + 10);
    let err = ingest
        .ingest(early.encode(), Some(genesis.network))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IngestError::AwaitingMembership { held: true, .. }),
        "{err}"
    );
    assert!(!err.blames_sender());
    assert_eq!(ingest.held_count(), 1);
    let add = fixtures::membership(
        &key(1),
        genesis.network,
        t + 1,
        &[genesis.id()],
        Action::Add { member: member(2) },
    );
    ingest
        .ingest(add.encode(), Some(genesis.network))
        .await
        .unwrap();
    assert!(stored(&ingest, early.id()).await, "released once admitted");
    assert_eq!(ingest.held_count(), 0);
    let _ = stop.send(true);
    release.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_members_later_entries_are_refused_earlier_ones_stay() {
    let t = now_ms() - 100_000;
    let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
    let (_dir, ingest) = node_in(&genesis).await;
    let add = fixtures::membership(
        &key(1),
        genesis.network,
        t + 1,
        &[genesis.id()],
        Action::Add { member: member(2) },
    );
    let remove = fixtures::membership(
        &key(1),
        genesis.network,
        t + 1_000,
        &[add.id()],
        Action::Remove { member: member(2) },
    );
    let before = post(2, &genesis, t + 999);
    let after = post(2, &genesis, t + 1_000);
    let channel = Some(genesis.network);
    let batch = vec![
        add.encode(),
        remove.encode(),
        before.encode(),
        after.encode(),
    ];
    let results = ingest.ingest_many(batch, channel).await.unwrap();
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    let err = results[3].as_ref().unwrap_err();
    assert!(matches!(err, IngestError::FormerMember { .. }), "{err}");
    assert!(!err.blames_sender());
    // From the API, a stranger is told to join; nothing is held.
    let stranger = post(9, &genesis, t + 5);
    let err = ingest.ingest(stranger.encode(), None).await.unwrap_err();
    assert_eq!(err.code(), "author_not_member");
    assert_eq!(ingest.held_count(), 0);
}
