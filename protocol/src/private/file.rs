//! Sealed files: a private network's file bytes, encrypted before they are hashed, so that
//! the BLAKE3 root every node verifies and transfers is the root of the sealed bytes, and only
//! a node holding the content key reads them.
//!
//! ```text
//! sealed file = "SRF1" key_id:[16] nonce_prefix:[19] segment*
//! segment i   = XChaCha20-Poly1305(content key, nonce_prefix ‖ i:u32 ‖ last:u8, "", plain_i)
//! ```
//!
//! The plaintext is cut into [`SEGMENT_PLAIN_BYTES`] segments, the last one shorter or empty
//! (an empty file is one empty segment); `last` is 1 on the last segment only, so a file cut
//! short or extended at a segment boundary does not open. No randomness of its own: the
//! caller passes the nonce prefix.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::crypto::{key_id, SealError};
use super::{KeyId, TAG_BYTES};

/// What a sealed file starts with.
pub const FILE_MAGIC: &[u8; 4] = b"SRF1";
/// Bytes before the first segment.
pub const FILE_HEADER_BYTES: usize = 4 + 16 + 19;
/// Plaintext bytes per segment (all but the last).
pub const SEGMENT_PLAIN_BYTES: usize = 64 * 1024;
/// Sealed bytes per full segment.
pub const SEGMENT_SEALED_BYTES: usize = SEGMENT_PLAIN_BYTES + TAG_BYTES;

/// Segments of a file of `plain` bytes: at least one.
pub fn segment_count(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT_PLAIN_BYTES as u64).max(1)
}

/// The size of the sealed form of `plain` bytes.
pub fn sealed_size(plain: u64) -> u64 {
    let tags = segment_count(plain).saturating_mul(TAG_BYTES as u64);
    (FILE_HEADER_BYTES as u64)
        .saturating_add(plain)
        .saturating_add(tags)
}

/// The plaintext size of a sealed file of `sealed` bytes, if that size is possible.
pub fn plain_size(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(FILE_HEADER_BYTES as u64)?;
    let segments = body.div_ceil(SEGMENT_SEALED_BYTES as u64).max(1);
    let plain = body.checked_sub(segments.checked_mul(TAG_BYTES as u64)?)?;
    (sealed_size(plain) == sealed).then_some(plain)
}

fn nonce(prefix: &[u8; 19], index: u32, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..19].copy_from_slice(prefix);
    n[19..23].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    XNonce::from(n)
}

/// Seals a file segment by segment.
pub struct FileSealer {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 19],
    next: u32,
}

impl FileSealer {
    /// A sealer under `key`, with `nonce_prefix` (19 fresh random bytes), and the header to
    /// write first.
    pub fn new(key: &[u8; 32], nonce_prefix: [u8; 19]) -> (FileSealer, Vec<u8>) {
        let mut header = Vec::with_capacity(FILE_HEADER_BYTES);
        header.extend_from_slice(FILE_MAGIC);
        header.extend_from_slice(&key_id(key).0);
        header.extend_from_slice(&nonce_prefix);
        let sealer = FileSealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            prefix: nonce_prefix,
            next: 0,
        };
        (sealer, header)
    }

    /// Seals the next segment: [`SEGMENT_PLAIN_BYTES`] of plaintext, or fewer if `last`.
    pub fn seal(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>, SealError> {
        let full = plain.len() == SEGMENT_PLAIN_BYTES;
        if plain.len() > SEGMENT_PLAIN_BYTES || (!last && !full) {
            return Err(SealError::CannotOpen);
        }
        let index = self.next;
        self.next = self.next.checked_add(1).ok_or(SealError::CannotOpen)?;
        self.cipher
            .encrypt(&nonce(&self.prefix, index, last), plain)
            .map_err(|_| SealError::CannotOpen)
    }
}

