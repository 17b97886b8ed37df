//! Reconciliation converges to exactly the union of both sets, on both sides.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::message::prefix;
use super::*;

fn item(n: u64) -> Item {
    // Times repeat (many entries share a millisecond) so bounds need id prefixes too.
    (n / 3, *blake3::hash(&n.to_le_bytes()).as_bytes())
}

/// Runs a whole reconciliation through the encoded messages, as two nodes would.
/// Returns what each side must fetch from the other and the rounds taken.
fn reconcile(a: &SyncIndex, b: &SyncIndex, params: Params) -> (Diff, usize, usize) {
    let (mut initiator, first) = Initiator::start(a, params);
    let mut message = first;
    let mut diff = Diff::default();
    let (mut rounds, mut bytes) = (0, 0);
    loop {
        rounds += 1;
        let request = message.encode().unwrap();
        assert!(request.len() <= MESSAGE_BYTES_MAX);
        let response = respond(b, &Message::decode(&request).unwrap(), params).unwrap();
        let response = response.encode().unwrap();
        assert!(response.len() <= MESSAGE_BYTES_MAX);
        bytes += request.len() + response.len();
        let (learnt, next) = initiator
            .handle(a, &Message::decode(&response).unwrap())
            .unwrap();
        diff.have.extend(learnt.have);
        diff.need.extend(learnt.need);
        match next {
            Some(m) => message = m,
            None => return (diff, rounds, bytes),
        }
    }
}

/// Runs a reconciliation and checks both sides learn exactly the difference. Once answers are
/// deferred, an id may be reported again (the deferring fingerprint also covers ranges the
/// other side had settled), so with small budgets only the sets are compared.
fn check_converges(a_items: &BTreeSet<u64>, b_items: &BTreeSet<u64>, params: Params) -> usize {
    let (mut a, mut b) = (SyncIndex::new(), SyncIndex::new());
    a_items.iter().for_each(|&n| {
        a.insert(item(n));
    });
    b_items.iter().for_each(|&n| {
        b.insert(item(n));
    });
    let (diff, rounds, _) = reconcile(&a, &b, params);
    let only_a: BTreeSet<[u8; 32]> = a_items.difference(b_items).map(|&n| item(n).1).collect();
    let only_b: BTreeSet<[u8; 8]> = b_items
        .difference(a_items)
        .map(|&n| prefix(&item(n).1))
        .collect();
    assert_eq!(
        diff.have.iter().copied().collect::<BTreeSet<_>>(),
        only_a,
        "A sends what B lacks"
    );
    assert_eq!(
        diff.need.iter().copied().collect::<BTreeSet<_>>(),
        only_b,
        "A fetches what it lacks"
    );
    if params.output_bytes_budget == Params::default().output_bytes_budget {
        assert_eq!(diff.have.len(), only_a.len(), "no id reported twice");
        assert_eq!(diff.need.len(), only_b.len(), "no id reported twice");
    }
    // Applying the difference gives both sides exactly the union.
    let by_id: std::collections::HashMap<[u8; 32], Item> = a_items
        .union(b_items)
        .map(|&n| (item(n).1, item(n)))
        .collect();
    let by_prefix: std::collections::HashMap<[u8; 8], Item> =
        by_id.values().map(|it| (prefix(&it.1), *it)).collect();
    diff.need.iter().for_each(|p| {
        a.insert(by_prefix[p]);
    });
    diff.have.iter().for_each(|id| {
        b.insert(by_id[id]);
    });
    let union = a_items.union(b_items).count();
    assert_eq!((a.len(), b.len()), (union, union));
    assert_eq!(a.fingerprint(0, a.len()), b.fingerprint(0, b.len()));
    rounds
}

#[test]
fn identical_sets_finish_in_one_round_with_few_bytes() {
    let mut a = SyncIndex::new();
    (0..10_000).for_each(|n| {
        a.insert(item(n));
    });
    let (diff, rounds, bytes) = reconcile(&a, &a.clone(), Params::default());
    assert_eq!(diff, Diff::default());
    assert_eq!(rounds, 1);
    assert!(bytes < 40, "{bytes} bytes");
}

