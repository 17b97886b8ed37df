//! A file read at offsets for bao-tree's async encoder. Reads run inline: they are 16 KiB
//! positioned reads of files the node just served or fetched, almost always from the page
//! cache, and a hop to the blocking pool for each would cost more than the read.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

#[derive(Clone)]
pub struct SliceFile {
    file: Arc<File>,
    size: u64,
}

impl SliceFile {
    pub fn new(file: Arc<File>, size: u64) -> SliceFile {
        SliceFile { file, size }
    }
}

impl iroh_io::AsyncSliceReader for SliceFile {
    async fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let end = offset.saturating_add(len as u64).min(self.size);
        let len = usize::try_from(end.saturating_sub(offset)).unwrap_or(0);
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)?
            {
                0 => break,
                n => filled += n,
            }
        }
        buf.truncate(filled);
        Ok(Bytes::from(buf))
    }

    async fn size(&mut self) -> std::io::Result<u64> {
        Ok(self.size)
    }
}
