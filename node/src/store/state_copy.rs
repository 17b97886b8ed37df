//! A copy of this node's own state in the store's directory, outside sled: the networks it
//! follows, its teachers,
//! file policies, private networks' content keys and the admin's local purges. Entries come
//! back from peers after damage; this state exists nowhere else, so it is kept twice.
//!
//! Every group commit that changes the state also bumps a sequence number in the store's
//! `meta` tree; once the group is durable, the writer replaces the copy (`staffroom.state`,
//! mode 0600: it holds keys) with the state at that number. At open the two numbers decide:
//! - copy newer than the store, or the store's number lost: the store lost state to damage,
//!   and its state trees are set to the copy's (local purges are only ever added);
//! - the same: the copy is the state too (sled's recovery may keep a group's bump but not
//!   all of its changes), so the store's state trees are set to it as well;
//! - copy older (a crash between the commit and the copy): the store is right; the copy is
//!   rewritten.
//!
//! File: the sequence number (8 bytes, BE), records of `[tree u8][key len u32 BE][key]
//! [value len u32 BE][value]`, then BLAKE3 of everything before it (32 bytes).

use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::{StoreError, Trees};

pub(super) const FILE_NAME: &str = "staffroom.state";
/// Where the store keeps its state's sequence number, in `meta`.
const SEQ_KEY: &[u8] = b"state_seq";
/// The copy is read only up to this size.
const FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The trees copied as a whole, by their number in the file.
const WHOLE_TREES: [&str; 4] = ["networks", "teachers", "file_policies", "content_keys"];
/// The `erased` tree's number: only the admin's local purges are copied (their value is
/// all zeros; erasure entries come back from peers).
const LOCAL_PURGES: u8 = 4;

/// The store's state sequence number (0 when it has none).
pub(super) fn seq(trees: &Trees) -> Result<u64, StoreError> {
    Ok(trees
        .meta
        .get(SEQ_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Copies the state's sequence number of a damaged store `from` into `trees` (a repair).
pub(super) fn carry_seq(from: &sled::Db, trees: &Trees) -> Result<(), StoreError> {
    if let Some(seq) = from.open_tree("meta")?.get(SEQ_KEY)? {
        trees.meta.insert(SEQ_KEY, seq)?;
    }
    Ok(())
}

/// Notes in the store (in the group being committed) that its state is now at `seq`.
pub(super) fn bump(trees: &Trees, seq: u64) -> Result<(), StoreError> {
    trees.meta.insert(SEQ_KEY, &seq.to_be_bytes())?;
    Ok(())
}

/// One record of the copy: the tree's number, a key and its value.
type Record = (u8, Vec<u8>, Vec<u8>);

fn records(trees: &Trees) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    for (n, name) in WHOLE_TREES.iter().enumerate() {
        for item in trees.named(name).iter() {
            let (key, value) = item?;
            out.push((n as u8, key.to_vec(), value.to_vec()));
        }
    }
    for item in trees.erased.iter() {
        let (key, value) = item?;
        if value.iter().all(|b| *b == 0) {
            out.push((LOCAL_PURGES, key.to_vec(), value.to_vec()));
        }
    }
    Ok(out)
}

/// Replaces the copy in `dir` with the store's state at `seq`.
pub(super) fn write(trees: &Trees, dir: &Path, seq: u64) -> Result<(), StoreError> {
    let mut bytes = seq.to_be_bytes().to_vec();
    for (tree, key, value) in records(trees)? {
        bytes.push(tree);
        for part in [&key, &value] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(part);
        }
    }
    if bytes.len() as u64 + 32 > FILE_BYTES_MAX {
        return Err(StoreError::Sled(sled::Error::Io(io::Error::other(
            format!("this node's state is over {FILE_BYTES_MAX} bytes: too large to copy"),
        ))));
    }
    let check = blake3::hash(&bytes);
    bytes.extend_from_slice(check.as_bytes());
    replace(&dir.join(FILE_NAME), &bytes).map_err(|e| StoreError::Sled(sled::Error::Io(e)))
}

/// Written whole and renamed over the old copy (owner-only: it holds keys), then its
/// directory synced so the rename lasts.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    crate::secret_file::write(path, bytes)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A copy as read: its sequence number and records.
pub(super) struct Copy {
    pub(super) seq: u64,
    pub(super) records: Vec<Record>,
}

fn read(dir: &Path) -> Option<Copy> {
    let path = dir.join(FILE_NAME);
    let len = std::fs::metadata(&path).ok()?.len();
    if len > FILE_BYTES_MAX {
        tracing::warn!(path = %path.display(), len, "the state copy is too large to read");
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let copy = parse(&bytes);
    if copy.is_none() {
        tracing::warn!(path = %path.display(), "the state copy is damaged: not used");
    }
    copy
}

/// A copy's bytes: its sequence number and records, checked by their hash; `None` if damaged.
pub(super) fn parse(bytes: &[u8]) -> Option<Copy> {
    let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != check {
        return None;
    }
    let (seq, mut rest) = body.split_at_checked(8)?;
    let seq = u64::from_be_bytes(seq.try_into().ok()?);
    let mut records = Vec::new();
    while let Some((&tree, after)) = rest.split_first() {
        let (key, after) = take(after)?;
        let (value, after) = take(after)?;
        records.push((tree, key.to_vec(), value.to_vec()));
        rest = after;
    }
    Some(Copy { seq, records })
}

fn take(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    rest.split_at_checked(len)
}

/// Brings the store's state in line with the copy in `dir` (see the module's rules).
/// Returns how many records were put back or taken out. Failing to rewrite the copy is not
/// an error (the node must start on a full disk): it is returned for the health report.
pub(super) fn reconcile(
    trees: &Trees,
    dir: &Path,
) -> Result<(usize, Option<StoreError>), StoreError> {
    let stored_seq = seq(trees)?;
    let copy = match read(dir) {
        Some(copy) if copy.seq >= stored_seq => copy,
        // None, damaged, or older than the store (a crash before it was rewritten).
        _ => return Ok((0, write(trees, dir, stored_seq).err())),
    };
    // At the same number the copy is the state too: sled's recovery may have kept the
    // group's bump but not all of its changes.
    let wanted: HashSet<(u8, &[u8])> = copy.records.iter().map(|(t, k, _)| (*t, &k[..])).collect();
    let mut changed = 0;
    for (n, name) in WHOLE_TREES.iter().enumerate() {
        let tree = trees.named(name);
        for key in tree.iter().keys() {
            let key = key?;
            if !wanted.contains(&(n as u8, &key[..])) {
                tree.remove(key)?;
                changed += 1;
            }
        }
    }
    for (n, key, value) in &copy.records {
        let tree = match WHOLE_TREES.get(usize::from(*n)) {
            Some(name) => trees.named(name),
            None if *n == LOCAL_PURGES => &trees.erased,
            None => continue,
        };
        if tree.get(key)?.as_deref() != Some(&value[..]) {
            tree.insert(&key[..], &value[..])?;
            changed += 1;
        }
    }
    bump(trees, copy.seq)?;
    Ok((changed, None))
}
