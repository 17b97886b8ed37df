//! Exact sizes of reconciliation messages: what each bound and range costs once encoded, and
//! [`MessageWriter`], which keeps a message's size exact as it is built so that answers can be
//! budgeted to the byte.

use super::fingerprint::{FINGERPRINT_BYTES, SUM_BYTES};
use super::message::{Bound, Message, Mode, Range, ID_PREFIX_BYTES};

/// The time a following bound's delta is counted from, after `bound`.
pub(super) fn time_after(prev_time: u64, bound: &Bound) -> u64 {
    match bound {
        Bound::At { time, .. } => *time,
        Bound::Infinity => prev_time,
    }
}

/// Encoded bytes of `bound` after a bound at `prev_time`.
pub(super) fn bound_len(prev_time: u64, bound: &Bound) -> usize {
    match bound {
        Bound::At {
            time, prefix_len, ..
        } => {
            let delta = time.saturating_sub(prev_time).saturating_add(1);
            varint_len(delta) + 1 + usize::from(*prefix_len).min(32)
        }
        Bound::Infinity => 1,
    }
}

/// Encoded bytes of a range's mode and payload.
pub(super) fn mode_len(mode: &Mode) -> usize {
    let prefixes = |n: usize| varint_len(n as u64) + n * ID_PREFIX_BYTES;
    1 + match mode {
        Mode::Skip | Mode::ListRequest => 0,
        Mode::Fingerprint(_) => FINGERPRINT_BYTES,
        Mode::IdList(p) | Mode::YouLack(p) => prefixes(p.len()),
        Mode::IdListReply {
            not_in_list,
            wanted,
        } => prefixes(not_in_list.len()) + varint_len(wanted.len() as u64) + wanted.len(),
        Mode::Sum { count, .. } => varint_len(*count) + SUM_BYTES,
    }
}

/// The most bytes one bound can take: a 10-byte time delta, its prefix length and 32 bytes.
pub(crate) const BOUND_BYTES_MAX: usize = 10 + 1 + 32;

/// A message being built that knows its exact encoded size after every push, so that
/// answers can be budgeted precisely and never exceed [`super::message::MESSAGE_BYTES_MAX`].
#[derive(Debug)]
pub(crate) struct MessageWriter {
    message: Message,
    len: usize,
    /// The delta base for the next bound, and the one the last range's bound was encoded with.
    last_time: u64,
    time_before_last: u64,
    /// A range other than a skip has been pushed.
    worked: bool,
}

impl Default for MessageWriter {
    fn default() -> Self {
        MessageWriter {
            message: Message::default(),
            len: 1,
            last_time: 0,
            time_before_last: 0,
            worked: false,
        }
    }
}

impl MessageWriter {
    /// Exact bytes of the message so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True while nothing but skips has been pushed: no range has been worked on yet.
    pub fn only_skips(&self) -> bool {
        !self.worked
    }

    /// Appends a range, merging consecutive skips, and keeps the size exact.
    pub fn push(&mut self, upper: Bound, mode: Mode) {
        if mode == Mode::Skip {
            if let Some(last) = self.message.ranges.last_mut() {
                if last.mode == Mode::Skip {
                    self.len -= bound_len(self.time_before_last, &last.upper);
                    self.len += bound_len(self.time_before_last, &upper);
                    self.last_time = time_after(self.time_before_last, &upper);
                    last.upper = upper;
                    return;
                }
            }
        }
        self.worked |= mode != Mode::Skip;
        self.len += bound_len(self.last_time, &upper) + mode_len(&mode);
        self.time_before_last = self.last_time;
        self.last_time = time_after(self.last_time, &upper);
        self.message.ranges.push(Range { upper, mode });
    }

    pub fn finish(self) -> Message {
        debug_assert_eq!(self.len, self.message.encoded_len());
        self.message
    }
}

fn varint_len(v: u64) -> usize {
    (64 - v.max(1).leading_zeros() as usize).div_ceil(7)
}
