//! Reconciliation messages: a sequence of consecutive ranges covering every possible item,
//! each closed by an upper bound and carrying what the sender says about it.
//!
//! ```text
//! message = version:u8 (=2) range*                     ranges cover [0, ∞) in order
//! range   = bound mode:u8 payload
//! bound   = time:varint prefix_len:u8 prefix:[prefix_len]
//!           time 0 is ∞; otherwise it is 1 + (bound time − previous bound's time)
//!           prefix: leading bytes of an id; the bound is (time, prefix padded with zeros)
//! mode 0  = skip            nothing to do in this range
//! mode 1  = fingerprint     fp:[8]
//! mode 2  = id list         count:varint prefix:[8]*count the initiator's ids in the range,
//!                                                         as their first 8 bytes
//! mode 3  = id list reply   count:varint prefix:[8]*count the responder's ids missing from
//!                           bitmap_len:varint bitmap      the list; bit i set: listed id i
//!                                                         is missing at the responder
//! mode 4  = list request                                  "send me your ids for this range"
//! mode 5  = sum             count:varint sum:[16]         the low 16 bytes of the sum of the
//!                                                         sender's ids (as little-endian
//!                                                         256-bit integers, mod 2^256)
//! mode 6  = you lack        count:varint prefix:[8]*count the range is settled once you
//!                                                         have these ids (responder only)
//! ```
//!
//! Ids travel as 8-byte prefixes: in a range of a few hundred items, two prefixes collide with
//! chance ~2^-47, and making one collide on purpose takes ~2^64 work. Entries are then fetched
//! by prefix, and each delivered entry's hash is checked against the prefixes asked for.
//!
//! A message is at most [`MESSAGE_BYTES_MAX`] bytes; both encoder and decoder check it, and
//! `size::MessageWriter` lets the side building one know its exact size at every step.
//!
//! An id list reply may close *below* the listed range's bound: it then settles only the
//! part below its own bound (the bitmap still covers the whole list), and the rest of the
//! listed range is left to the ranges that follow it.

use super::bytes::{put_varint, Cursor, Malformed};
use super::fingerprint::{Fingerprint, LowSum, FINGERPRINT_BYTES, SUM_BYTES};
use super::size::{bound_len, mode_len, time_after};

/// Bytes of an id in an id list.
pub const ID_PREFIX_BYTES: usize = 8;
pub type IdPrefix = [u8; ID_PREFIX_BYTES];

pub fn prefix(id: &[u8; 32]) -> IdPrefix {
    id[..ID_PREFIX_BYTES]
        .try_into()
        .expect("ids are longer than prefixes")
}
use super::index::Item;

pub const MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// The message format of `/staffroom/sync/2`.
const VERSION: u8 = 2;

/// An exclusive upper bound: items strictly below it are in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bound {
    At {
        time: u64,
        id: [u8; 32],
        prefix_len: u8,
    },
    Infinity,
}

impl Bound {
    pub const ZERO: Bound = Bound::At {
        time: 0,
        id: [0; 32],
        prefix_len: 0,
    };

    /// The item a bound stands for: every item below it is in the range it closes.
    pub fn as_item(&self) -> Item {
        match self {
            Bound::At { time, id, .. } => (*time, *id),
            Bound::Infinity => (u64::MAX, [0xff; 32]),
        }
    }

