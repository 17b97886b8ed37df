//! Erasures in the store: the covered entry goes, whichever arrives first, and stays gone.

use super::*;
use staffroom_protocol::fixtures::{erasure_body, resource_body, signed};
use staffroom_protocol::{Body, ErasureAction, ErasureReason, FileRef, FileRoot};

const T: u64 = 1_767_225_600_000;

/// A resource with one file, and its author's deletion of it.
fn resource_and_deletion(
    action: ErasureAction,
) -> (staffroom_protocol::Entry, staffroom_protocol::Entry) {
    let mut body = resource_body("Names a pupil");
    if let Body::Resource(r) = &mut body {
        r.files = vec![FileRef {
            name: "register.pdf".into(),
            media_type: "application/pdf".into(),
            size_bytes: 5,
            root: FileRoot::of(b"hello"),
        }];
    }
    let target = signed(&key(1), network(1), T, vec![], body);
    let by = if action == ErasureAction::Delete {
        1
    } else {
        2
    };
    let erasure = erasure_body(&target, action, ErasureReason::PersonalData);
    (
        target.clone(),
        signed(&key(by), network(1), T + 1, vec![], erasure),
    )
}

fn synced(store: &Store) -> usize {
    store.with_sync_index(&network(1), |index| index.len())
}

#[tokio::test]
async fn a_deletion_takes_out_the_entry_its_files_listing_and_its_sync_item() {
    let (_dir, store) = joined(&[network(1)]).await;
    let (target, deletion) = resource_and_deletion(ErasureAction::Delete);
    store.insert(vec![verified(&target)]).await.unwrap();
    let root = FileRoot::of(b"hello");
    assert!(store.network_lists_file(&network(1), &root, 5).unwrap());
    assert_eq!(synced(&store), 1);
    let outcome = store.insert(vec![verified(&deletion)]).await.unwrap();
    assert_eq!(outcome, [InsertOutcome::Inserted]);
    assert!(store.get(&target.id()).unwrap().is_none(), "purged");
    assert!(!store.network_lists_file(&network(1), &root, 5).unwrap());
    assert_eq!(synced(&store), 1, "only the tombstone is left to sync");
    // It does not come back: from a peer that still had it, or from the API.
    let again = store.insert(vec![verified(&target)]).await.unwrap();
    assert_eq!(again, [InsertOutcome::Erased]);
    assert!(store.get(&target.id()).unwrap().is_none());
}

#[tokio::test]
async fn a_deletion_that_arrives_first_keeps_its_target_out() {
    let dir = tempfile::tempdir().unwrap();
    let (target, deletion) = resource_and_deletion(ErasureAction::Delete);
    {
        let store = joined_in(dir.path(), &[network(1)]).await;
        store.insert(vec![verified(&deletion)]).await.unwrap();
    }
    // Across a restart, and in one group with it.
    let store = joined_in(dir.path(), &[network(1)]).await;
    let outcomes = store
        .insert(vec![verified(&target), verified(&deletion)])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [InsertOutcome::Erased, InsertOutcome::AlreadyStored]
    );
    assert_eq!(store.entry_count(), 1);
}

#[tokio::test]
async fn hiding_purges_nothing_and_an_erasure_elsewhere_covers_nothing() {
    let (_dir, store) = joined(&[network(1), network(2)]).await;
    let (target, hide) = resource_and_deletion(ErasureAction::Hide);
    store
        .insert(vec![verified(&target), verified(&hide)])
        .await
        .unwrap();
    assert!(
        store.get(&target.id()).unwrap().is_some(),
        "hidden, not purged"
    );
    // The same deletion signed in another network does not reach this one's entry.
    let elsewhere = erasure_body(&target, ErasureAction::Delete, ErasureReason::Mistake);
    let elsewhere = signed(&key(1), network(2), T + 2, vec![], elsewhere);
    store.insert(vec![verified(&elsewhere)]).await.unwrap();
    assert!(store.get(&target.id()).unwrap().is_some());
}

