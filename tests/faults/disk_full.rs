//! A full disk: the node refuses new entries with a clear error and says it is degraded,
//! keeps serving what it has, stores nothing partial, and takes entries again (its own
//! teachers' and, by catch-up sync, its peers') once space is freed, without a restart.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use staffroom_node::api::ClientError;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_tests::{now_ms, TestNetwork, TestNode};

const DISK_MIB: u64 = 48;
const RESERVE_MIB: u64 = 8;

/// A tmpfs of `DISK_MIB` mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK_MIB}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs (the fault tests need root)");
        assert!(status.success(), "mounting a tmpfs needs root");
        let path = dir.path().to_owned();
        SmallDisk {
            dir: Some(dir),
            path,
        }
    }

    fn free_bytes(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.path).unwrap();
        stat.f_bavail * stat.f_frsize
    }

    /// Writes a filler file until at most `free_bytes` are left.
    fn fill_to(&self, free_bytes: u64) -> PathBuf {
        let filler = self.path.join(format!("filler-{free_bytes}"));
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 256 * 1024];
        while self.free_bytes() > free_bytes {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        drop(self.dir.take());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_the_node_and_freeing_space_heals_it_without_a_restart() {
    let disk = SmallDisk::mount();
    let data = tempfile::tempdir_in(&disk.path).unwrap();
    let a = TestNode::start_in(data, &[], |c| c.store.reserve_mib = RESERVE_MIB).await;
    let b = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("full disk");
    a.adopt(&net).await;
    b.adopt(&net).await;
    let before = a.post_many(&key(1), net.id, 5).await;
    b.wait_for_count(net.entry_count() + 5).await;
    assert!(a.api().status().await.unwrap().problems.is_empty());

    // Below the reserve: refused, degraded, still readable.
    let filler = disk.fill_to((RESERVE_MIB - 2) * 1024 * 1024);
    let refused = a.api().submit(post(1, "while full")).await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Api { status: 507, code, .. } if code == "disk_full"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("disk is full"), "{refused}");
    let status = a.api().status().await.unwrap();
    assert_eq!(status.problems.len(), 1, "{:?}", status.problems);
    assert_eq!(status.problems[0].code, "disk_full");
    for id in &before {
        assert!(
            a.api().get(id).await.is_ok(),
            "acknowledged entries stay readable"
        );
    }
    // A file upload too (files share the disk), refused before a byte is kept.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), vec![7u8; 64 * 1024]).unwrap();
    let upload = a
        .api()
        .upload_file(file.path(), std::sync::Arc::new(|_| {}))
        .await;
    let refused = upload.unwrap_err();
    assert_eq!(refused.code(), Some("disk_full"), "{refused:?}");
    // A peer's posts meanwhile are not stored here, and the peer is not blamed for it.
    let from_b = b.post_many(&key(2), net.id, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.entry_count().await, net.entry_count() + 5);

    // Every last byte gone: still refused cleanly, nothing broken.
    let last_bytes = disk.fill_to(0);
    let refused = a
        .api()
        .submit(post(2, "no space at all"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("disk_full"), "{refused:?}");

    // Space freed: writes resume, the peer's posts are caught up, health is back.
    std::fs::remove_file(&last_bytes).unwrap();
    std::fs::remove_file(&filler).unwrap();
    let after = a
        .api()
        .submit(post(3, "after freeing"))
        .await
        .expect("stored again");
    assert_eq!(
        after.outcome,
        staffroom_node::store::InsertOutcome::Inserted
    );
    a.api().sync(Some(net.id)).await.expect("catch-up sync");
    for id in &from_b {
        a.wait_for_entry(id).await;
    }
    assert!(a.api().status().await.unwrap().problems.is_empty());
    b.wait_for_count(net.entry_count() + 5 + 3 + 1).await;
    assert!(
        a.api()
            .peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == b.node.peer_id),
        "the peer was not disconnected for this node's full disk"
    );

    // And the store is sound after a restart.
    let data = a.stop().await;
    let a = TestNode::restart(data, &[]).await;
    a.wait_for_count(net.entry_count() + 5 + 3 + 1).await;
    drop(a.stop().await);
    drop(disk);
}

fn post(n: u64, title: &str) -> Vec<u8> {
    let network = TestNetwork::open("full disk").id;
    signed(
        &key(1),
        network,
        now_ms() - 10_000 + n,
        vec![],
        blog_body(title),
    )
    .encode()
}

/// A file a peer shares while the store's disk has room for entries but not for the file:
/// the entry is stored, the file waits (saying why) without a byte written, and arrives once
/// space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_from_a_peer_waits_for_room_and_arrives_once_there_is_some() {
    use staffroom_node::files::fetcher::FileState;
    use staffroom_protocol::{Body, FileRef};
    const FILE_MIB: u64 = 12;
    let disk = SmallDisk::mount();
    let data = tempfile::tempdir_in(&disk.path).unwrap();
    let a = TestNode::start_in(data, &[], |c| c.store.reserve_mib = RESERVE_MIB).await;
    let b = TestNode::start(&[a.addr()]).await;
    let net = TestNetwork::open("full disk files");
    a.adopt(&net).await;
    b.adopt(&net).await;
    a.wait_for_network_peers(net.id, 1).await;
    // Room for entries, not for the file.
    let filler = disk.fill_to((RESERVE_MIB + FILE_MIB / 2) * 1024 * 1024);

    let bytes: Vec<u8> = (0..FILE_MIB * 1024 * 1024)
        .map(|n| (n % 251) as u8)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheme.bin");
    std::fs::write(&path, &bytes).unwrap();
    let up = b
        .api()
        .upload_file(&path, std::sync::Arc::new(|_| {}))
        .await
        .expect("uploaded on the peer");
    let mut body = staffroom_protocol::fixtures::resource_body("Scheme of work");
    if let Body::Resource(r) = &mut body {
        r.files = vec![FileRef {
            name: "scheme.bin".into(),
            media_type: "application/octet-stream".into(),
            size_bytes: up.size_bytes,
            root: up.root,
        }];
    }
    let entry = signed(&key(3), net.id, now_ms(), vec![], body);
    b.api().submit(entry.encode()).await.expect("shared");
    a.wait_for_entry(&entry.id()).await;
    staffroom_tests::eventually("the file waiting for room", || async {
        let files = a.api().resource_files(&entry.id(), false).await.unwrap();
        let progress = &files.files[0].progress;
        progress.state == FileState::Waiting
            && progress
                .note
                .as_deref()
                .is_some_and(|n| n.contains("disk is full"))
    })
    .await;
    let files = a.api().resource_files(&entry.id(), false).await.unwrap();
    assert_eq!(files.files[0].progress.bytes_here, 0, "nothing written");

    std::fs::remove_file(&filler).unwrap();
    // Asking for it now saves waiting out the retry's backoff.
    let _ = a.api().fetch_resource_files(&entry.id()).await;
    staffroom_tests::eventually_within(
        "the file once there is room",
        Duration::from_secs(90),
        || async {
            let files = a.api().resource_files(&entry.id(), false).await.unwrap();
            files.files[0].progress.state == FileState::Complete
        },
    )
    .await;
    drop(b.stop().await);
    drop(a.stop().await);
    drop(disk);
}
