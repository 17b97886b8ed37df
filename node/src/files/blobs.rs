//! Files on disk, content-addressed by their BLAKE3 root, beside the sled store:
//!
//! ```text
//! files/complete/<root>        a file's bytes, every group verified
//! files/complete/<root>.obao   its pre-order outboard (16 KiB groups; none for one group)
//! files/partial/<root>         a file being fetched: verified groups written in place
//! files/partial/<root>.groups  which of them are verified and on disk ("SRG1", root, size, bits)
//! files/tmp/                   uploads being hashed; emptied at every open
//! ```
//!
//! A file enters `complete/` only by rename, after every byte has been checked against its
//! root and synced: a partial file is never visible as complete. The same bytes shared twice
//! have one root, so they are stored once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::CreateOutboard;
use bao_tree::{BaoTree, BlockSize};
use staffroom_protocol::files::groups::Groups;
use staffroom_protocol::files::{group_count, CHUNK_GROUP_LOG};
use staffroom_protocol::FileRoot;

use super::FilesError;

/// The protocol's chunk group size, as bao-tree counts it.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(CHUNK_GROUP_LOG);
/// Magic at the start of a `.groups` file.
const GROUPS_MAGIC: &[u8; 4] = b"SRG1";
/// Bytes read at a time when hashing a file.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// The file store's directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Opens (or creates) the file store in `dir`, discarding unfinished uploads.
    pub fn open(dir: &Path) -> Result<Blobs, FilesError> {
        let blobs = Blobs {
            dir: dir.to_path_buf(),
        };
        let tmp = blobs.dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(FilesError::io(&tmp))?;
        }
        for sub in ["complete", "partial", "tmp"] {
            let path = blobs.dir.join(sub);
            std::fs::create_dir_all(&path).map_err(FilesError::io(&path))?;
        }
        Ok(blobs)
    }

    fn complete_path(&self, root: &FileRoot) -> PathBuf {
        self.dir.join("complete").join(root.to_hex())
    }

    fn outboard_path(&self, root: &FileRoot) -> PathBuf {
        self.dir
            .join("complete")
            .join(format!("{}.obao", root.to_hex()))
    }

    /// The size of the file with this root, if it is here complete.
    pub fn complete_size(&self, root: &FileRoot) -> Option<u64> {
        std::fs::metadata(self.complete_path(root))
            .ok()
            .map(|m| m.len())
    }

    /// Opens a complete file for reading: its bytes and its outboard.
    pub fn open_complete(&self, root: &FileRoot) -> Result<Complete, FilesError> {
        let path = self.complete_path(root);
        let data = File::open(&path).map_err(FilesError::io(&path))?;
        let size = data.metadata().map_err(FilesError::io(&path))?.len();
        let outboard = match group_count(size) > 1 {
            true => {
                let path = self.outboard_path(root);
                bytes::Bytes::from(std::fs::read(&path).map_err(FilesError::io(&path))?)
            }
            false => bytes::Bytes::new(),
        };
        Ok(Complete {
            root: *root,
            size,
            data,
            outboard,
        })
    }

    /// Takes a complete file whose bytes no longer match its outboard out of the store (it
    /// will be fetched again).
    pub fn discard_complete(&self, root: &FileRoot) {
        let _ = std::fs::remove_file(self.complete_path(root));
        let _ = std::fs::remove_file(self.outboard_path(root));
    }

    /// Deletes every byte held of `root`: complete data and outboard, partial data and its
    /// groups. Returns whether anything was there.
    pub fn discard(&self, root: &FileRoot) -> Result<bool, FilesError> {
        let partial = self.dir.join("partial").join(root.to_hex());
        let paths = [
            self.complete_path(root),
            self.outboard_path(root),
            partial.with_extension("groups"),
            partial,
        ];
        let mut found = false;
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => found = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FilesError::io(&path)(e)),
            }
        }
        if found {
            sync_dir(&self.dir.join("complete"))?;
            sync_dir(&self.dir.join("partial"))?;
        }
        Ok(found)
    }

    /// A fresh handle on a complete file's bytes (with a position of its own).
    pub fn open_data(&self, root: &FileRoot) -> std::io::Result<File> {
        File::open(self.complete_path(root))
    }

    /// A new upload in `tmp/`, to be hashed as it is written and then kept or dropped.
    pub fn upload(&self) -> Result<Upload, FilesError> {
        let name = format!("upload-{}", hex::encode(crate::secret_file::random_32()?));
        let path = self.dir.join("tmp").join(name);
        // Read too: its outboard is computed from it once it is complete.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(FilesError::io(&path))?;
        Ok(Upload {
            path,
            file,
            hasher: blake3::Hasher::new(),
            size: 0,
        })
    }

    /// Stores a file already on this machine (tests and tools): hashed, then kept.
    pub fn import_path(&self, path: &Path) -> Result<(FileRoot, u64), FilesError> {
        let mut upload = self.upload()?;
        let mut source = File::open(path).map_err(FilesError::io(path))?;
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        loop {
            let n = source.read(&mut buf).map_err(FilesError::io(path))?;
            if n == 0 {
                break;
            }
            upload.write(&buf[..n])?;
        }
        let root = upload.root();
        let size = upload.size;
        self.keep(upload, &root)?;
        Ok((root, size))
    }

    /// Keeps a finished upload whose bytes hash to `expected`; drops it otherwise.
    pub fn keep(&self, upload: Upload, expected: &FileRoot) -> Result<(), FilesError> {
        let root = upload.root();
        if root != *expected {
            let _ = std::fs::remove_file(&upload.path);
            return Err(FilesError::WrongRoot {
                expected: *expected,
                actual: root,
            });
        }
        let file = upload
            .file
            .try_clone()
            .map_err(FilesError::io(&upload.path))?;
        // On failure the upload's drop removes its file; on success it is already renamed.
        self.promote(&upload.path, file, &root, upload.size, None)
    }

    /// Moves a fully written file into `complete/` with its outboard, both synced (the
    /// outboard first: a data file there means complete). `outboard` is given when it was
    /// built from verified parents as the bytes arrived; otherwise it is computed here from
    /// the bytes, and their root checked.
    fn promote(
        &self,
        path: &Path,
        data: File,
        root: &FileRoot,
        size: u64,
        outboard: Option<Vec<u8>>,
    ) -> Result<(), FilesError> {
        if self.complete_size(root) == Some(size) {
            let _ = std::fs::remove_file(path);
            return Ok(());
        }
        let outboard = match outboard {
            Some(outboard) => outboard,
            None => {
                let computed = outboard_of(&data, size, path)?;
                if computed.root.as_bytes() != &root.0 {
                    let _ = std::fs::remove_file(path);
                    return Err(FilesError::WrongRoot {
                        expected: *root,
                        actual: FileRoot(*computed.root.as_bytes()),
                    });
                }
                computed.data
            }
        };
        data.sync_all().map_err(FilesError::io(path))?;
        if group_count(size) > 1 {
            let tmp = path.with_extension("obao");
            write_synced(&tmp, &outboard)?;
            let target = self.outboard_path(root);
            std::fs::rename(&tmp, &target).map_err(FilesError::io(&target))?;
            // The outboard's name is on disk before the data's: a data file in `complete/`
            // always has its outboard.
            sync_dir(&self.dir.join("complete"))?;
        }
        let target = self.complete_path(root);
        std::fs::rename(path, &target).map_err(FilesError::io(&target))?;
        sync_dir(&self.dir.join("complete"))
    }

    /// The partial file for `root`, created empty or resumed from its last persisted groups.
    pub fn partial(&self, root: &FileRoot, size: u64) -> Result<Partial, FilesError> {
        let path = self.dir.join("partial").join(root.to_hex());
        let groups_path = path.with_extension("groups");
        let existed = path.exists();
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(FilesError::io(&path))?;
        data.set_len(size).map_err(FilesError::io(&path))?;
        // Groups recorded for a data file that is gone describe nothing: start afresh.
        let persisted = match existed {
            true => read_groups(&groups_path, root, size),
            false => {
                let _ = std::fs::remove_file(&groups_path);
                sync_dir(&self.dir.join("partial"))?;
                None
            }
        };
        let persisted = persisted.unwrap_or_else(|| Groups::empty(group_count(size)));
        Ok(Partial {
            root: *root,
            size,
            path,
            groups_path,
            data,
            persisted,
        })
    }

    /// How much of `root` is here: all of it, the persisted groups of a partial file, or none.
    pub fn bytes_here(&self, root: &FileRoot, size: u64) -> u64 {
        if self.complete_size(root) == Some(size) {
            return size;
        }
        let groups_path = self
            .dir
            .join("partial")
            .join(format!("{}.groups", root.to_hex()));
        read_groups(&groups_path, root, size).map_or(0, |g| groups_bytes(&g, size))
    }
}

