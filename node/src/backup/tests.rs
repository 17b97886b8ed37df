//! Backups and restores of a data directory, without a node: what is copied, what a damaged
//! backup or a running node stops, and that a different teacher key is never replaced quietly.

use super::*;

fn data_dir(root: &Path) -> PathBuf {
    let data = root.join("data");
    fs::create_dir_all(data.join("store/blobs")).unwrap();
    fs::create_dir_all(data.join("files/complete")).unwrap();
    fs::write(data.join("teacher.key"), b"teacher key bytes").unwrap();
    fs::write(data.join("node.key"), b"node key bytes").unwrap();
    fs::write(data.join("config.toml"), b"mdns = false\n").unwrap();
    fs::write(data.join("store/db"), b"sled db").unwrap();
    fs::write(data.join("store/blobs/7"), b"a blob").unwrap();
    fs::write(data.join("files/complete/abc"), b"a file").unwrap();
    fs::write(data.join("api.addr"), b"127.0.0.1:4041").unwrap();
    data
}

fn paths(manifest: &Manifest) -> Vec<&str> {
    manifest.files.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn a_stopped_node_is_backed_up_whole_and_restored_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let dest = root.path().join("backup");
    let manifest = backup(&data, &dest, false, 7).unwrap();
    assert!(manifest.with_data);
    assert_eq!(
        paths(&manifest),
        [
            "teacher.key",
            "node.key",
            "config.toml",
            "store/blobs/7",
            "store/db",
            "files/complete/abc"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dest.join("teacher.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "a backed-up key is private");
    }

    let fresh = root.path().join("fresh");
    restore(&dest, &fresh, false, 9).unwrap();
    for file in &manifest.files {
        assert_eq!(
            fs::read(fresh.join(&file.path)).unwrap(),
            fs::read(data.join(&file.path)).unwrap(),
            "{}",
            file.path
        );
    }
    assert!(
        !fresh.join("api.addr").exists(),
        "a running node's files are not restored"
    );

    // Restoring over a data directory keeps what it replaces aside.
    fs::write(data.join("store/db"), b"newer, damaged").unwrap();
    restore(&dest, &data, false, 9).unwrap();
    assert_eq!(fs::read(data.join("store/db")).unwrap(), b"sled db");
    assert_eq!(
        fs::read(data.join("before-restore-9/store/db")).unwrap(),
        b"newer, damaged"
    );
    assert!(!data.join(".restoring").exists(), "nothing left staged");
    // Restoring the same backup again keeps this copy aside too, under another name.
    restore(&dest, &data, false, 9).unwrap();
    assert!(data.join("before-restore-9-1/store/db").is_file());
}

#[test]
fn while_a_node_runs_only_keys_and_config_are_backed_up_and_nothing_is_restored() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    // The running node's lock on its store.
    let db = File::open(data.join("store/db")).unwrap();
    rustix::fs::flock(&db, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let dest = root.path().join("backup");
    fs::write(data.join("store/staffroom.state"), b"networks and teachers").unwrap();
    let manifest = backup(&data, &dest, false, 1).unwrap();
    assert!(!manifest.with_data);
    assert_eq!(
        paths(&manifest),
        [
            "teacher.key",
            "node.key",
            "config.toml",
            "store/staffroom.state"
        ]
    );
    let refused = restore(&dest, &data, false, 9).unwrap_err();
    assert!(matches!(refused, BackupError::NodeRunning(_)), "{refused}");
    drop(db);
    restore(&dest, &data, false, 9).unwrap();
    assert_eq!(
        fs::read(data.join("store/db")).unwrap(),
        b"sled db",
        "the store is kept"
    );
    // On a new machine, the state copy seeds the store: networks and teachers come back.
    let fresh = root.path().join("fresh");
    restore(&dest, &fresh, false, 9).unwrap();
    assert_eq!(
        fs::read(fresh.join("store/staffroom.state")).unwrap(),
        b"networks and teachers"
    );
}

/// Regression: a node's open closes sled and opens it again, releasing sled's lock on
/// `store/db` for a few milliseconds; a backup or restore then took the store for a stopped
/// node's. The node's lock on the store directory, held throughout, stops them.
#[test]
fn a_node_between_closing_and_reopening_sled_still_counts_as_running() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let opening = DirLock::try_take(&data.join("store"))
        .unwrap()
        .expect("free");
    let dest = root.path().join("backup");
    let manifest = backup(&data, &dest, false, 1).unwrap();
    assert!(
        !manifest.with_data,
        "the store is not copied while a node has it"
    );
    let refused = restore(&dest, &data, false, 9).unwrap_err();
    assert!(matches!(refused, BackupError::NodeRunning(_)), "{refused}");
    drop(opening);
    let whole = root.path().join("whole");
    assert!(backup(&data, &whole, false, 1).unwrap().with_data);
}

#[test]
fn a_damaged_backup_restores_nothing_and_says_which_file() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let dest = root.path().join("backup");
    backup(&data, &dest, false, 1).unwrap();
    let fresh = root.path().join("fresh");

    fs::write(dest.join("store/blobs/7"), b"a blub").unwrap();
    let err = restore(&dest, &fresh, false, 9).unwrap_err().to_string();
    assert!(
        err.contains("store/blobs/7 does not match its hash"),
        "{err}"
    );
    assert!(!fresh.exists(), "nothing written");

    fs::remove_file(dest.join("store/blobs/7")).unwrap();
    let err = restore(&dest, &fresh, false, 9).unwrap_err().to_string();
    assert!(err.contains("store/blobs/7 is missing"), "{err}");

    // A manifest that names a path outside the data directory.
    let text = fs::read_to_string(dest.join(MANIFEST)).unwrap();
    fs::write(
        dest.join(MANIFEST),
        text.replace("store/blobs/7", "../escape"),
    )
    .unwrap();
    let err = restore(&dest, &fresh, false, 9).unwrap_err().to_string();
    assert!(err.contains("points outside the data directory"), "{err}");

    let err = restore(&root.path().join("nothing"), &fresh, false, 9).unwrap_err();
    assert!(matches!(err, BackupError::NotABackup(_)), "{err}");
}

