//! Which source to ask for which chunk groups of one file: a state machine, without I/O.
//!
//! Each source has at most one request in flight. A free source takes the first run of
//! missing groups nobody is fetching; when there is none, it takes the second half of the
//! largest run another source is still fetching (work stealing), so a slow source ends up
//! with little and a fast one with much, and one file is split across every source that has
//! it. A source that sends a wrong byte is cut off for good; one that stalls or breaks is
//! given a few more chances; either way what it had not sent goes back to the pool.

use std::collections::BTreeMap;
use std::ops::Range;

use super::groups::Groups;

/// Failures (stalls, broken streams) after which a source is dropped.
pub const SOURCE_FAILURES_MAX: u32 = 3;

/// What a source should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for these groups.
    Fetch(Range<u64>),
    /// Everything missing is being fetched by others: wait for a change and ask again.
    Wait,
    /// The file is complete.
    Done,
    /// This source is not (or no longer) one to ask.
    Stop,
}

/// What a source's worker should do after a verified group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Continue,
    /// The rest of its request is done or was given to another source: stop reading.
    Stop,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A group did not match the root: the source is cut off.
    Corrupt,
    /// The source does not hold the file (any more).
    NotHere,
    /// Stalled, too slow, or the stream broke: worth another try later.
    Transient,
    /// The source said it is busy: not a failure of the source; ask again in a while.
    Busy,
}

#[derive(Debug, Clone, Default)]
struct Source {
    failures: u32,
    gone: bool,
    received_groups: u64,
}

/// The plan of one file's download.
#[derive(Debug, Clone)]
pub struct Planner<P: Ord + Clone> {
    have: Groups,
    /// Per source, the groups of its request not yet received.
    in_flight: BTreeMap<P, Range<u64>>,
    sources: BTreeMap<P, Source>,
    request_groups: u64,
}

impl<P: Ord + Clone> Planner<P> {
    /// A plan for a file of which `have` is already here; requests ask for at most
    /// `request_groups` groups.
    pub fn new(have: Groups, request_groups: u64) -> Planner<P> {
        Planner {
            have,
            in_flight: BTreeMap::new(),
            sources: BTreeMap::new(),
            request_groups: request_groups.max(1),
        }
    }

    pub fn have(&self) -> &Groups {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Adds a source; one cut off or dropped earlier stays out.
    pub fn add_source(&mut self, source: P) {
        self.sources.entry(source).or_default();
    }

    /// Sources still worth asking.
    pub fn usable_sources(&self) -> usize {
        self.sources.values().filter(|s| !s.gone).count()
    }

    /// Groups each source has delivered.
    pub fn received_by(&self, source: &P) -> u64 {
        self.sources.get(source).map_or(0, |s| s.received_groups)
    }

    /// The next request for `source`.
    pub fn next(&mut self, source: &P) -> Next {
        if self.is_complete() {
            return Next::Done;
        }
        if self.sources.get(source).is_none_or(|s| s.gone) {
            return Next::Stop;
        }
        if self.in_flight.contains_key(source) {
            return Next::Wait;
        }
        let range = match self.unclaimed() {
            Some(range) => range,
            None => match self.steal() {
                Some(range) => range,
                None => return Next::Wait,
            },
        };
        self.in_flight.insert(source.clone(), range.clone());
        Next::Fetch(range)
    }

    /// The first run of missing groups that no request covers, at most `request_groups`.
    fn unclaimed(&self) -> Option<Range<u64>> {
        let mut from = 0;
        loop {
            let run = self.have.next_missing(from, self.request_groups)?;
            let claimed = self.in_flight.values().find(|r| r.contains(&run.start));
            match claimed {
                Some(r) => from = r.end,
                None => {
                    let next_claim = self
                        .in_flight
                        .values()
                        .map(|r| r.start)
                        .filter(|s| *s > run.start)
                        .min()
                        .unwrap_or(u64::MAX);
                    return Some(run.start..run.end.min(next_claim));
                }
            }
        }
    }

    /// Takes the second half of the largest request still in flight (at least 2 groups).
    fn steal(&mut self) -> Option<Range<u64>> {
        let (victim, range) = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.end - r.start >= 2)
            .max_by_key(|(_, r)| r.end - r.start)
            .map(|(p, r)| (p.clone(), r.clone()))?;
        let middle = range.start + (range.end - range.start) / 2;
        self.in_flight.insert(victim, range.start..middle);
        Some(middle..range.end)
    }

    /// `source` delivered `group`, verified and written.
    pub fn received(&mut self, source: &P, group: u64) -> Progress {
        self.have.insert(group);
        if let Some(s) = self.sources.get_mut(source) {
            s.received_groups += 1;
            s.failures = 0;
        }
        let Some(range) = self.in_flight.get_mut(source) else {
            return Progress::Stop;
        };
        if range.contains(&group) {
            range.start = group + 1;
        }
        // Skip what arrived from elsewhere meanwhile.
        while range.start < range.end && self.have.contains(range.start) {
            range.start += 1;
        }
        if range.is_empty() || !range.contains(&group) && group >= range.end {
            self.in_flight.remove(source);
            return Progress::Stop;
        }
        Progress::Continue
    }

    /// `source`'s request ended with every group it asked for sent.
    pub fn ended(&mut self, source: &P) {
        self.in_flight.remove(source);
    }

