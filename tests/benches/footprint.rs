//! A school node's footprint at scale (issue 14): the store's disk bytes against the entries'
//! own bytes, start-up time, and idle resident memory, with 100,000 posts of about 1 KB.
//! Beside each figure, an empty node's, measured in the same run.
//!
//! Run: `cargo bench -p staffroom-tests --bench footprint [-- ENTRIES]` (release).
//!
//! The entries are signed here and written straight into a store, as a node that had received
//! them would hold them. Each node is then measured in a child process (this binary again),
//! so the entries generated here count in nobody's memory: its start-up is the time
//! `staffroom_node::start` takes, and its idle memory is its resident set once its search
//! index has caught up and it has sat idle for a few seconds. Two starts are measured: the
//! first builds the search index from the store; the second opens a clean one.

use std::path::Path;
use std::time::{Duration, Instant};

use staffroom_protocol::{BlogPost, Body};
use staffroom_tests::{config, fill_store_with, TestNetwork};

/// Set in the child: the data directory of the node it measures.
const CHILD_ENV: &str = "STAFFROOM_FOOTPRINT_NODE";
/// Set by hand: keep the full node's data directory (its path is printed).
const KEEP_ENV: &str = "STAFFROOM_FOOTPRINT_KEEP";
/// How long the child's node sits idle before its memory is read.
const IDLE: Duration = Duration::from_secs(5);
/// The longest the child waits for its search index to catch up with the store.
const INDEX_WAIT: Duration = Duration::from_secs(600);
/// About this many bytes of markdown per post.
const BODY_BYTES: usize = 900;

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    let count: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let net = TestNetwork::open("footprint");

    let empty = tempfile::tempdir().expect("temp dir");
    runtime.block_on(fill_store_with(empty.path(), &net, 0, 1, post_body));
    let empty_first = measure(empty.path());

    // Kept for profiling a start by hand when asked (`STAFFROOM_FOOTPRINT_NODE=DIR`).
    let mut full = tempfile::tempdir().expect("temp dir");
    full.disable_cleanup(std::env::var_os(KEEP_ENV).is_some());
    let filled = Instant::now();
    let entry_bytes = runtime.block_on(fill_store_with(full.path(), &net, count, 1, post_body));
    let fill_s = filled.elapsed().as_secs_f64();
    let store_dir = staffroom_node::config::DataDir::new(full.path()).store();
    let store_before = disk_bytes(&store_dir);
    let first = measure(full.path());
    let second = measure(full.path());
    let store_after = disk_bytes(&store_dir);
    let search_after = disk_bytes(&staffroom_node::search::dir_in(full.path()));
    if std::env::var_os(KEEP_ENV).is_some() {
        println!("kept: {}", full.path().display());
    }

    println!(
        "footprint: {count} posts + {} membership entries, {entry_bytes} bytes of entries \
         ({} bytes each on average), written in {fill_s:.1} s",
        net.entry_count(),
        entry_bytes / (count + net.entry_count()).max(1),
    );
    let ratio = |b: u64| b as f64 / entry_bytes.max(1) as f64;
    println!(
        "disk: store {} MiB = {:.2}x the entries' bytes after writing, {} MiB = {:.2}x after \
         two starts; search index {} MiB = {:.2}x",
        store_before / MIB,
        ratio(store_before),
        store_after / MIB,
        ratio(store_after),
        search_after / MIB,
        ratio(search_after),
    );
    println!("                     start-up   index ready   idle RSS  (anon + files)   peak RSS");
    for (name, m) in [
        ("empty node", &empty_first),
        ("first start", &first),
        ("second start", &second),
    ] {
        println!(
            "{name:<18} {:>9.0} ms {:>10.0} ms {:>7} MiB ({:>4} + {:>3} MiB) {:>7} MiB",
            m.start_ms,
            m.index_ready_ms,
            m.rss_kib / 1024,
            m.anon_kib / 1024,
            m.file_kib / 1024,
            m.peak_kib / 1024
        );
    }
}

const MIB: u64 = 1024 * 1024;