#[test]
fn another_teacher_key_is_replaced_only_when_forced() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let dest = root.path().join("backup");
    backup(&data, &dest, true, 1).unwrap();
    fs::write(data.join("teacher.key"), b"someone else").unwrap();
    let err = restore(&dest, &data, false, 9).unwrap_err();
    assert!(matches!(err, BackupError::OtherTeacherKey { .. }), "{err}");
    assert_eq!(fs::read(data.join("teacher.key")).unwrap(), b"someone else");
    restore(&dest, &data, true, 9).unwrap();
    assert_eq!(
        fs::read(data.join("teacher.key")).unwrap(),
        b"teacher key bytes"
    );
}

#[test]
fn backups_need_a_key_and_a_fresh_destination() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path());
    let dest = root.path().join("backup");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("old"), b"x").unwrap();
    let err = backup(&data, &dest, false, 1).unwrap_err();
    assert!(matches!(err, BackupError::DestinationNotEmpty(_)), "{err}");
    let err = backup(&data, &data.join("store/backup"), false, 1).unwrap_err();
    assert!(matches!(err, BackupError::DestinationInside(_)), "{err}");
    fs::remove_file(data.join("teacher.key")).unwrap();
    let err = backup(&data, &root.path().join("b2"), false, 1).unwrap_err();
    assert!(matches!(err, BackupError::NoTeacherKey(_)), "{err}");
    let err = backup(&root.path().join("none"), &root.path().join("b3"), false, 1).unwrap_err();
    assert!(matches!(err, BackupError::NoDataDir(_)), "{err}");
}
