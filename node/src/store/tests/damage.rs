//! Damaged stores: single-byte flips, zeroed and overwritten pages, truncation, damaged
//! configuration and snapshots. Whatever the damage, opening never panics and never fails;
//! the node's own state (networks, teachers) survives; the store is either intact, or every
//! loss is reported with its exact count (and is refilled by sync: see the e2e test).

use std::path::Path;

use super::*;
use staffroom_protocol::fixtures::{self, key, network};

const ENTRIES: u64 = 400;

/// A way of damaging a store directory.
#[derive(Debug, Clone)]
enum Damage {
    /// Flips one byte of the log at this fraction of its length (per mille).
    FlipByte(u64),
    /// Zeroes a 4 KiB page of the log at this fraction (per mille).
    ZeroPage(u64),
    /// Overwrites a 4 KiB page of the log with pseudo-random bytes at this fraction.
    GarblePage(u64),
    /// Cuts the log to this fraction of its length.
    Truncate(u64),
    /// Zeroes sled's configuration file.
    ZeroConf,
    /// Deletes sled's configuration file.
    DeleteConf,
    /// Flips a byte in the middle of every snapshot.
    FlipSnapshots,
    /// Deletes every snapshot.
    DeleteSnapshots,
}

fn patterns() -> Vec<Damage> {
    let mut all = Vec::new();
    for at in [1, 50, 150, 250, 350, 450, 550, 650, 750, 850, 950, 999] {
        all.push(Damage::FlipByte(at));
    }
    for at in [0, 100, 300, 500, 700, 900, 995] {
        all.push(Damage::ZeroPage(at));
    }
    for at in [20, 400, 800] {
        all.push(Damage::GarblePage(at));
    }
    for at in [0, 5, 100, 333, 500, 900, 990] {
        all.push(Damage::Truncate(at));
    }
    all.extend([
        Damage::ZeroConf,
        Damage::DeleteConf,
        Damage::FlipSnapshots,
        Damage::DeleteSnapshots,
    ]);
    all
}

fn apply(damage: &Damage, store: &Path) {
    let log = store.join("db");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = |per_mille: u64| (bytes.len() as u64 * per_mille / 1000) as usize;
    match *damage {
        Damage::FlipByte(p) => {
            let i = at(p).min(bytes.len() - 1);
            bytes[i] ^= 0xff;
        }
        Damage::ZeroPage(p) | Damage::GarblePage(p) => {
            let start = at(p).min(bytes.len().saturating_sub(4096));
            let end = (start + 4096).min(bytes.len());
            for (n, b) in bytes[start..end].iter_mut().enumerate() {
                *b = match damage {
                    Damage::ZeroPage(_) => 0,
                    _ => (n as u8).wrapping_mul(167).wrapping_add(13),
                };
            }
        }
        Damage::Truncate(p) => bytes.truncate(at(p)),
        Damage::ZeroConf => std::fs::write(store.join("conf"), [0u8; 62]).unwrap(),
        Damage::DeleteConf => std::fs::remove_file(store.join("conf")).unwrap(),
        Damage::FlipSnapshots | Damage::DeleteSnapshots => {
            for snapshot in snapshots(store) {
                if let Damage::DeleteSnapshots = damage {
                    std::fs::remove_file(&snapshot).unwrap();
                    continue;
                }
                let mut snap = std::fs::read(&snapshot).unwrap();
                let middle = snap.len() / 2;
                snap[middle] ^= 0xff;
                std::fs::write(&snapshot, snap).unwrap();
            }
        }
    }
    std::fs::write(&log, bytes).unwrap();
}

fn snapshots(store: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        match item.file_type().unwrap().is_dir() {
            true => copy_dir(&item.path(), &target),
            false => drop(std::fs::copy(item.path(), target).unwrap()),
        }
    }
}

/// A closed store with a network, a teacher and `ENTRIES` posts.
async fn pristine(dir: &Path) {
    let store = joined_in(dir, &[network(1)]).await;
    let teacher = TeacherRecord {
        key: staffroom_protocol::AuthorId(key(1).verifying_key().to_bytes()),
        name: "Ada".into(),
        admin: true,
        added_at_ms: 1,
    };
    store.put_teacher(teacher).await.unwrap();
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(50) {
        let batch = chunk
            .iter()
            .map(|n| {
                verified(&fixtures::numbered_post(
                    &key((n % 7 + 1) as u8),
                    network(1),
                    *n,
                ))
            })
            .collect();
        store.insert(batch).await.unwrap();
    }
}

/// The number of lost entries the store reports, if it reports any.
fn lost_reported(store: &Store) -> Option<u64> {
    let problem = store
        .problems()
        .into_iter()
        .find(|p| p.code == "entries_lost")?;
    problem.message.split(' ').next()?.parse().ok()
}

#[derive(Debug, Default)]
struct Outcomes {
    intact: usize,
    /// Damage found and reported (the store rebuilt, or entries missing).
    reported: usize,
    /// Opened as if healthy, with entries missing and nothing said.
    silent_losses: Vec<(Damage, u64)>,
}

