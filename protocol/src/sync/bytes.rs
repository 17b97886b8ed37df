//! Byte-level pieces both sync encodings share: LEB128 varints and a cursor that never reads
//! past its input. Errors are a bare reason that each encoding wraps in its own error type.

/// Why bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(Malformed("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("varint too long"))
    }

    /// A varint length, checked against `max`, then that many bytes.
    pub fn blob(&mut self, max: usize) -> Result<&'a [u8], Malformed> {
        let len = self.varint()? as usize;
        if len > max {
            return Err(Malformed("field longer than its limit"));
        }
        self.take(len)
    }

    /// `count` items of `size` bytes each, the count checked against what is left first.
    pub fn chunks<const N: usize>(&mut self, count: u64) -> Result<Vec<[u8; N]>, Malformed> {
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(N))
            .ok_or(Malformed("count too large"))?;
        let raw = self.take(len)?;
        Ok(raw
            .chunks_exact(N)
            .map(|c| c.try_into().expect("N-byte chunks"))
            .collect())
    }

    pub fn finish(self) -> Result<(), Malformed> {
        if !self.is_empty() {
            return Err(Malformed("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_fail() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor::new(&out);
            assert_eq!(c.varint(), Ok(v));
            assert!(c.finish().is_ok());
        }
        assert!(Cursor::new(&[0x80; 11]).varint().is_err());
        assert!(Cursor::new(&[0x80]).varint().is_err());
        assert!(Cursor::new(&[5, 1, 2]).blob(10).is_err(), "truncated");
        assert!(
            Cursor::new(&[5, 1, 2, 3, 4, 5]).blob(4).is_err(),
            "over its limit"
        );
        assert!(Cursor::new(&[1, 2]).chunks::<8>(u64::MAX).is_err());
    }
}
