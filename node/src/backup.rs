//! Backups of a data directory: the teacher's key, the node's key and config, and — when the
//! node is stopped — its store and files, into a directory with a manifest of every file's
//! size and BLAKE3 hash. A restore checks the whole backup against its manifest before it
//! writes anything, refuses while a node runs on the data directory, and never silently
//! replaces a different teacher key: losing a key loses an identity.
//!
//! What is left out (`api.addr`, `node.id`, `api.pin`, the search index) is rewritten by the
//! node at its next start.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::DataDir;
use crate::store::dir_lock::DirLock;

/// The manifest's file name in a backup.
pub const MANIFEST: &str = "staffroom-backup.toml";
/// Files a backup holds at most (a store and a file store of many resources).
pub const FILES_MAX: usize = 1_000_000;
/// The manifest's size at most.
const MANIFEST_BYTES_MAX: u64 = 256 * 1024 * 1024;
const FORMAT: u32 = 1;

/// Files and directories of a data directory a backup holds, when present.
const KEYS_AND_CONFIG: [&str; 4] = ["teacher.key", "node.key", "config.toml", "client.toml"];
const DATA: [&str; 2] = ["store", "files"];
/// The store's copy of the node's own state (see `store/state_copy.rs`).
const STATE_COPY: &str = "staffroom.state";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no Staffroom data directory at {0}")]
    NoDataDir(String),
    #[error("{0} has no teacher key: nothing to back up (run `staffroom init` there first)")]
    NoTeacherKey(String),
    #[error("{0} exists and is not empty: back up into a new directory")]
    DestinationNotEmpty(String),
    #[error("{0} is inside the data directory: back up to another place (another disk, ideally)")]
    DestinationInside(String),
    #[error("{0} is not a Staffroom backup (no {MANIFEST})")]
    NotABackup(String),
    #[error("the backup is damaged: {path} {problem}; nothing was restored")]
    Damaged { path: String, problem: String },
    #[error("a node is running on {0}: stop it (`systemctl stop staffroom`, or Ctrl-C) before restoring")]
    NodeRunning(String),
    #[error("{path} holds a different teacher key (another identity) than the backup: move it away first, or pass --force to replace it")]
    OtherTeacherKey { path: String },
    #[error("the backup holds more than {FILES_MAX} files")]
    TooManyFiles,
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a backup holds: every file, relative to the data directory, with its size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at_ms: u64,
    /// Whether the store and files are in it (only when the node was stopped).
    pub with_data: bool,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
}

/// Holds a data directory's store locks (the ones a running node holds) while a backup or
/// restore works, so a node cannot start meanwhile: the store directory's, which a node holds
/// from before its store opens until it has closed (see `store/dir_lock.rs`), and sled's own
/// on `store/db`, which a node of an older version holds.
struct StoreLock {
    /// Held for their locks, released when dropped.
    _dir: Option<DirLock>,
    _db: Option<File>,
}

impl StoreLock {
    /// The locks, or `None` when a node holds either. A data directory without a store is free.
    fn take(data: &Path) -> Result<Option<StoreLock>, BackupError> {
        let store = data.join("store");
        let dir = match DirLock::try_take(&store) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_at(&store)(e)),
        };
        let db = store.join("db");
        let file = match File::open(&db) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Some(StoreLock {
                    _dir: dir,
                    _db: None,
                }))
            }
            Err(e) => return Err(io_at(&db)(e)),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(StoreLock {
                _dir: dir,
                _db: Some(file),
            })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(io_at(&db)(e.into())),
        }
    }
}

