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
    // The release task counts it as held until its batch is done.
    for _ in 0..200 {
        if ingest.held_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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

/// A member leaves, then deletes a post of theirs; a later membership operation (which purges
/// what former members made after leaving) keeps the deletion, and the post stays gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_members_deletion_of_their_own_post_survives_later_operations() {
    use staffroom_protocol::{ErasureAction, ErasureReason};
    let t = now_ms() - 100_000;
    let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
    let (_dir, ingest) = node_in(&genesis).await;
    let net = genesis.network;
    let add = fixtures::membership(
        &key(1),
        net,
        t + 1,
        &[genesis.id()],
        Action::Add { member: member(2) },
    );
    let mine = post(2, &genesis, t + 10);
    let leave = fixtures::membership(&key(2), net, t + 100, &[add.id()], Action::Leave);
    let body = fixtures::erasure_body(&mine, ErasureAction::Delete, ErasureReason::PersonalData);
    let deletion = fixtures::signed(&key(2), net, t + 500, vec![], body);
    let channel = Some(net);
    for entry in [&add, &mine, &leave, &deletion] {
        ingest.ingest(entry.encode(), channel).await.unwrap();
    }
    let later = fixtures::membership(
        &key(1),
        net,
        t + 600,
        &[leave.id()],
        Action::Add { member: member(3) },
    );
    ingest.ingest(later.encode(), channel).await.unwrap();
    assert!(
        ingest.store().get(&deletion.id()).unwrap().is_some(),
        "the tombstone stays"
    );
    assert!(
        ingest.store().get(&mine.id()).unwrap().is_none(),
        "the post stays gone"
    );
}

/// The same entries — founding, additions, an invite and joins, a removal, and posts by
/// members and by a stranger — reaching two nodes in different orders and batches, as gossip
/// and sync deliver them: once everything has arrived (and what waited is released), both
/// nodes hold the same entries and the same roster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_arrival_order_gives_the_same_roster_and_entries() {
    let t = now_ms() - 100_000;
    let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
    let net = genesis.network;
    let op = |k: u8, at: u64, after: &[EntryId], action| {
        fixtures::membership(&key(k), net, t + at, after, action)
    };
    let add = op(1, 1, &[genesis.id()], Action::Add { member: member(2) });
    let invite = op(
        1,
        2,
        &[add.id()],
        Action::Invite {
            expires_at_ms: t + 1_000_000,
            uses_max: 1,
        },
    );
    let join_a = op(
        3,
        3,
        &[invite.id()],
        Action::Join {
            invite: Some(invite.id()),
        },
    );
    let remove = op(1, 4, &[add.id()], Action::Remove { member: member(2) });
    let mut all = vec![genesis.clone(), add, invite, join_a, remove];
    for (seed, at) in [(1, 10), (2, 3), (2, 20), (3, 30), (9, 40)] {
        all.push(post(seed, &genesis, t + at));
    }
    let mut outcomes = Vec::new();
    for order in 0..6u64 {
        let (_dir, ingest) = node_in(&genesis).await;
        let (stop, stopped) = watch::channel(false);
        let release = tokio::spawn(ingest.clone().release_held(stopped));
        let mut shuffled = all[1..].to_vec();
        if order == 0 {
            // The removal last: B's later post is taken in first, and must go when it comes.
            let removal = shuffled.remove(3);
            shuffled.push(removal);
        } else {
            let mut r = order.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for i in (1..shuffled.len()).rev() {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                shuffled.swap(i, (r >> 33) as usize % (i + 1));
            }
        }
        let batch = 1 + order as usize % 3 * 2;
        for chunk in shuffled.chunks(batch) {
            let bytes = chunk.iter().map(Entry::encode).collect();
            for result in ingest.ingest_many(bytes, Some(net)).await.unwrap() {
                if let Err(e) = result {
                    assert!(!e.blames_sender(), "{e}");
                }
            }
        }
        // Only the stranger's post still waits once everything settled.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while ingest.held_count() != 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut stored: Vec<EntryId> = all
            .iter()
            .map(Entry::id)
            .filter(|id| ingest.store().get(id).unwrap().is_some())
            .collect();
        stored.sort();
        let roster = ingest.rosters().refresh(&net).unwrap();
        outcomes.push((stored, roster.members.clone(), roster.former.clone()));
        let _ = stop.send(true);
        release.await.unwrap();
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:#?}");
    let (stored, members, former) = &outcomes[0];
    assert!(members.contains_key(&member(3)) && former.contains_key(&member(2)));
    let stranger = post(9, &genesis, t + 40).id();
    assert!(
        !stored.contains(&stranger),
        "a stranger's post never enters"
    );
    let before_removal = post(2, &genesis, t + 3).id();
    assert!(
        stored.contains(&before_removal),
        "what B wrote while a member stays"
    );
    assert!(
        !stored.contains(&post(2, &genesis, t + 20).id()),
        "after removal: refused"
    );
}

