//! The README's quickstart, run as written: its shell blocks are read from README.md and run
//! by bash against the staffroom binary built for the tests. Only what a reader fills in is
//! filled in here — the ids and token earlier commands print, free ports in place of 4040…,
//! a temporary directory in place of /tmp — and each command is retried for a while, as a
//! reader would, because what one school writes reaches the other a moment later.

use std::path::Path;
use std::process::Command;

use staffroom_tests::cli_process::staffroom_bin;

const SECTION: &str = "## Quickstart: two schools on one machine";
/// The quickstart's blocks: school A, school B, then the third terminal.
const BLOCKS: usize = 3;
const PORTS: [&str; 6] = ["4040", "4041", "4042", "4050", "4051", "4052"];

/// The shell blocks of the quickstart section, in order.
fn quickstart_blocks(readme: &str) -> Vec<String> {
    let start = readme.find(SECTION).expect("README has the quickstart");
    let section = &readme[start..];
    let end = section[SECTION.len()..]
        .find("\n## ")
        .map_or(section.len(), |e| e + SECTION.len());
    let mut blocks = Vec::new();
    let mut rest = &section[..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("a closed block");
        blocks.push(body[..close].to_owned());
        rest = &body[close..][3..];
    }
    blocks.truncate(BLOCKS);
    blocks
}

/// Lines with their `\` continuations joined, comments after commands kept (bash ignores them).
fn logical_lines(block: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let trimmed = line.trim_end();
        if let Some(start) = trimmed.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        if current.trim_end().ends_with('|') {
            current.push(' ');
            continue;
        }
        if !current.trim().is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        current.clear();
    }
    lines
}

/// One quickstart line as bash runs it here.
fn rewrite(line: &str, work: &Path, ports: &[u16; 6]) -> Option<String> {
    if line.starts_with("export PATH=") {
        // The script defines `staffroom` itself, as the test binary.
        return None;
    }
    let mut line = line.replace("/tmp/", &format!("{}/", work.display()));
    line = line.replace("~/Downloads", &format!("{}/downloads", work.display()));
    for (from, to) in PORTS.iter().zip(ports) {
        line = line.replace(&format!("tcp/{from}"), &format!("tcp/{to}"));
        line = line.replace(&format!(":{from}"), &format!(":{to}"));
    }
    line = line
        .replace("<A's peer id>", "$(cat school-a/node.id)")
        .replace("<token>", "\"$TOKEN\"")
        .replace("<resource id>", "$RESOURCE")
        .replace("<enquiry id>", "$ENQUIRY")
        .replace("<entry id>", "$POST");
    let line = if line.contains(" node run ") {
        // The node's own data directory (B's line names A's too, for A's peer id).
        let dir = if line.contains("school-a node run") {
            "a"
        } else {
            "b"
        };
        // The binary itself in the background, so the trap's kill reaches it.
        let line = line.replacen("staffroom ", "\"$STAFFROOM_BIN\" ", 1);
        format!("{line} > node-{dir}.log 2>&1 &\nwait_for_node school-{dir}")
    } else if line.contains("network invite") {
        first_line("TOKEN", &format!("retry {}", strip_comment(&line)))
    } else if line.contains("resource add") {
        first_line("RESOURCE", &format!("retry {}", strip_comment(&line)))
    } else if line.contains("enquiry start") {
        first_line("ENQUIRY", &format!("retry {}", strip_comment(&line)))
    } else if line.contains(" post ") {
        first_line("POST", strip_comment(&line))
    } else {
        format!("retry {line}")
    };
    Some(line)
}

/// `NAME=` the first line `command` prints. Not `| head -1`: under `pipefail`, the command
/// killed by the closed pipe would fail the script.
fn first_line(name: &str, command: &str) -> String {
    format!("{name}=$({command})\n{name}=${{{name}%%$'\\n'*}}")
}

fn strip_comment(line: &str) -> &str {
    line.split("  #").next().unwrap_or(line).trim_end()
}

const PRELUDE: &str = r#"set -euo pipefail
staffroom() { "$STAFFROOM_BIN" "$@"; }
# Retries a command for up to 60 s: what one school writes reaches the other a moment later.
retry() {
  for _ in $(seq 120); do
    if out=$("$@" 2>retry.err); then printf '%s\n' "$out"; return 0; fi
    sleep 0.5
  done
  printf 'FAILED: %s\n%s\n' "$*" "$(cat retry.err)" >&2
  return 1
}
wait_for_node() {
  for _ in $(seq 240); do
    [ -s "$1/node.id" ] && staffroom --data-dir "$1" status > /dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "node in $1 never answered" >&2; cat node-*.log >&2; return 1
}
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT
head -c 70000 /dev/urandom > mat.pdf
head -c 30000 /dev/urandom > teacher-notes.docx
mkdir -p downloads
"#;

fn free_ports() -> [u16; 6] {
    let listeners: Vec<_> = (0..6)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("addr").port();
    std::array::from_fn(port)
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let blocks = quickstart_blocks(&readme);
    assert_eq!(blocks.len(), BLOCKS, "the quickstart's three terminals");
    let work = tempfile::tempdir().expect("temp dir");
    let ports = free_ports();
    let mut script = PRELUDE.to_owned();
    let mut commands = 0;
    for block in &blocks {
        for line in logical_lines(block) {
            if let Some(line) = rewrite(&line, work.path(), &ports) {
                script.push_str(&line);
                script.push('\n');
                commands += 1;
            }
        }
    }
    // The downloaded files are the ones shared, byte for byte.
    script.push_str(
        "cmp mat.pdf downloads/mat.pdf\ncmp teacher-notes.docx downloads/teacher-notes.docx\n",
    );
    assert!(
        commands >= 20,
        "{commands} commands: the quickstart was not read right\n{script}"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("STAFFROOM_BIN", staffroom_bin())
        .env_remove("STAFFROOM_DATA_DIR")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the quickstart failed\n--- script ---\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
