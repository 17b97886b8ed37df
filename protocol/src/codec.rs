//! The canonical byte codec: big-endian integers, length-prefixed UTF-8, bounded counts.
//!
//! The reader checks every length against its limit *before* it allocates, and accepts exactly
//! one encoding of each value, so `encode(decode(bytes)) == bytes` for every accepted input.

use crate::error::EntryError;

#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A string: u32 big-endian byte length, then UTF-8 bytes. Encoding is total: a string
    /// longer than 4 GiB (never valid) is cut, and verification then refuses the entry.
    pub fn str(&mut self, v: &str) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&v.as_bytes()[..len as usize]);
    }
    /// A list of strings: u8 count, then each string. Lists longer than 255 (never valid)
    /// are cut to 255, and verification then refuses the entry as having too many items.
    /// Bytes: u32 big-endian length, then the bytes (cut, like strings, past 4 GiB).
    pub fn blob(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(&v[..len as usize]);
    }
    pub fn str_list(&mut self, v: &[String]) {
        let count = saturating_count(v.len());
        self.u8(count);
        for s in &v[..usize::from(count)] {
            self.str(s);
        }
    }
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A list length as the u8 the encoding holds, capped at 255.
pub(crate) fn saturating_count(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EntryError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(EntryError::Truncated { field })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    pub fn u8(&mut self, field: &'static str) -> Result<u8, EntryError> {
        Ok(self.take(1, field)?[0])
    }
    pub fn u64(&mut self, field: &'static str) -> Result<u64, EntryError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(b))
    }
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EntryError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N, field)?);
        Ok(b)
    }
    pub fn str(&mut self, field: &'static str, max: usize) -> Result<String, EntryError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, field)?);
        let len = u32::from_be_bytes(b) as usize;
        if len > max {
            return Err(EntryError::FieldTooLong { field, len, max });
        }
        let raw = self.take(len, field)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(EntryError::InvalidField {
                field,
                reason: "not valid UTF-8",
            }),
        }
    }
    pub fn str_list(
        &mut self,
        field: &'static str,
        count_max: usize,
        item_max: usize,
    ) -> Result<Vec<String>, EntryError> {
        let count = self.u8(field)? as usize;
        if count > count_max {
            return Err(EntryError::TooMany {
                field,
                count,
                max: count_max,
            });
        }
        (0..count).map(|_| self.str(field, item_max)).collect()
    }
    /// Bytes: u32 big-endian length (from `min` to `max`, checked before reading), then the
    /// bytes.
    pub fn blob(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<Vec<u8>, EntryError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, field)?);
        let len = u32::from_be_bytes(b) as usize;
        if len > max {
            return Err(EntryError::FieldTooLong { field, len, max });
        }
        if len < min {
            return Err(EntryError::InvalidField {
                field,
                reason: "too short",
            });
        }
        Ok(self.take(len, field)?.to_vec())
    }
    pub fn finish(self) -> Result<(), EntryError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(EntryError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_length_is_checked_before_reading() {
        let mut w = Writer::default();
        w.str("hello");
        let bytes = w.finish();
        assert_eq!(bytes, [0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(
            Reader::new(&bytes).str("title", 4),
            Err(EntryError::FieldTooLong {
                field: "title",
                len: 5,
                max: 4
            })
        );
        assert_eq!(
            Reader::new(&bytes[..6]).str("title", 10),
            Err(EntryError::Truncated { field: "title" })
        );
        // A huge claimed length must fail cleanly, not allocate.
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Reader::new(&huge).str("body", usize::MAX),
            Err(EntryError::Truncated { .. })
        ));
    }

    #[test]
    fn invalid_utf8_and_trailing_bytes_are_errors() {
        let bytes = [0, 0, 0, 1, 0xff];
        assert!(matches!(
            Reader::new(&bytes).str("title", 10),
            Err(EntryError::InvalidField { .. })
        ));
        let mut r = Reader::new(&[1, 2]);
        r.u8("x").unwrap();
        assert_eq!(r.finish(), Err(EntryError::TrailingBytes { count: 1 }));
    }
}