/// Bytes covered by `groups` in a file of `size` (the last group may be short).
pub fn groups_bytes(groups: &Groups, size: u64) -> u64 {
    let full = groups.count() * staffroom_protocol::files::CHUNK_GROUP_BYTES;
    let last = groups.len().checked_sub(1);
    match last {
        Some(last) if groups.contains(last) => {
            full - (groups.len() * staffroom_protocol::files::CHUNK_GROUP_BYTES - size)
        }
        _ => full,
    }
}

/// A file here complete, open for serving.
pub struct Complete {
    pub root: FileRoot,
    pub size: u64,
    pub data: File,
    /// The pre-order outboard (empty for files of one group), read whole: 0.4% of the file.
    pub outboard: bytes::Bytes,
}

impl Complete {
    pub fn outboard(&self) -> PreOrderOutboard<bytes::Bytes> {
        PreOrderOutboard {
            root: blake3::Hash::from_bytes(self.root.0),
            tree: BaoTree::new(self.size, BLOCK_SIZE),
            data: self.outboard.clone(),
        }
    }
}

/// Bytes being received from a client, hashed as they are written to `tmp/`.
pub struct Upload {
    path: PathBuf,
    file: File,
    hasher: blake3::Hasher,
    size: u64,
}

impl Upload {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), FilesError> {
        self.file
            .write_all(bytes)
            .map_err(FilesError::io(&self.path))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> FileRoot {
        FileRoot(*self.hasher.finalize().as_bytes())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Kept uploads were renamed away; this removes only abandoned ones.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file being fetched: verified groups are written in place, and which ones are on disk
/// is persisted (after the data is synced) so a killed node resumes from them.
pub struct Partial {
    pub root: FileRoot,
    pub size: u64,
    path: PathBuf,
    groups_path: PathBuf,
    data: File,
    persisted: Groups,
}

impl Partial {
    /// The groups known to be on disk when this was opened or last persisted.
    pub fn persisted(&self) -> &Groups {
        &self.persisted
    }

    /// A handle that writes verified bytes in place, usable from many tasks at once.
    pub fn writer(&self) -> Result<PartialWriter, FilesError> {
        let file = self.data.try_clone().map_err(FilesError::io(&self.path))?;
        Ok(PartialWriter(std::sync::Arc::new(file)))
    }

    /// Makes `groups` durable: the data first, then the bitfield, written atomically.
    pub fn persist(&mut self, groups: &Groups) -> Result<(), FilesError> {
        if *groups == self.persisted {
            return Ok(());
        }
        self.data.sync_data().map_err(FilesError::io(&self.path))?;
        let mut bytes = Vec::with_capacity(44 + groups.len() as usize / 8);
        bytes.extend_from_slice(GROUPS_MAGIC);
        bytes.extend_from_slice(&self.root.0);
        bytes.extend_from_slice(&self.size.to_be_bytes());
        bytes.extend_from_slice(&groups.to_bytes());
        let tmp = self.groups_path.with_extension("groups-tmp");
        write_synced(&tmp, &bytes)?;
        std::fs::rename(&tmp, &self.groups_path).map_err(FilesError::io(&self.groups_path))?;
        self.persisted = groups.clone();
        Ok(())
    }

    /// Every group is here, each verified as it arrived: move the file into the complete
    /// store, with `outboard` if the parents were kept on the way (else it is recomputed and
    /// the whole file checked against its root).
    pub fn finish(self, blobs: &Blobs, outboard: Option<Vec<u8>>) -> Result<(), FilesError> {
        let Partial {
            root,
            size,
            path,
            groups_path,
            data,
            ..
        } = self;
        let promoted = blobs.promote(&path, data, &root, size, outboard);
        // Kept unless the bytes proved wrong: then the data file is gone, and so must be the
        // record of its groups, or every later attempt would trust them again.
        if promoted.is_ok() || matches!(promoted, Err(FilesError::WrongRoot { .. })) {
            let _ = std::fs::remove_file(&groups_path);
        }
        promoted
    }
}

/// Writes verified groups into a partial file.
#[derive(Clone)]
pub struct PartialWriter(std::sync::Arc<File>);

impl PartialWriter {
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }
}

fn read_groups(path: &Path, root: &FileRoot, size: u64) -> Option<Groups> {
    let bytes = std::fs::read(path).ok()?;
    let header = bytes.get(..44)?;
    let same_file = &header[..4] == GROUPS_MAGIC
        && header[4..36] == root.0
        && header[36..44] == size.to_be_bytes();
    same_file.then(|| Groups::from_bytes(group_count(size), &bytes[44..]))?
}

fn outboard_of(
    data: &File,
    size: u64,
    path: &Path,
) -> Result<PreOrderOutboard<Vec<u8>>, FilesError> {
    let mut outboard = PreOrderOutboard {
        root: blake3::Hash::from_bytes([0; 32]),
        tree: BaoTree::new(size, BLOCK_SIZE),
        data: Vec::new(),
    };
    let reader = std::io::BufReader::with_capacity(READ_BUFFER_BYTES, SliceFrom(data, 0));
    outboard.init_from(reader).map_err(FilesError::io(path))?;
    Ok(outboard)
}

/// Reads a file from an offset with positioned reads, leaving the handle's cursor alone.
struct SliceFrom<'a>(&'a File, u64);

impl Read for SliceFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read_at(buf, self.1)?;
        self.1 += n as u64;
        Ok(n)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FilesError> {
    let mut file = File::create(path).map_err(FilesError::io(path))?;
    file.write_all(bytes).map_err(FilesError::io(path))?;
    file.sync_all().map_err(FilesError::io(path))
}

fn sync_dir(dir: &Path) -> Result<(), FilesError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(FilesError::io(dir))
}