#[tokio::test(flavor = "multi_thread")]
async fn no_damage_panics_or_stops_the_store_and_every_repair_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let clean = root.path().join("clean");
    pristine(&clean).await;
    let mut outcomes = Outcomes::default();
    for (n, damage) in patterns().into_iter().enumerate() {
        let dir = root.path().join(format!("case-{n}"));
        let store_dir = dir.join("store");
        copy_dir(&clean, &store_dir);
        apply(&damage, &store_dir);
        let opened = std::panic::catch_unwind(|| Store::open(&store_dir));
        let store = match opened {
            Ok(Ok(store)) => store,
            Ok(Err(e)) => panic!("{damage:?}: the store did not open: {e}"),
            Err(_) => panic!("{damage:?}: opening panicked"),
        };
        let count = store.entry_count();
        let codes: Vec<String> = store.problems().into_iter().map(|p| p.code).collect();
        let reported = codes
            .iter()
            .any(|c| c == "store_repaired" || c == "entries_lost");
        match (reported, count) {
            (true, _) => outcomes.reported += 1,
            (false, c) if c == ENTRIES => outcomes.intact += 1,
            (false, c) => outcomes.silent_losses.push((damage.clone(), ENTRIES - c)),
        }
        if let Some(lost) = lost_reported(&store) {
            assert_eq!(
                lost,
                ENTRIES - count,
                "{damage:?}: the loss reported is the loss"
            );
        }
        // The node's own state is never lost: it exists nowhere else.
        assert!(
            store.network(&network(1)).unwrap().is_some(),
            "{damage:?}: {codes:?}"
        );
        let teacher = staffroom_protocol::AuthorId(key(1).verifying_key().to_bytes());
        assert!(
            store.teacher(&teacher).unwrap().is_some(),
            "{damage:?}: {codes:?}"
        );
        // Usable either way: it takes new entries and keeps them.
        let fresh = fixtures::numbered_post(&key(9), network(1), 1_000_000 + n as u64);
        let stored = store.insert(vec![verified(&fresh)]).await;
        assert!(
            stored.is_ok(),
            "{damage:?}: the opened store refuses writes: {stored:?}"
        );
        drop(store);
        let again = Store::open(&store_dir).expect("a repaired store opens again");
        assert!(again.get(&fresh.id()).unwrap().is_some(), "{damage:?}");
        assert!(
            again.problems().is_empty(),
            "{damage:?}: reported once, then healthy"
        );
    }
    println!("{} damage patterns: {outcomes:?}", patterns().len());
    assert!(patterns().len() >= 30);
    assert!(outcomes.silent_losses.is_empty(), "{outcomes:?}");
}

fn teacher(seed: u8) -> TeacherRecord {
    TeacherRecord {
        key: staffroom_protocol::AuthorId(key(seed).verifying_key().to_bytes()),
        name: format!("teacher {seed}"),
        admin: false,
        added_at_ms: 1,
    }
}

#[tokio::test]
async fn the_state_copy_restores_lost_state_and_never_undoes_a_later_change() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(super::super::state_copy::FILE_NAME);
    let store = Store::open(dir.path()).unwrap();
    store.put_teacher(teacher(1)).await.unwrap();
    drop(store);
    let old_copy = std::fs::read(&copy).unwrap();

    // A copy older than the store (a crash before it was rewritten): the store is right.
    let store = Store::open(dir.path()).unwrap();
    store.remove_teacher(teacher(1).key).await.unwrap();
    store.put_teacher(teacher(2)).await.unwrap();
    drop(store);
    let new_copy = std::fs::read(&copy).unwrap();
    std::fs::write(&copy, &old_copy).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(
        store.teacher(&teacher(1).key).unwrap().is_none(),
        "a removal stays"
    );
    assert!(store.teacher(&teacher(2).key).unwrap().is_some());
    assert!(store.problems().is_empty());
    drop(store);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        new_copy,
        "the stale copy was rewritten"
    );

    // Every file of the store lost but the copy: the state comes back whole.
    for item in std::fs::read_dir(dir.path()).unwrap() {
        let path = item.unwrap().path();
        if path != copy && path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.teacher(&teacher(2).key).unwrap().is_some());
    assert!(store.teacher(&teacher(1).key).unwrap().is_none());
    let codes: Vec<_> = store.problems().into_iter().map(|p| p.code).collect();
    assert_eq!(codes, ["state_restored"]);

    // A damaged copy is not used (and not believed over the store).
    drop(store);
    let mut damaged = std::fs::read(&copy).unwrap();
    damaged[10] ^= 1;
    std::fs::write(&copy, damaged).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.teacher(&teacher(2).key).unwrap().is_some());
    assert!(store.problems().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn salvage_recovers_every_entry_and_the_state_it_can_read() {
    let root = tempfile::tempdir().unwrap();
    let old = root.path().join("old");
    pristine(&old).await;
    let rebuilt = root.path().join("rebuilt");
    std::fs::create_dir_all(&rebuilt).unwrap();
    let lock = std::sync::Arc::new(crate::store::dir_lock::DirLock::take(&rebuilt).unwrap());
    let store = Store::open_salvaging(&rebuilt, StoreOptions::default(), Some(old.as_path()), lock)
        .unwrap();
    let salvaged = store.trees.salvaged.clone().unwrap();
    assert_eq!(salvaged.entries as u64, ENTRIES, "{salvaged:?}");
    assert!(salvaged.unreadable.is_empty(), "{salvaged:?}");
    assert_eq!(
        salvaged.records, 2,
        "the network and the teacher: {salvaged:?}"
    );
    assert_eq!(store.entry_count(), ENTRIES);
    assert!(store.network(&network(1)).unwrap().is_some());
    assert!(store.teacher(&teacher_of(1)).unwrap().is_some());
    let listed = store
        .list(&ListFilter {
            network: Some(network(1)),
            limit: Some(1000),
            ..ListFilter::default()
        })
        .unwrap();
    assert_eq!(
        listed.len() as u64,
        ENTRIES,
        "the listing indexes are rebuilt"
    );
}

fn teacher_of(seed: u8) -> staffroom_protocol::AuthorId {
    staffroom_protocol::AuthorId(key(seed).verifying_key().to_bytes())
}