/// Backs up `data` into the new directory `dest`. The store and files come too unless a node
/// is running on `data` (or `keys_only`); returns the manifest written.
pub fn backup(
    data: &Path,
    dest: &Path,
    keys_only: bool,
    now_ms: u64,
) -> Result<Manifest, BackupError> {
    if !data.is_dir() {
        return Err(BackupError::NoDataDir(data.display().to_string()));
    }
    if !DataDir::new(data).teacher_key().is_file() {
        return Err(BackupError::NoTeacherKey(data.display().to_string()));
    }
    let inside = |real_data: PathBuf| {
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
        fs::canonicalize(parent.unwrap_or(Path::new("."))).is_ok_and(|p| p.starts_with(&real_data))
    };
    if fs::canonicalize(data).is_ok_and(inside) {
        return Err(BackupError::DestinationInside(dest.display().to_string()));
    }
    let occupied = fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some());
    if occupied {
        return Err(BackupError::DestinationNotEmpty(dest.display().to_string()));
    }
    crate::secret_file::private_dir(dest).map_err(io_at(dest))?;
    let lock = if keys_only {
        None
    } else {
        StoreLock::take(data)?
    };
    let mut files = Vec::new();
    for name in KEYS_AND_CONFIG {
        copy_tree(data, dest, Path::new(name), &mut files)?;
    }
    if lock.is_some() {
        for name in DATA {
            copy_tree(data, dest, Path::new(name), &mut files)?;
        }
    } else {
        // The node's own state (networks, teachers, content keys, local purges): written
        // whole, so consistent even while the node runs.
        crate::secret_file::private_dir(&dest.join("store")).map_err(io_at(dest))?;
        copy_tree(data, dest, &Path::new("store").join(STATE_COPY), &mut files)?;
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at_ms: now_ms,
        with_data: lock.is_some(),
        files,
    };
    let text = toml::to_string(&manifest).map_err(|e| BackupError::Io {
        path: MANIFEST.into(),
        source: io::Error::other(e),
    })?;
    write_synced(&dest.join(MANIFEST), text.as_bytes())?;
    Ok(manifest)
}

/// Copies `rel` (a file, or a directory's every file) from `from` to `to`, noting each.
fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    files: &mut Vec<ManifestFile>,
) -> Result<(), BackupError> {
    let source = from.join(rel);
    // A top-level store or files directory may be a link to a larger disk: followed. Links
    // deeper in are not (nothing of the node's makes them).
    let top_level = rel.components().count() == 1;
    let meta = if top_level {
        fs::metadata(&source)
    } else {
        fs::symlink_metadata(&source)
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(&source)(e)),
    };
    if meta.is_dir() {
        crate::secret_file::private_dir(&to.join(rel)).map_err(io_at(&to.join(rel)))?;
        let mut names: Vec<_> = fs::read_dir(&source)
            .map_err(io_at(&source))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_at(&source))?;
        names.sort();
        for name in names {
            copy_tree(from, to, &rel.join(name), files)?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Ok(());
    }
    if files.len() >= FILES_MAX {
        return Err(BackupError::TooManyFiles);
    }
    let (bytes, hash) = copy_hashed(&source, &to.join(rel))?;
    files.push(ManifestFile {
        path: rel.to_string_lossy().into_owned(),
        bytes,
        blake3: hash.to_hex().to_string(),
    });
    Ok(())
}

/// Copies a file, synced, private to its owner; returns its size and hash.
fn copy_hashed(from: &Path, to: &Path) -> Result<(u64, blake3::Hash), BackupError> {
    let mut input = File::open(from).map_err(io_at(from))?;
    let mut output = private_file(to)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io_at(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(io_at(to))?;
        bytes += n as u64;
    }
    output.sync_all().map_err(io_at(to))?;
    Ok((bytes, hasher.finalize()))
}

fn private_file(path: &Path) -> Result<File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_at(path))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = private_file(path)?;
    file.write_all(bytes).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

/// Reads and checks the manifest of the backup in `src`: every file present, of its size and
/// hash, with a path inside the data directory.
pub fn check(src: &Path) -> Result<Manifest, BackupError> {
    let path = src.join(MANIFEST);
    let text = match fs::metadata(&path) {
        Ok(m) if m.len() <= MANIFEST_BYTES_MAX => {
            fs::read_to_string(&path).map_err(io_at(&path))?
        }
        Ok(_) => return Err(damaged(MANIFEST, "is too large")),
        Err(_) => return Err(BackupError::NotABackup(src.display().to_string())),
    };
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| damaged(MANIFEST, &format!("does not parse: {}", e.message())))?;
    if manifest.format != FORMAT {
        return Err(damaged(
            MANIFEST,
            &format!("is of format {}", manifest.format),
        ));
    }
    if manifest.files.len() > FILES_MAX {
        return Err(BackupError::TooManyFiles);
    }
    for file in &manifest.files {
        let rel = safe_relative(&file.path)?;
        let (bytes, hash) =
            hash_file(&src.join(rel)).map_err(|_| damaged(&file.path, "is missing"))?;
        if bytes != file.bytes || hash.to_hex().as_str() != file.blake3 {
            return Err(damaged(&file.path, "does not match its hash"));
        }
    }
    Ok(manifest)
}