/// The key id and nonce prefix a sealed file's header names.
pub fn read_header(header: &[u8]) -> Result<(KeyId, [u8; 19]), SealError> {
    if header.len() != FILE_HEADER_BYTES || &header[..4] != FILE_MAGIC {
        return Err(SealError::CannotOpen);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&header[4..20]);
    let mut prefix = [0u8; 19];
    prefix.copy_from_slice(&header[20..]);
    Ok((KeyId(id), prefix))
}

/// Opens a sealed file segment by segment, in order.
pub struct FileOpener {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 19],
    next: u32,
}

impl FileOpener {
    /// An opener for the file whose header named `prefix`, under `key`.
    pub fn new(key: &[u8; 32], prefix: [u8; 19]) -> FileOpener {
        FileOpener {
            cipher: XChaCha20Poly1305::new(key.into()),
            prefix,
            next: 0,
        }
    }

    /// Opens the next segment (`last` on the final one).
    pub fn open(&mut self, sealed: &[u8], last: bool) -> Result<Vec<u8>, SealError> {
        let index = self.next;
        self.next = self.next.checked_add(1).ok_or(SealError::CannotOpen)?;
        self.cipher
            .decrypt(&nonce(&self.prefix, index, last), sealed)
            .map_err(|_| SealError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        let (mut sealer, mut out) = FileSealer::new(key, [3; 19]);
        let segments: Vec<&[u8]> = match plain.is_empty() {
            true => vec![&[][..]],
            false => plain.chunks(SEGMENT_PLAIN_BYTES).collect(),
        };
        for (n, segment) in segments.iter().enumerate() {
            out.extend(sealer.seal(segment, n + 1 == segments.len()).unwrap());
        }
        out
    }

    fn open_all(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (id, prefix) = read_header(&sealed[..FILE_HEADER_BYTES])?;
        assert_eq!(id, key_id(key));
        let mut opener = FileOpener::new(key, prefix);
        let body = &sealed[FILE_HEADER_BYTES..];
        let chunks: Vec<&[u8]> = body.chunks(SEGMENT_SEALED_BYTES).collect();
        let mut out = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            out.extend(opener.open(chunk, n + 1 == chunks.len())?);
        }
        Ok(out)
    }

    #[test]
    fn files_of_every_edge_size_seal_and_open() {
        let key = [9u8; 32];
        for len in [
            0,
            1,
            SEGMENT_PLAIN_BYTES - 1,
            SEGMENT_PLAIN_BYTES,
            SEGMENT_PLAIN_BYTES + 1,
            3 * SEGMENT_PLAIN_BYTES,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal_all(&key, &plain);
            assert_eq!(sealed.len() as u64, sealed_size(len as u64), "{len}");
            assert_eq!(plain_size(sealed.len() as u64), Some(len as u64), "{len}");
            assert_eq!(open_all(&key, &sealed).unwrap(), plain, "{len}");
        }
        assert_eq!(
            plain_size(FILE_HEADER_BYTES as u64),
            None,
            "no room for a tag"
        );
    }

    #[test]
    fn a_file_cut_at_a_segment_boundary_or_under_another_key_does_not_open() {
        let key = [9u8; 32];
        let plain = vec![5u8; 2 * SEGMENT_PLAIN_BYTES + 10];
        let sealed = seal_all(&key, &plain);
        let cut = &sealed[..FILE_HEADER_BYTES + 2 * SEGMENT_SEALED_BYTES];
        assert!(open_all(&key, cut).is_err(), "the last segment is marked");
        let (_, prefix) = read_header(&sealed[..FILE_HEADER_BYTES]).unwrap();
        let mut other = FileOpener::new(&[8; 32], prefix);
        let first = &sealed[FILE_HEADER_BYTES..FILE_HEADER_BYTES + SEGMENT_SEALED_BYTES];
        assert!(other.open(first, false).is_err());
        let needle = &plain[..64];
        assert!(!sealed.windows(64).any(|w| w == needle), "no plaintext");
    }
}