#[test]
fn empty_and_one_sided_sets() {
    let none = BTreeSet::new();
    let some: BTreeSet<u64> = (0..1000).collect();
    check_converges(&none, &none, Params::default());
    check_converges(&some, &none, Params::default());
    check_converges(&none, &some, Params::default());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Two random sets of 0–5,000 items with random overlap converge to their union on both
    /// sides within a bounded number of rounds.
    #[test]
    fn random_sets_converge_to_their_union(
        shared in 0u64..5000,
        only_a in 0u64..800,
        only_b in 0u64..800,
        seed in any::<u64>(),
        branches in 2usize..20,
        leaf in 1usize..64,
        sum in 0usize..600,
    ) {
        let total = shared + only_a + only_b;
        let pick = |n: u64| seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let shared_items: BTreeSet<u64> = (0..shared).map(pick).collect();
        let a: BTreeSet<u64> = shared_items.iter().copied().chain((shared..shared + only_a).map(pick)).collect();
        let b: BTreeSet<u64> = shared_items.iter().copied().chain((shared + only_a..total).map(pick)).collect();
        prop_assume!(a.len() <= 5000 && b.len() <= 5000);
        let params = Params { branches, leaf_items_max: leaf, sum_items_max: sum, ..Params::default() };
        let rounds = check_converges(&a, &b, params);
        prop_assert!(rounds <= 32, "{} rounds", rounds);
    }

    /// With budgets of a few hundred bytes nearly every list is cut, and cuts fall between
    /// items that share a millisecond (bounds with id prefixes): still the exact union.
    #[test]
    fn tiny_budgets_cut_lists_and_still_converge(
        shared in 0u64..600,
        only_a in 0u64..400,
        only_b in 0u64..400,
        seed in any::<u64>(),
        budget in 64usize..1500,
    ) {
        let pick = |n: u64| seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 100_000;
        let shared_items: BTreeSet<u64> = (0..shared).map(pick).collect();
        let a: BTreeSet<u64> = shared_items.iter().copied().chain((shared..shared + only_a).map(pick)).collect();
        let b: BTreeSet<u64> = shared_items.iter().copied().chain((shared + only_a..shared + only_a + only_b).map(pick)).collect();
        let params = Params { output_bytes_budget: budget, ..Params::default() };
        check_converges(&a, &b, params);
    }
}

#[test]
fn huge_differences_stay_within_message_limits() {
    // 30,000 items on each side only, interleaved with 30,000 shared: tens of thousands of
    // small differing ranges, and every message must still fit its bound.
    let a: BTreeSet<u64> = (0..120_000).filter(|n| n % 4 == 0 || n % 4 == 1).collect();
    let b: BTreeSet<u64> = (0..120_000).filter(|n| n % 4 == 0 || n % 4 == 2).collect();
    let rounds = check_converges(&a, &b, Params::default());
    assert!(rounds <= 32, "{rounds} rounds");
}

#[test]
fn answers_to_many_list_requests_stay_within_the_message_limit() {
    let mut index = SyncIndex::new();
    (0..100_000).for_each(|n| {
        index.insert(item(n));
    });
    let (mut initiator, _) = Initiator::start(&index, Params::default());
    // A responder asking for the ids of 50,000 ranges of 2 items each (its budget allows it).
    let mut response = Message::default();
    for pos in (2..100_000).step_by(2) {
        let bound = Bound::between(index.item_at(pos - 1).unwrap(), index.item_at(pos).unwrap());
        response.push(bound, Mode::ListRequest);
    }
    response.push(Bound::Infinity, Mode::ListRequest);
    let (_, next) = initiator.handle(&index, &response).unwrap();
    let next = next.expect("ranges remain to settle");
    let encoded = next.encode().expect("the answer fits one message");
    assert!(encoded.len() <= MESSAGE_BYTES_MAX);
}

/// `count` items at distinct times from `seed`, as a fresh index.
fn big_index(count: u64, seed: u64) -> SyncIndex {
    let mut index = SyncIndex::new();
    for n in 0..count {
        let id = *blake3::hash(&(seed, n).0.wrapping_add(n).to_le_bytes()).as_bytes();
        index.insert((1_700_000_000_000 + n, id));
    }
    index
}

/// Runs a reconciliation in which the initiator stores what it learns after every round (as a
/// node fetches while it reconciles); returns rounds, bytes both ways and the largest message.
fn catch_up(fresh: &mut SyncIndex, full: &SyncIndex) -> (usize, usize, usize) {
    let by_prefix: std::collections::HashMap<[u8; 8], Item> = full
        .items(0, full.len())
        .map(|it| (prefix(&it.1), *it))
        .collect();
    let (mut initiator, mut message) = Initiator::start(fresh, Params::default());
    let (mut rounds, mut bytes, mut largest) = (0, 0, 0);
    loop {
        rounds += 1;
        let request = message.encode().unwrap();
        let response = respond(full, &Message::decode(&request).unwrap(), Params::default())
            .unwrap()
            .encode()
            .unwrap();
        bytes += request.len() + response.len();
        largest = largest.max(request.len()).max(response.len());
        let (diff, next) = initiator
            .handle(fresh, &Message::decode(&response).unwrap())
            .unwrap();
        assert!(diff.have.is_empty(), "a fresh node has nothing to give");
        for p in diff.need {
            assert!(fresh.insert(by_prefix[&p]), "no id is learnt twice");
        }
        match next {
            Some(m) => message = m,
            None => return (rounds, bytes, largest),
        }
    }
}

