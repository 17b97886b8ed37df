//! The graph both harnesses run on: a ring, so that it is connected, plus a random 3-regular
//! graph drawn from a fixed seed, so that the bare engine and Staffroom get the same edges.

/// A small deterministic generator (splitmix64): the same seed gives the same graph.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Tries at drawing a simple 3-regular graph before the last draw is taken, its self-loops
/// and repeated edges dropped.
const DRAWS_MAX: usize = 1_000;

/// The undirected edges `(later, earlier)` of the ring plus a random 3-regular graph on `n`
/// nodes: the later node of each edge dials the earlier one.
pub fn edges(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = SplitMix(seed);
    let mut edges = std::collections::BTreeSet::new();
    let add = |a: usize, b: usize, edges: &mut std::collections::BTreeSet<_>| {
        if a != b {
            edges.insert((a.max(b), a.min(b)));
        }
    };
    if n > 1 {
        for i in 0..n {
            add(i, (i + 1) % n, &mut edges);
        }
    }
    let mut regular = Vec::new();
    for _ in 0..DRAWS_MAX {
        // The configuration model: three stubs per node, shuffled, paired in order.
        let mut stubs: Vec<usize> = (0..n).flat_map(|i| [i, i, i]).collect();
        for i in (1..stubs.len()).rev() {
            stubs.swap(i, rng.below(i + 1));
        }
        regular = stubs
            .chunks_exact(2)
            .map(|p| (p[0].max(p[1]), p[0].min(p[1])))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        if regular.iter().all(|&(a, b)| a != b && seen.insert((a, b))) {
            break;
        }
    }
    for (a, b) in regular {
        add(a, b, &mut edges);
    }
    edges.into_iter().collect()
}

/// Each node's neighbours in `edges`: between 3 and 5 (the ring's two and the regular
/// graph's three, some shared), checked here since both harnesses rely on it.
pub fn degrees(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut degree = vec![0; n];
    for &(a, b) in edges {
        degree[a] += 1;
        degree[b] += 1;
    }
    if n > 4 {
        assert!(
            degree.iter().all(|d| (3..=5).contains(d)),
            "a ring plus a 3-regular graph: {degree:?}"
        );
    }
    degree
}
