//! Search latency over a node's store: 100,000 entries of about 1 KB (posts and resources
//! with tags, subjects, key stages and licences, words drawn Zipf-like from a 5,000-word
//! vocabulary), stored in batches as fast as the store takes them — a catch-up, which the
//! index takes in once the store is quiet. Then a mix of searches, each as the API runs
//! it (wait for the index to be current, query, read the page's entries from the store).
//!
//! Baseline in the same run: the simplest index-free search, a scan of every stored entry
//! for the words, which is what the node would do without an index.
//!
//! Run: `cargo bench -p staffroom-node --bench search` (release). Optional arg: entry count.

use std::time::{Duration, Instant};

use staffroom_node::search::{SearchIndex, SearchRequest};
use staffroom_node::store::{NetworkRecord, Store};
use staffroom_protocol::fixtures::{key, network, signed};
use staffroom_protocol::{BlogPost, Body, Entry, EntryKind, Resource};

const VOCABULARY: usize = 5_000;
const BODY_WORDS: usize = 140;
const QUERIES: usize = 1_000;
const BATCH: usize = 512;

/// A small deterministic generator (xorshift), so every run indexes the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// An index below `n`, small ones far likelier (about Zipf's law, as words are).
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ra", "su", "ti", "vo", "be", "da", "fu", "gi", "ho", "ju", "pe",
        "qui", "ro", "sa", "te", "ul", "wa", "xe", "yo", "zu",
    ];
    let mut words: Vec<String> = ["fractions", "phonics", "retrieval", "assessment", "reading"]
        .map(String::from)
        .to_vec();
    let mut n = 0usize;
    while words.len() < VOCABULARY {
        let word: String = (0..3)
            .map(|i| SYLLABLES[(n / 24usize.pow(i)) % 24])
            .collect();
        words.push(word);
        n += 1;
    }
    words
}