fn damaged(path: &str, problem: &str) -> BackupError {
    BackupError::Damaged {
        path: path.into(),
        problem: problem.into(),
    }
}

/// A manifest path, if it stays inside the data directory (no `..`, not absolute).
fn safe_relative(path: &str) -> Result<PathBuf, BackupError> {
    let rel = PathBuf::from(path);
    let inside = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    match inside && !path.is_empty() {
        true => Ok(rel),
        false => Err(damaged(path, "points outside the data directory")),
    }
}

fn hash_file(path: &Path) -> io::Result<(u64, blake3::Hash)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    Ok((bytes, hasher.finalize()))
}

/// Restores the backup in `src` into `data` (created if missing), once it checks out whole.
/// Everything is first copied into `data/.restoring`, each copy checked against the
/// manifest; only then is each top-level file or directory swapped in, what it replaces kept
/// aside in `data/before-restore-<now_ms>`. A keys-only backup brings the node's state copy
/// into a data directory without a store, and leaves an existing store alone.
pub fn restore(src: &Path, data: &Path, force: bool, now_ms: u64) -> Result<Manifest, BackupError> {
    let manifest = check(src)?;
    crate::secret_file::private_dir(data).map_err(io_at(data))?;
    let Some(_lock) = StoreLock::take(data)? else {
        return Err(BackupError::NodeRunning(data.display().to_string()));
    };
    refuse_other_teacher(&manifest, data, force)?;
    let stage = data.join(".restoring");
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(io_at(&stage))?;
    }
    crate::secret_file::private_dir(&stage).map_err(io_at(&stage))?;
    for file in &manifest.files {
        let rel = safe_relative(&file.path)?;
        let target = stage.join(&rel);
        if let Some(parent) = target.parent() {
            crate::secret_file::private_dir(parent).map_err(io_at(parent))?;
        }
        let (bytes, hash) = copy_hashed(&src.join(&rel), &target)?;
        if bytes != file.bytes || hash.to_hex().as_str() != file.blake3 {
            return Err(damaged(&file.path, "changed while it was copied"));
        }
    }
    let aside = unique_aside(data, now_ms);
    let mut tops: Vec<String> = Vec::new();
    for file in &manifest.files {
        let top = file.path.split('/').next().unwrap_or("").to_owned();
        if !top.is_empty() && !tops.contains(&top) {
            tops.push(top);
        }
    }
    for top in &tops {
        let current = data.join(top);
        // A keys-only backup's state copy seeds a new store; an existing store keeps its own.
        if !manifest.with_data && top == "store" && current.exists() {
            continue;
        }
        if fs::symlink_metadata(&current).is_ok() {
            crate::secret_file::private_dir(&aside).map_err(io_at(&aside))?;
            fs::rename(&current, aside.join(top)).map_err(io_at(&current))?;
        }
        let staged = stage.join(top);
        fs::rename(&staged, &current).map_err(io_at(&staged))?;
    }
    fs::remove_dir_all(&stage).map_err(io_at(&stage))?;
    Ok(manifest)
}

/// Refuses to replace a teacher key other than the backup's, unless `force`.
fn refuse_other_teacher(manifest: &Manifest, data: &Path, force: bool) -> Result<(), BackupError> {
    let key_path = DataDir::new(data).teacher_key();
    if force || !key_path.is_file() {
        return Ok(());
    }
    let here = hash_file(&key_path).map_err(io_at(&key_path))?.1;
    let backed = manifest.files.iter().find(|f| f.path == "teacher.key");
    match backed.is_some_and(|f| f.blake3 != here.to_hex().as_str()) {
        true => Err(BackupError::OtherTeacherKey {
            path: key_path.display().to_string(),
        }),
        false => Ok(()),
    }
}

/// A directory name in `data` for what a restore replaces, not used before.
fn unique_aside(data: &Path, now_ms: u64) -> PathBuf {
    let mut n = 0u32;
    loop {
        let name = match n {
            0 => format!("before-restore-{now_ms}"),
            n => format!("before-restore-{now_ms}-{n}"),
        };
        let path = data.join(name);
        if !path.exists() {
            return path;
        }
        n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
