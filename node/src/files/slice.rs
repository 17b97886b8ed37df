//! A file read at offsets for bao-tree's async encoder. Reads run inline: they are 16 KiB
//! reads of files the node just served or fetched, almost always from the page cache, and a
//! hop to the blocking pool for each would cost more than the read. The encoder reads in
//! order, so each reader keeps its own position and seeks only when it has to; reading into
//! fresh capacity (not a zeroed buffer) saves a pass over every byte.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use bytes::Bytes;

pub struct SliceFile {
    file: File,
    size: u64,
    position: u64,
}

impl SliceFile {
    /// `file` must be a handle of its own (opened for this reader, not a clone sharing a
    /// position with others).
    pub fn new(file: File, size: u64) -> SliceFile {
        SliceFile {
            file,
            size,
            position: 0,
        }
    }
}

impl iroh_io::AsyncSliceReader for SliceFile {
    async fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let end = offset.saturating_add(len as u64).min(self.size);
        let len = end.saturating_sub(offset);
        if self.position != offset {
            self.position = self.file.seek(SeekFrom::Start(offset))?;
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let read = (&mut self.file).take(len).read_to_end(&mut buf)?;
        self.position += read as u64;
        Ok(Bytes::from(buf))
    }

    async fn size(&mut self) -> std::io::Result<u64> {
        Ok(self.size)
    }
}