    /// `source`'s request failed; its unsent groups go back to the pool.
    pub fn failed(&mut self, source: &P, failure: Failure) {
        self.in_flight.remove(source);
        let Some(s) = self.sources.get_mut(source) else {
            return;
        };
        match failure {
            Failure::Corrupt | Failure::NotHere => s.gone = true,
            Failure::Transient => {
                s.failures += 1;
                s.gone |= s.failures >= SOURCE_FAILURES_MAX;
            }
            Failure::Busy => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(next: Next) -> Range<u64> {
        match next {
            Next::Fetch(r) => r,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    /// Delivers every group of `range` from `source`, as a worker would.
    fn deliver(p: &mut Planner<u8>, source: u8, range: Range<u64>) {
        for g in range {
            if p.received(&source, g) == Progress::Stop {
                break;
            }
        }
        p.ended(&source);
    }

    #[test]
    fn two_sources_split_the_file() {
        let mut p = Planner::new(Groups::empty(10), 4);
        p.add_source(1);
        p.add_source(2);
        assert_eq!(fetch(p.next(&1)), 0..4);
        assert_eq!(fetch(p.next(&2)), 4..8);
        assert_eq!(p.next(&1), Next::Wait, "one request in flight per source");
        deliver(&mut p, 1, 0..4);
        assert_eq!(fetch(p.next(&1)), 8..10);
        deliver(&mut p, 1, 8..10);
        deliver(&mut p, 2, 4..8);
        assert_eq!(p.next(&1), Next::Done);
        assert_eq!((p.received_by(&1), p.received_by(&2)), (6, 4));
    }

    #[test]
    fn a_free_source_steals_half_of_a_slow_one() {
        let mut p = Planner::new(Groups::empty(8), 8);
        p.add_source(1);
        p.add_source(2);
        assert_eq!(fetch(p.next(&1)), 0..8);
        assert_eq!(p.received(&1, 0), Progress::Continue);
        assert_eq!(
            fetch(p.next(&2)),
            4..8,
            "the second half of what 1 still owes"
        );
        for g in 1..4 {
            p.received(&1, g);
        }
        // Source 1 reached the end of its shrunk request: it stops reading its stream.
        assert!(!p.in_flight.contains_key(&1));
        assert_eq!(p.received(&1, 4), Progress::Stop);
        deliver(&mut p, 2, 4..8);
        assert!(p.is_complete());
    }

    #[test]
    fn a_corrupt_source_is_cut_off_and_its_groups_return() {
        let mut p = Planner::new(Groups::empty(6), 3);
        p.add_source(1);
        p.add_source(2);
        assert_eq!(fetch(p.next(&1)), 0..3);
        p.received(&1, 0);
        p.failed(&1, Failure::Corrupt);
        assert_eq!(p.next(&1), Next::Stop);
        p.add_source(1);
        assert_eq!(p.next(&1), Next::Stop, "cut off for good");
        assert_eq!(fetch(p.next(&2)), 1..4);
        deliver(&mut p, 2, 1..4);
        assert_eq!(fetch(p.next(&2)), 4..6);
        deliver(&mut p, 2, 4..6);
        assert!(p.is_complete());
        assert_eq!(p.usable_sources(), 1);
    }

    #[test]
    fn transient_failures_drop_a_source_after_three() {
        let mut p = Planner::new(Groups::empty(4), 4);
        p.add_source(1);
        for _ in 0..SOURCE_FAILURES_MAX {
            assert_eq!(fetch(p.next(&1)), 0..4);
            p.failed(&1, Failure::Transient);
        }
        assert_eq!(p.next(&1), Next::Stop);
        assert_eq!(p.usable_sources(), 0);
    }

    #[test]
    fn a_busy_source_is_asked_again_without_a_strike() {
        let mut p = Planner::new(Groups::empty(4), 4);
        p.add_source(1);
        for _ in 0..SOURCE_FAILURES_MAX * 3 {
            assert_eq!(fetch(p.next(&1)), 0..4);
            p.failed(&1, Failure::Busy);
        }
        assert_eq!(p.usable_sources(), 1);
    }

    #[test]
    fn resumes_from_what_is_already_here() {
        let mut have = Groups::empty(10);
        have.insert_range(0..3);
        have.insert_range(5..9);
        let mut p = Planner::new(have, 100);
        p.add_source(1);
        p.add_source(2);
        assert_eq!(fetch(p.next(&1)), 3..5);
        assert_eq!(fetch(p.next(&2)), 9..10);
        deliver(&mut p, 1, 3..5);
        deliver(&mut p, 2, 9..10);
        assert_eq!(p.next(&2), Next::Done);
        assert_eq!(
            p.received_by(&1) + p.received_by(&2),
            3,
            "only the missing groups"
        );
    }

    /// Random interleavings of three sources, one of them corrupt: the file always completes,
    /// no group is fetched by a cut-off source after its failure, and nothing is lost.
    #[test]
    fn simulated_downloads_always_complete() {
        for seed in 0..200u64 {
            let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut roll = |n: u64| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 33) % n
            };
            let groups = 1 + roll(40);
            let mut p = Planner::new(Groups::empty(groups), 1 + roll(8));
            let mut active: BTreeMap<u8, Range<u64>> = BTreeMap::new();
            for s in 0..3 {
                p.add_source(s);
            }
            for _ in 0..10_000 {
                if p.is_complete() {
                    break;
                }
                let s = roll(3) as u8;
                match active.remove(&s) {
                    None => {
                        if let Next::Fetch(r) = p.next(&s) {
                            active.insert(s, r);
                        }
                    }
                    Some(_) if s == 0 && roll(4) == 0 => p.failed(&s, Failure::Corrupt),
                    Some(mut r) => {
                        if r.is_empty() {
                            p.ended(&s);
                        } else if p.received(&s, r.start) == Progress::Continue {
                            r.start += 1;
                            active.insert(s, r);
                        }
                    }
                }
            }
            assert!(
                p.is_complete(),
                "seed {seed}: {} of {groups}",
                p.have().count()
            );
        }
    }
}