#[test]
fn a_fresh_node_catches_up_from_a_million_items() {
    let full = big_index(1_000_000, 1);
    let mut fresh = SyncIndex::new();
    let started = std::time::Instant::now();
    let (rounds, bytes, largest) = catch_up(&mut fresh, &full);
    assert_eq!(fresh.len(), full.len());
    assert_eq!(
        fresh.fingerprint(0, fresh.len()),
        full.fingerprint(0, full.len())
    );
    assert!(largest <= MESSAGE_BYTES_MAX, "{largest}");
    // Eight bytes an id, plus little: the ids must not be sent more than once.
    assert!(bytes < 1_000_000 * 9, "{bytes} bytes");
    assert!(rounds <= 40, "{rounds} rounds");
    eprintln!(
        "fresh node from 1,000,000 items: {rounds} rounds, {bytes} bytes, largest message \
         {largest} bytes, {:?}",
        started.elapsed()
    );
}

#[test]
fn a_fresh_node_learns_every_id_even_without_storing_between_rounds() {
    // 70,000 ids no longer fit one message (the failure that blocked newcomers).
    let full = big_index(70_000, 2);
    let (diff, rounds, bytes) = reconcile(&SyncIndex::new(), &full, Params::default());
    assert_eq!(diff.need.len(), 70_000);
    let unique: BTreeSet<[u8; 8]> = diff.need.iter().copied().collect();
    assert_eq!(unique.len(), 70_000);
    assert!(
        rounds >= 2 && bytes < 70_000 * 9,
        "{rounds} rounds, {bytes} bytes"
    );
}

#[test]
fn a_full_node_pushes_a_million_items_to_an_empty_one_within_limits() {
    let full = big_index(1_000_000, 3);
    let (diff, rounds, _) = reconcile(&full, &SyncIndex::new(), Params::default());
    assert_eq!(diff.have.len(), 1_000_000);
    assert!(diff.need.is_empty());
    assert!(rounds <= 64, "{rounds} rounds");
}

#[test]
fn a_peer_chosen_sum_count_cannot_overflow() {
    let index = big_index(100, 4);
    for count in [u64::MAX, u64::MAX - 1, 0] {
        let mut m = Message::default();
        m.push(
            Bound::Infinity,
            Mode::Sum {
                count,
                sum: [0xff; SUM_BYTES],
            },
        );
        let reply = respond(&index, &m, Params::default()).unwrap();
        assert!(reply.encode().is_ok());
        let (mut initiator, _) = Initiator::start(&index, Params::default());
        let _ = initiator.handle(&index, &m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes never panic a decoder, and whatever decodes never panics the responder
    /// or the initiator, whose answers always encode within the limit.
    #[test]
    fn arbitrary_bytes_never_panic_sync(bytes in prop::collection::vec(any::<u8>(), 0..2048), seed in any::<u8>()) {
        let _ = SyncRequest::decode(&bytes);
        let _ = SyncResponse::decode(&bytes);
        let mut versioned = bytes.clone();
        if let Some(first) = versioned.first_mut() {
            *first = 2;
        }
        let index = big_index(u64::from(seed) * 8, u64::from(seed));
        for candidate in [&bytes, &versioned] {
            if let Ok(message) = Message::decode(candidate) {
                if let Ok(reply) = respond(&index, &message, Params::default()) {
                    prop_assert!(reply.encode().is_ok());
                }
                let (mut initiator, _) = Initiator::start(&index, Params::default());
                if let Ok((_, Some(next))) = initiator.handle(&index, &message) {
                    prop_assert!(next.encode().is_ok());
                }
            }
        }
    }

    /// Structured messages (every mode, random bounds and counts) never panic either side.
    #[test]
    fn arbitrary_messages_never_panic_sync(ranges in prop::collection::vec((any::<u64>(), 0u8..7, any::<u64>(), 0usize..40), 0..40)) {
        let index = big_index(500, 9);
        let mut times: Vec<u64> = ranges.iter().map(|r| r.0 % 2_000_000_000_000).collect();
        times.sort();
        times.dedup();
        let mut m = Message::default();
        for (time, (_, mode, n, len)) in times.iter().zip(&ranges) {
            let prefixes: Vec<[u8; 8]> = (0..*len as u64).map(|i| (n ^ i).to_le_bytes()).collect();
            let mode = match mode {
                0 => Mode::Skip,
                1 => Mode::Fingerprint(n.to_le_bytes()),
                2 => Mode::IdList(prefixes),
                3 => Mode::IdListReply { not_in_list: prefixes, wanted: vec![0xff; *len] },
                4 => Mode::ListRequest,
                5 => Mode::Sum { count: *n, sum: [(*n as u8); SUM_BYTES] },
                _ => Mode::YouLack(prefixes),
            };
            m.push(Bound::At { time: *time, id: [0; 32], prefix_len: 0 }, mode);
        }
        m.push(Bound::Infinity, Mode::Fingerprint([1; 8]));
        if let Ok(reply) = respond(&index, &m, Params::default()) {
            prop_assert!(reply.encode().is_ok());
        }
        let (mut initiator, _) = Initiator::start(&index, Params::default());
        if let Ok((_, Some(next))) = initiator.handle(&index, &m) {
            prop_assert!(next.encode().is_ok());
        }
    }
}