    /// The shortest bound that is above `below` and not above `above` (`below < above`).
    pub fn between(below: &Item, above: &Item) -> Bound {
        if below.0 != above.0 {
            return Bound::At {
                time: above.0,
                id: [0; 32],
                prefix_len: 0,
            };
        }
        let shared = below
            .1
            .iter()
            .zip(&above.1)
            .take_while(|(a, b)| a == b)
            .count();
        let prefix_len = (shared + 1).min(32);
        let mut id = [0u8; 32];
        id[..prefix_len].copy_from_slice(&above.1[..prefix_len]);
        Bound::At {
            time: above.0,
            id,
            prefix_len: prefix_len as u8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Skip,
    Fingerprint(Fingerprint),
    IdList(Vec<IdPrefix>),
    IdListReply {
        not_in_list: Vec<IdPrefix>,
        wanted: Vec<u8>,
    },
    ListRequest,
    Sum {
        count: u64,
        sum: LowSum,
    },
    YouLack(Vec<IdPrefix>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub upper: Bound,
    pub mode: Mode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub ranges: Vec<Range>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("reconciliation message is {len} bytes, more than the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("reconciliation message is malformed: {0}")]
    Malformed(&'static str),
}

impl Message {
    /// True when every range is skipped: reconciliation is complete.
    pub fn is_done(&self) -> bool {
        self.ranges.iter().all(|r| r.mode == Mode::Skip)
    }

    /// Appends a range, merging consecutive skips.
    pub fn push(&mut self, upper: Bound, mode: Mode) {
        if mode == Mode::Skip {
            if let Some(last) = self.ranges.last_mut() {
                if last.mode == Mode::Skip {
                    last.upper = upper;
                    return;
                }
            }
        }
        self.ranges.push(Range { upper, mode });
    }

    /// The exact size of [`Message::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let mut len = 1;
        let mut prev_time = 0;
        for range in &self.ranges {
            len += bound_len(prev_time, &range.upper) + mode_len(&range.mode);
            prev_time = time_after(prev_time, &range.upper);
        }
        len
    }

    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let len = self.encoded_len();
        if len > MESSAGE_BYTES_MAX {
            return Err(MessageError::TooLarge {
                len,
                max: MESSAGE_BYTES_MAX,
            });
        }
        let mut out = Vec::with_capacity(len);
        out.push(VERSION);
        let mut prev_time = 0u64;
        for range in &self.ranges {
            if let Bound::At {
                time,
                id,
                prefix_len,
            } = range.upper
            {
                let delta = time
                    .checked_sub(prev_time)
                    .ok_or(MessageError::Malformed("bounds out of order"))?;
                put_varint(&mut out, delta.saturating_add(1));
                out.push(prefix_len);
                out.extend_from_slice(&id[..usize::from(prefix_len).min(32)]);
                prev_time = time;
            } else {
                out.push(0);
            }
            match &range.mode {
                Mode::Skip => out.push(0),
                Mode::Fingerprint(fp) => {
                    out.push(1);
                    out.extend_from_slice(fp);
                }
                Mode::IdList(prefixes) => {
                    out.push(2);
                    put_prefixes(&mut out, prefixes);
                }
                Mode::IdListReply {
                    not_in_list,
                    wanted,
                } => {
                    out.push(3);
                    put_prefixes(&mut out, not_in_list);
                    put_varint(&mut out, wanted.len() as u64);
                    out.extend_from_slice(wanted);
                }
                Mode::ListRequest => out.push(4),
                Mode::Sum { count, sum } => {
                    out.push(5);
                    put_varint(&mut out, *count);
                    out.extend_from_slice(sum);
                }
                Mode::YouLack(ids) => {
                    out.push(6);
                    put_prefixes(&mut out, ids);
                }
            }
        }
        debug_assert_eq!(out.len(), len, "encoded_len is exact");
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(MessageError::TooLarge {
                len: bytes.len(),
                max: MESSAGE_BYTES_MAX,
            });
        }
        let mut r = Cursor::new(bytes);
        if r.u8()? != VERSION {
            return Err(MessageError::Malformed("unknown version"));
        }
        let mut ranges = Vec::new();
        let mut prev_time = 0u64;
        let mut prev_bound = Bound::ZERO;
        while !r.is_empty() {
            let upper = match r.varint()? {
                0 => Bound::Infinity,
                delta => {
                    let time = prev_time
                        .checked_add(delta - 1)
                        .ok_or(MessageError::Malformed("time overflows"))?;
                    let prefix_len = r.u8()?;
                    if prefix_len > 32 {
                        return Err(MessageError::Malformed("id prefix longer than an id"));
                    }
                    let mut id = [0u8; 32];
                    id[..usize::from(prefix_len)].copy_from_slice(r.take(usize::from(prefix_len))?);
                    prev_time = time;
                    Bound::At {
                        time,
                        id,
                        prefix_len,
                    }
                }
            };
            if !ranges.is_empty() && upper.as_item() <= prev_bound.as_item() {
                return Err(MessageError::Malformed("bounds not ascending"));
            }
            if matches!(
                ranges.last(),
                Some(Range {
                    upper: Bound::Infinity,
                    ..
                })
            ) {
                return Err(MessageError::Malformed("range after the last bound"));
            }
            prev_bound = upper;
            let mode = match r.u8()? {
                0 => Mode::Skip,
                1 => {
                    let mut fp = [0u8; FINGERPRINT_BYTES];
                    fp.copy_from_slice(r.take(FINGERPRINT_BYTES)?);
                    Mode::Fingerprint(fp)
                }
                2 => Mode::IdList(read_prefixes(&mut r)?),
                3 => {
                    let not_in_list = read_prefixes(&mut r)?;
                    let len = r.varint()? as usize;
                    Mode::IdListReply {
                        not_in_list,
                        wanted: r.take(len)?.to_vec(),
                    }
                }
                4 => Mode::ListRequest,
                5 => {
                    let count = r.varint()?;
                    Mode::Sum {
                        count,
                        sum: r.take(SUM_BYTES)?.try_into().expect("sum bytes"),
                    }
                }
                6 => Mode::YouLack(read_prefixes(&mut r)?),
                _ => return Err(MessageError::Malformed("unknown range mode")),
            };
            ranges.push(Range { upper, mode });
        }
        if !matches!(
            ranges.last(),
            None | Some(Range {
                upper: Bound::Infinity,
                ..
            })
        ) {
            return Err(MessageError::Malformed("ranges do not reach the end"));
        }
        Ok(Message { ranges })
    }
}

fn put_prefixes(out: &mut Vec<u8>, prefixes: &[IdPrefix]) {
    put_varint(out, prefixes.len() as u64);
    prefixes.iter().for_each(|p| out.extend_from_slice(p));
}

fn read_prefixes(r: &mut Cursor<'_>) -> Result<Vec<IdPrefix>, Malformed> {
    let count = r.varint()?;
    r.chunks::<ID_PREFIX_BYTES>(count)
}

impl From<Malformed> for MessageError {
    fn from(m: Malformed) -> Self {
        MessageError::Malformed(m.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let a = (100, [1u8; 32]);
        let mut b = (100, [1u8; 32]);
        b.1[3] = 2;
        let bound = Bound::between(&a, &b);
        assert_eq!(
            bound,
            Bound::At {
                time: 100,
                id: {
                    let mut i = [0u8; 32];
                    i[..3].copy_from_slice(&[1, 1, 1]);
                    i[3] = 2;
                    i
                },
                prefix_len: 4
            }
        );
        assert!(a < bound.as_item() && bound.as_item() <= b);
        let by_time = Bound::between(&(5, [9; 32]), &(7, [0; 32]));
        assert_eq!(by_time.as_item(), (7, [0; 32]));

        let mut m = Message::default();
        m.push(bound, Mode::Fingerprint([7; FINGERPRINT_BYTES]));
        m.push(
            Bound::At {
                time: 300,
                id: [0; 32],
                prefix_len: 0,
            },
            Mode::Skip,
        );
        m.push(
            Bound::At {
                time: 400,
                id: [0; 32],
                prefix_len: 0,
            },
            Mode::IdList(vec![[3; 8], [4; 8]]),
        );
        m.push(
            Bound::At {
                time: 500,
                id: [0; 32],
                prefix_len: 0,
            },
            Mode::ListRequest,
        );
        m.push(
            Bound::Infinity,
            Mode::IdListReply {
                not_in_list: vec![[5; 8]],
                wanted: vec![0b10],
            },
        );
        let bytes = m.encode().unwrap();
        assert_eq!(bytes.len(), m.encoded_len());
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        let mut done = Message::default();
        done.push(Bound::Infinity, Mode::Skip);
        assert!(done.is_done());
        assert_eq!(
            done.encode().unwrap().len(),
            3,
            "an empty round costs three bytes"
        );
    }

    #[test]
    fn hostile_messages_are_refused() {
        for bad in [
            &[][..],
            &[1, 0, 0],
            &[2, 0, 9],
            &[2, 5, 0, 0],
            &[2, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f],
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        // Bounds must ascend.
        let mut m = Message::default();
        m.ranges.push(Range {
            upper: Bound::At {
                time: 9,
                id: [0; 32],
                prefix_len: 0,
            },
            mode: Mode::Skip,
        });
        m.ranges.push(Range {
            upper: Bound::At {
                time: 9,
                id: [0; 32],
                prefix_len: 0,
            },
            mode: Mode::Skip,
        });
        m.ranges.push(Range {
            upper: Bound::Infinity,
            mode: Mode::Skip,
        });
        let bytes = m.encode().unwrap();
        assert!(Message::decode(&bytes).is_err());
        assert!(matches!(
            Message::decode(&vec![2; MESSAGE_BYTES_MAX + 1]),
            Err(MessageError::TooLarge { .. })
        ));
    }
}
