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
        let response = respond(b, &Message::decode(&request).unwrap(), params).unwrap();
        let response = response.encode().unwrap();
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
    assert_eq!(diff.have.len(), only_a.len(), "no id reported twice");
    assert_eq!(diff.need.len(), only_b.len(), "no id reported twice");
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
        let rounds = check_converges(&a, &b, Params { branches, leaf_items_max: leaf, sum_items_max: sum });
        prop_assert!(rounds <= 32, "{} rounds", rounds);
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