/// What the child reports of one node's start.
struct Measured {
    start_ms: f64,
    index_ready_ms: f64,
    rss_kib: u64,
    peak_kib: u64,
    /// The resident set's heap and stacks, and its pages of mapped files (the search
    /// index's, the binary's).
    anon_kib: u64,
    file_kib: u64,
}

/// Runs this binary as a child on `dir` and reads back its one report line.
fn measure(dir: &Path) -> Measured {
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, dir)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("measured "))
        .expect("a report line");
    let field = |name: &str| -> f64 {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    Measured {
        start_ms: field("start_ms"),
        index_ready_ms: field("index_ready_ms"),
        rss_kib: field("rss_kib") as u64,
        peak_kib: field("peak_kib") as u64,
        anon_kib: field("anon_kib") as u64,
        file_kib: field("file_kib") as u64,
    }
}

/// The child: starts a node on `dir`, waits for its search index, idles, reports.
fn child(dir: &Path) {
    staffroom_tests::init_tracing();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut config = config(dir, &[]);
        config.dht = false;
        let started = Instant::now();
        let node = staffroom_node::start(config).await.expect("node starts");
        let start_ms = started.elapsed().as_secs_f64() * 1e3;
        let api = node.api();
        let query = staffroom_node::api::search::SearchQuery {
            limit: Some(1),
            ..Default::default()
        };
        while api.search(&query).await.expect("search").behind {
            assert!(
                started.elapsed() < INDEX_WAIT,
                "search index never caught up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let index_ready_ms = started.elapsed().as_secs_f64() * 1e3;
        tokio::time::sleep(IDLE).await;
        let status = staffroom_tests::proc_status("self").expect("/proc/self/status");
        let kib = |name: &str| *status.get(name).unwrap_or_else(|| panic!("{name}"));
        let (rss_kib, peak_kib) = (kib("VmRSS:"), kib("VmHWM:"));
        let (anon_kib, file_kib) = (kib("RssAnon:"), kib("RssFile:"));
        println!(
            "measured start_ms={start_ms:.1} index_ready_ms={index_ready_ms:.1} \
             rss_kib={rss_kib} peak_kib={peak_kib} anon_kib={anon_kib} file_kib={file_kib}"
        );
        node.stop().await.expect("node stops");
    });
}

/// Bytes allocated on disk to everything under `dir` (what `du` counts).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(read) = std::fs::read_dir(dir) else {
        return 0;
    };
    read.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Post `n`: a title and about [`BODY_BYTES`] of prose-like markdown drawn from a small
/// vocabulary (so it compresses roughly as writing does, not as repeated text), two tags.
fn post_body(n: u64) -> Body {
    const WORDS: &[&str] = &[
        "pupils",
        "retrieval",
        "practice",
        "lesson",
        "questions",
        "feedback",
        "reading",
        "fractions",
        "vocabulary",
        "homework",
        "class",
        "week",
        "we",
        "tried",
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "with",
        "they",
        "learnt",
        "quiz",
        "starter",
        "modelling",
        "worked",
        "example",
        "misconception",
        "year",
        "seven",
        "group",
        "talk",
        "writing",
        "science",
        "history",
        "evidence",
        "enquiry",
        "assessment",
        "marking",
        "colleagues",
        "department",
        "planning",
        "sequence",
        "knowledge",
        "organiser",
        "spaced",
        "interleaving",
        "scaffold",
        "independent",
        "better",
        "than",
        "expected",
        "next",
        "time",
        "because",
        "most",
        "some",
    ];
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut body_md = format!("# Notes from week {}\n\n", n % 52);
    while body_md.len() < BODY_BYTES {
        let word = WORDS[(next() % WORDS.len() as u64) as usize];
        body_md.push_str(word);
        body_md.push(if next() % 12 == 0 { '.' } else { ' ' });
    }
    Body::BlogPost(BlogPost {
        title: format!("What we tried in lesson {n}"),
        body_md,
        tags: vec![
            WORDS[(n % 7) as usize].to_owned(),
            format!("ks{}", n % 5 + 1),
        ],
    })
}