/// Regression: when another ingest (a sync session, gossip) stored the founding entry first,
/// the operations after it in this batch must still be judged by the roster it makes — they
/// were refused as from a non-member, and a network adopted through the API came out empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_after_an_entry_someone_else_stored_first_are_admitted() {
    let entries = fixtures::network_with(&key(1), &[&key(2), &key(3)], &[], now_ms() - 100_000);
    let net = entries[0].network;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = NetworkRecord {
        id: net,
        name: "test".into(),
        joined_at_ms: 0,
    };
    store.join_network(record).await.unwrap();
    let ingest = Ingest::new(store.clone(), Clock::system());
    // The roster as it was before anything arrived, then the founding entry stored by
    // "someone else" (straight into the store).
    assert!(ingest.rosters().get(&net).unwrap().founder.is_none());
    let founding = staffroom_protocol::verify_entry(&entries[0].encode(), now_ms()).unwrap();
    store.insert(vec![founding]).await.unwrap();
    let batch = entries.iter().map(Entry::encode).collect();
    let results = ingest.ingest_many(batch, None).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let roster = ingest.rosters().get(&net).unwrap();
    assert!(roster.is_member(&member(2)) && roster.is_member(&member(3)));
}

/// Gossip's path: a content entry is announced for relaying once verified and admitted, before
/// it is stored; membership entries, refused entries and erased ones never are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_relays_content_once_admitted_before_it_is_stored() {
    use staffroom_protocol::{ErasureAction, ErasureReason};
    use std::sync::Mutex;
    let t = now_ms() - 100_000;
    let genesis = fixtures::genesis(&key(1), "Cluster", Policy::InviteOnly, t);
    let (_dir, ingest) = node_in(&genesis).await;
    let net = genesis.network;
    // (id, whether the store held it when the relay was announced)
    let announced: Mutex<Vec<(EntryId, bool)>> = Mutex::default();
    let relay = |id: EntryId| {
        let stored = ingest.store().contains(&id).unwrap();
        announced.lock().unwrap().push((id, stored));
    };
    let offer =
        |entry: &Entry| ingest.ingest_relaying(vec![entry.encode()], Some(net), Some(&relay));

    let post_1 = post(1, &genesis, t + 10);
    let results = offer(&post_1).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(
        *announced.lock().unwrap(),
        [(post_1.id(), false)],
        "before the store"
    );
    assert!(
        ingest.store().contains(&post_1.id()).unwrap(),
        "then stored"
    );

    let add = fixtures::membership(
        &key(1),
        net,
        t + 1,
        &[genesis.id()],
        Action::Add { member: member(2) },
    );
    let stranger = post(9, &genesis, t + 20);
    let mut forged = post(1, &genesis, t + 30).encode();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    for entry in [&add, &stranger] {
        let _ = offer(entry).await.unwrap();
    }
    let forged = ingest
        .ingest_relaying(vec![forged], Some(net), Some(&relay))
        .await
        .unwrap();
    assert!(forged[0].as_ref().is_err_and(|e| e.blames_sender()));
    assert!(
        ingest.store().contains(&add.id()).unwrap(),
        "membership stored first"
    );
    assert_eq!(
        announced.lock().unwrap().len(),
        1,
        "none of these announced"
    );

    // An erasure stored here: the entry it covers is neither relayed nor stored.
    let target = post(1, &genesis, t + 40);
    let body = fixtures::erasure_body(&target, ErasureAction::Delete, ErasureReason::PersonalData);
    let erasure = fixtures::signed(&key(1), net, t + 50, vec![], body);
    let _ = offer(&erasure).await.unwrap();
    let results = offer(&target).await.unwrap();
    assert!(
        matches!(results[0], Err(IngestError::Erased(_))),
        "{:?}",
        results[0]
    );
    let ids: Vec<EntryId> = announced
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        ids,
        [post_1.id(), erasure.id()],
        "the erased entry was not announced"
    );
}
