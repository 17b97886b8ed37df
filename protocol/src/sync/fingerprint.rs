//! Range fingerprints that can be added to incrementally: the sum of the ids in a range
//! (as 256-bit little-endian integers, mod 2^256) and their count, hashed together.
//!
//! Addition commutes, so a range's fingerprint is the sum of its parts' — the index keeps one
//! accumulator per block and never rescans. Ids are BLAKE3 outputs, so sums of honest sets
//! are uniformly spread; hashing the sum with the count keeps a fingerprint from revealing it.

/// Bytes of a fingerprint on the wire: a 2^-64 chance that two different ranges collide, and
/// 2^64 work to make a chosen range collide. A collision only delays one range until the sets
/// change again; every range costs these bytes, so they are kept short.
pub const FINGERPRINT_BYTES: usize = 8;

pub type Fingerprint = [u8; FINGERPRINT_BYTES];

/// Bytes of a sum on the wire: its low half, so a false match needs a 2^-128 coincidence.
pub const SUM_BYTES: usize = 16;

pub type LowSum = [u8; SUM_BYTES];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    sum: [u64; 4],
    count: u64,
}

impl Accumulator {
    pub fn add_id(&mut self, id: &[u8; 32]) {
        let mut carry = 0u64;
        for (i, limb) in self.sum.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&id[i * 8..i * 8 + 8]);
            let (s1, c1) = limb.overflowing_add(u64::from_le_bytes(word));
            let (s2, c2) = s1.overflowing_add(carry);
            *limb = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
        self.count += 1;
    }

    pub fn add(&mut self, other: &Accumulator) {
        let mut carry = 0u64;
        for (limb, o) in self.sum.iter_mut().zip(other.sum) {
            let (s1, c1) = limb.overflowing_add(o);
            let (s2, c2) = s1.overflowing_add(carry);
            *limb = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
        self.count += other.count;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The low [`SUM_BYTES`] bytes of the sum: enough to name a single differing id.
    pub fn low_sum(&self) -> LowSum {
        let mut out = [0u8; SUM_BYTES];
        for (i, limb) in self.sum.iter().take(SUM_BYTES / 8).enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// The low [`SUM_BYTES`] bytes of `self − other` (mod 2^128): when two sets differ by
    /// exactly one item, the larger set's sum minus the smaller's is that item's id, and the
    /// low bytes of a difference depend only on the low bytes of the sums.
    pub fn low_sum_minus(&self, other: &LowSum) -> LowSum {
        let mut out = [0u8; SUM_BYTES];
        let mut borrow = 0u64;
        for i in 0..SUM_BYTES / 8 {
            let o = u64::from_le_bytes(other[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let (d1, b1) = self.sum[i].overflowing_sub(o);
            let (d2, b2) = d1.overflowing_sub(borrow);
            out[i * 8..i * 8 + 8].copy_from_slice(&d2.to_le_bytes());
            borrow = u64::from(b1) + u64::from(b2);
        }
        out
    }

    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = blake3::Hasher::new();
        for limb in self.sum {
            hasher.update(&limb.to_le_bytes());
        }
        hasher.update(&self.count.to_le_bytes());
        let mut out = [0u8; FINGERPRINT_BYTES];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..FINGERPRINT_BYTES]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_and_parts_add_up() {
        let ids: Vec<[u8; 32]> = (0u8..50).map(|i| *blake3::hash(&[i]).as_bytes()).collect();
        let mut forward = Accumulator::default();
        ids.iter().for_each(|id| forward.add_id(id));
        let mut backward = Accumulator::default();
        ids.iter().rev().for_each(|id| backward.add_id(id));
        assert_eq!(forward.fingerprint(), backward.fingerprint());
        let (mut left, mut right) = (Accumulator::default(), Accumulator::default());
        ids[..20].iter().for_each(|id| left.add_id(id));
        ids[20..].iter().for_each(|id| right.add_id(id));
        left.add(&right);
        assert_eq!(left, forward);
        let mut fewer = Accumulator::default();
        ids[1..].iter().for_each(|id| fewer.add_id(id));
        assert_ne!(fewer.fingerprint(), forward.fingerprint());
    }

    #[test]
    fn one_extra_item_is_the_difference_of_sums() {
        let ids: Vec<[u8; 32]> = (0u8..30).map(|i| *blake3::hash(&[i]).as_bytes()).collect();
        let (mut small, mut large) = (Accumulator::default(), Accumulator::default());
        ids[..29].iter().for_each(|id| small.add_id(id));
        ids.iter().for_each(|id| large.add_id(id));
        assert_eq!(
            large.low_sum_minus(&small.low_sum())[..],
            ids[29][..SUM_BYTES]
        );
    }

    #[test]
    fn carries_propagate() {
        let mut acc = Accumulator::default();
        acc.add_id(&[0xff; 32]);
        acc.add_id(&{
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        });
        // 2^256 - 1 + 1 wraps to zero, with two items counted.
        assert_eq!(acc.sum, [0; 4]);
        assert_eq!(acc.count(), 2);
    }
}