#[tokio::test]
async fn a_deletion_that_misstates_its_target_neither_covers_it_nor_shields_it() {
    let (_dir, store) = joined(&[network(1)]).await;
    let (target, deletion) = resource_and_deletion(ErasureAction::Delete);
    // key(2) "deletes" key(1)'s entry by naming itself as its author: valid, covers nothing.
    let mut lie =
        staffroom_protocol::Erasure::of(&target, ErasureAction::Delete, ErasureReason::Other);
    lie.target_author = staffroom_protocol::AuthorId(key(2).verifying_key().to_bytes());
    let lie = signed(&key(2), network(1), T + 1, vec![], Body::Erasure(lie));
    store
        .insert(vec![verified(&lie), verified(&target)])
        .await
        .unwrap();
    assert!(
        store.get(&target.id()).unwrap().is_some(),
        "the lie covers nothing"
    );
    store.insert(vec![verified(&deletion)]).await.unwrap();
    assert!(
        store.get(&target.id()).unwrap().is_none(),
        "the true deletion still applies"
    );
}

#[tokio::test]
async fn a_hundred_misstating_deletions_cannot_bury_the_true_one() {
    let (_dir, store) = joined(&[network(1)]).await;
    let (target, deletion) = resource_and_deletion(ErasureAction::Delete);
    let mut lies = Vec::new();
    for n in 0..100u64 {
        let mut lie =
            staffroom_protocol::Erasure::of(&target, ErasureAction::Delete, ErasureReason::Other);
        lie.target_author = staffroom_protocol::AuthorId(key(2).verifying_key().to_bytes());
        lies.push(verified(&signed(
            &key(2),
            network(1),
            T + 1 + n,
            vec![],
            Body::Erasure(lie),
        )));
    }
    store.insert(lies).await.unwrap();
    store
        .insert(vec![verified(&deletion), verified(&target)])
        .await
        .unwrap();
    assert!(store.get(&target.id()).unwrap().is_none(), "still covered");
}

#[tokio::test]
async fn no_erasure_takes_out_the_networks_own_record() {
    let (_dir, store) = joined(&[network(1)]).await;
    // A membership operation and an erasure, each "deleted" by its own author.
    let op = staffroom_protocol::fixtures::membership(
        &key(1),
        network(1),
        T,
        &[staffroom_protocol::EntryId([9; 32])],
        staffroom_protocol::membership::Action::Leave,
    );
    let (target, first) = resource_and_deletion(ErasureAction::Delete);
    let of_op = signed(
        &key(1),
        network(1),
        T + 5,
        vec![],
        erasure_body(&op, ErasureAction::Delete, ErasureReason::Mistake),
    );
    let of_erasure = signed(
        &key(1),
        network(1),
        T + 5,
        vec![],
        erasure_body(&first, ErasureAction::Delete, ErasureReason::Mistake),
    );
    store
        .insert(vec![verified(&op), verified(&first)])
        .await
        .unwrap();
    store
        .insert(vec![verified(&of_op), verified(&of_erasure)])
        .await
        .unwrap();
    assert!(store.get(&op.id()).unwrap().is_some(), "membership stays");
    assert!(store.get(&first.id()).unwrap().is_some(), "erasures stay");
    let again = store.insert(vec![verified(&target)]).await.unwrap();
    assert_eq!(again, [InsertOutcome::Erased], "and keep covering");
}

/// A record damaged past unpacking (its header still readable, its body not) does not stop
/// an admin's purge or a network's: it goes, with its sync item and listing keys.
#[tokio::test]
async fn records_damaged_past_reading_are_still_purged() {
    let (_dir, store) = joined(&[network(1)]).await;
    let posts: Vec<_> = (0..3)
        .map(|n| fixtures::numbered_post(&key(1), network(1), n))
        .collect();
    store
        .insert(posts.iter().map(verified).collect())
        .await
        .unwrap();
    let header_bytes = staffroom_protocol::envelope::HEADER_BYTES;
    for post in &posts[..2] {
        // Tagged compressed, with a true header and a body that is not zstd.
        let mut record = vec![1u8];
        record.extend_from_slice(&post.encode()[..header_bytes]);
        record.extend_from_slice(&[0xA5; 80]);
        store
            .trees
            .entries
            .insert(post.id().as_bytes(), record)
            .unwrap();
    }
    assert!(matches!(
        store.get(&posts[0].id()),
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.purge_entry(posts[0].id()).await.unwrap());
    assert_eq!(
        store.with_sync_index(&network(1), |ix| ix.len()),
        2,
        "its sync item went, and the listing tag it carried"
    );
    assert_eq!(store.purge_network(network(1)).await.unwrap(), 2);
    assert_eq!(store.entry_count(), 0);
    assert_eq!(store.with_sync_index(&network(1), |ix| ix.len()), 0);
}
