//! Which chunk groups of a file are present and verified: a bitfield, one bit per group.

/// Bits per word.
const WORD_BITS: u64 = 64;

/// A set of chunk groups of one file, as a bitfield. Its length is fixed by the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    len: u64,
    words: Vec<u64>,
    count: u64,
}

impl Groups {
    /// No group of a file of `len` groups.
    pub fn empty(len: u64) -> Groups {
        let words = usize::try_from(len.div_ceil(WORD_BITS)).unwrap_or(usize::MAX);
        Groups {
            len,
            words: vec![0; words],
            count: 0,
        }
    }

    /// Every group of a file of `len` groups.
    pub fn full(len: u64) -> Groups {
        let mut groups = Groups::empty(len);
        groups.insert_range(0..len);
        groups
    }

    /// Groups in the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Groups in the set.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    pub fn contains(&self, group: u64) -> bool {
        group < self.len && self.words[(group / WORD_BITS) as usize] & bit(group) != 0
    }

    /// Adds `group`; false if it was already in, or is past the end.
    pub fn insert(&mut self, group: u64) -> bool {
        if group >= self.len || self.contains(group) {
            return false;
        }
        self.words[(group / WORD_BITS) as usize] |= bit(group);
        self.count += 1;
        true
    }

    pub fn insert_range(&mut self, range: std::ops::Range<u64>) {
        for group in range.start..range.end.min(self.len) {
            self.insert(group);
        }
    }

    /// The first run of groups *not* in the set at or after `from`, at most `max` long.
    pub fn next_missing(&self, from: u64, max: u64) -> Option<std::ops::Range<u64>> {
        let start = (from..self.len).find(|g| !self.contains(*g))?;
        let end = (start..self.len.min(start.saturating_add(max)))
            .find(|g| self.contains(*g))
            .unwrap_or(self.len.min(start.saturating_add(max)));
        Some(start..end)
    }

    /// The bitfield as bytes: group `g` is bit `g % 8` of byte `g / 8`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let bytes = self.len.div_ceil(8) as usize;
        let mut out: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        out.truncate(bytes);
        out
    }

    /// Reads [`Groups::to_bytes`] back for a file of `len` groups. `None` if the length does
    /// not match or bits past the end are set (the bytes are not of this file).
    pub fn from_bytes(len: u64, bytes: &[u8]) -> Option<Groups> {
        if bytes.len() as u64 != len.div_ceil(8) {
            return None;
        }
        let mut groups = Groups::empty(len);
        for (i, byte) in bytes.iter().enumerate() {
            for b in 0..8u64 {
                if byte & (1 << b) != 0 {
                    let group = i as u64 * 8 + b;
                    if group >= len {
                        return None;
                    }
                    groups.insert(group);
                }
            }
        }
        Some(groups)
    }
}

fn bit(group: u64) -> u64 {
    1 << (group % WORD_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_count_and_runs() {
        let mut g = Groups::empty(130);
        assert_eq!(g.next_missing(0, 10), Some(0..10));
        g.insert_range(0..5);
        g.insert(7);
        assert!(!g.insert(7));
        assert!(!g.insert(130));
        assert_eq!(g.count(), 6);
        assert_eq!(g.next_missing(0, 10), Some(5..7));
        assert_eq!(g.next_missing(8, 1000), Some(8..130));
        g.insert_range(0..130);
        assert!(g.is_full());
        assert_eq!(g.next_missing(0, 10), None);
        assert_eq!(Groups::empty(0).next_missing(0, 4), None);
        assert!(Groups::full(0).is_full());
    }

    #[test]
    fn bytes_round_trip_and_refuse_other_files() {
        let mut g = Groups::empty(21);
        g.insert_range(3..9);
        g.insert(20);
        let bytes = g.to_bytes();
        assert_eq!(bytes.len(), 3);
        assert_eq!(Groups::from_bytes(21, &bytes), Some(g));
        assert_eq!(Groups::from_bytes(22, &bytes[..2]), None);
        assert_eq!(
            Groups::from_bytes(20, &bytes),
            None,
            "bit 20 is past a 20-group file"
        );
    }
}