fn entry(rng: &mut Rng, words: &[String], n: usize, base_ms: u64) -> Entry {
    let mut text = |count: usize| -> String {
        (0..count)
            .map(|_| words[rng.zipf(words.len())].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let title = text(6);
    let body_text = text(BODY_WORDS);
    let tags = vec![format!("topic{}", n % 50), format!("year{}", n % 7)];
    let body = if n.is_multiple_of(4) {
        Body::Resource(Resource {
            title,
            description_md: body_text,
            subjects: vec![format!("subject{}", n % 20)],
            age_min_years: 7,
            age_max_years: 11,
            key_stage: format!("KS{}", n % 5 + 1),
            licence: ["CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "OGL-UK-3.0"][n % 4].into(),
            language: "en-GB".into(),
            files: Vec::new(),
        })
    } else {
        Body::BlogPost(BlogPost {
            title,
            body_md: body_text,
            tags,
        })
    };
    let author = key((n % 50) as u8 + 1);
    signed(&author, network(1), base_ms + n as u64, vec![], body)
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("store");
    runtime
        .block_on(store.join_network(NetworkRecord {
            id: network(1),
            name: "bench".into(),
            joined_at_ms: 0,
        }))
        .expect("join");
    let index = SearchIndex::open(&dir.path().join("search"), store.clone()).expect("index");
    let words = vocabulary();
    let indexed = fill(&runtime, &store, &index, &words, count);
    let bytes = entry_bytes(&store);
    println!(
        "search benchmark: {count} entries, {:.0} bytes on average; stored and indexed (held as a catch-up, then one rebuild) at {indexed:.0} entries/s",
        bytes as f64 / count as f64
    );
    println!(
        "index on disk: {:.1} MB ({:.2}x the entries' bytes)",
        dir_bytes(&dir.path().join("search")) as f64 / 1e6,
        dir_bytes(&dir.path().join("search")) as f64 / bytes as f64
    );
    let queries = queries();
    let timings = measure(&store, &index, &queries);
    report("indexed search, every query", &timings);
    for (name, kind) in [("words", 0), ("filters only", 1), ("words + filters", 2)] {
        let of_kind: Vec<Duration> = timings
            .iter()
            .zip(&queries)
            .filter(|(_, q)| query_kind(q) == kind)
            .map(|(t, _)| *t)
            .collect();
        report(&format!("  {name}"), &of_kind);
    }
    let scans = baseline(&store, &queries[..5]);
    report("baseline: scan every entry (no index)", &scans);
    let p99 = percentile(&timings, 0.99);
    println!(
        "p99 {:.2} ms against the 50 ms target; {:.0}x faster than a scan at p50",
        p99.as_secs_f64() * 1e3,
        percentile(&scans, 0.5).as_secs_f64() / percentile(&timings, 0.5).as_secs_f64()
    );
    index.close();
}

/// Stores `count` entries in batches while the index follows; returns entries/s until the
/// index has caught up.
fn fill(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    index: &SearchIndex,
    words: &[String],
    count: usize,
) -> f64 {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let base_ms = 1_767_225_600_000;
    let entries: Vec<Entry> = (0..count)
        .map(|n| entry(&mut rng, words, n, base_ms))
        .collect();
    let started = Instant::now();
    for chunk in entries.chunks(BATCH) {
        let verified = chunk
            .iter()
            .map(|e| staffroom_protocol::verify_entry(&e.encode(), u64::MAX / 2).expect("valid"))
            .collect();
        runtime.block_on(store.insert(verified)).expect("stored");
    }
    // Caught up: a search waits (a while) for every change so far, and says if it is behind.
    // While the index holds a catch-up (this fill is one) it answers at once: look again
    // every 50 ms rather than spin.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut hits = index
        .search(&SearchRequest::default(), &[])
        .expect("search");
    while hits.behind && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        hits = index
            .search(&SearchRequest::default(), &[])
            .expect("search");
    }
    assert_eq!(hits.total as usize, count, "every entry indexed");
    count as f64 / started.elapsed().as_secs_f64()
}

fn queries() -> Vec<SearchRequest> {
    let mut rng = Rng(42);
    let words = vocabulary();
    (0..QUERIES)
        .map(|i| {
            let word = |rng: &mut Rng| words[rng.zipf(200)].clone();
            let mut q = SearchRequest::default();
            match i % 6 {
                0 => q.q = word(&mut rng),
                1 => q.q = format!("{} {}", word(&mut rng), word(&mut rng)),
                2 => q.q = format!("\"{} {}\"", word(&mut rng), word(&mut rng)),
                3 => q.tag = Some(format!("topic{}", rng.next() % 50)),
                4 => {
                    q.kind = Some(EntryKind::Resource);
                    q.subject = Some(format!("subject{}", rng.next() % 20));
                    q.key_stage = Some(format!("ks{}", rng.next() % 5 + 1));
                }
                _ => {
                    q.q = word(&mut rng);
                    q.licence = Some("cc-by-4.0".into());
                    q.offset = 100;
                }
            }
            q
        })
        .collect()
}

/// 0: words alone; 1: filters alone; 2: both.
fn query_kind(q: &SearchRequest) -> u8 {
    match (
        q.q.is_empty(),
        q.tag.is_some() || q.subject.is_some() || q.licence.is_some(),
    ) {
        (false, false) => 0,
        (true, _) => 1,
        (false, true) => 2,
    }
}

fn measure(store: &Store, index: &SearchIndex, queries: &[SearchRequest]) -> Vec<Duration> {
    queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            let hits = index.search(q, &[]).expect("search");
            for (id, _) in &hits.ids {
                store.get(id).expect("read").expect("stored");
            }
            started.elapsed()
        })
        .collect()
}

/// The index-free way: read every entry and look for the words in its text.
fn baseline(store: &Store, queries: &[SearchRequest]) -> Vec<Duration> {
    let ids: Vec<[u8; 32]> = store.with_sync_index(&network(1), |index| {
        index.items(0, index.len()).map(|(_, id)| *id).collect()
    });
    queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            let words: Vec<String> = q.q.split_whitespace().map(str::to_lowercase).collect();
            let mut found = 0usize;
            for id in &ids {
                let stored = store
                    .get(&staffroom_protocol::EntryId(*id))
                    .expect("read")
                    .expect("stored");
                let text = match &stored.entry.body {
                    Body::BlogPost(p) => format!("{} {}", p.title, p.body_md),
                    Body::Resource(r) => format!("{} {}", r.title, r.description_md),
                    _ => String::new(),
                }
                .to_lowercase();
                if words.iter().all(|w| text.contains(w.as_str())) {
                    found += 1;
                }
            }
            std::hint::black_box(found);
            started.elapsed()
        })
        .collect()
}

fn percentile(timings: &[Duration], p: f64) -> Duration {
    let mut sorted = timings.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, timings: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<40} n={:<5} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        timings.len(),
        ms(percentile(timings, 0.5)),
        ms(percentile(timings, 0.99)),
        ms(timings.iter().copied().max().unwrap_or_default())
    );
}

fn entry_bytes(store: &Store) -> u64 {
    let ids: Vec<[u8; 32]> = store.with_sync_index(&network(1), |index| {
        index.items(0, index.len()).map(|(_, id)| *id).collect()
    });
    ids.iter()
        .filter_map(|id| {
            store
                .get_bytes(&staffroom_protocol::EntryId(*id))
                .ok()
                .flatten()
        })
        .map(|b| b.len() as u64)
        .sum()
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
