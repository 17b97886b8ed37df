//! Help, errors and shell conventions: `staffroom help` (which takes `--help` too),
//! completion scripts for each shell and the manual page (none needs a node or a key), and
//! errors as `{code, error}` JSON under `--json`.

use std::process::Command;

use staffroom_tests::cli_process::{staffroom, staffroom_ok};

#[test]
fn help_completions_and_the_man_page_come_without_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = staffroom_ok(d, &["help", "--help"], None);
    assert!(help.contains("Usage: staffroom help"), "{help}");
    let invite = staffroom_ok(d, &["help", "network", "invite"], None);
    assert!(
        invite.contains("Usage: staffroom network invite"),
        "{invite}"
    );
    let top = staffroom_ok(d, &["help"], None);
    assert!(
        top.contains("completions") && top.contains("network"),
        "{top}"
    );

    // bash: a script bash itself accepts, completing the commands.
    let bash = staffroom_ok(d, &["completions", "bash"], None);
    let script = d.join("staffroom.bash");
    std::fs::write(&script, &bash).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n refused the completion script");
    assert!(bash.contains("complete -F _staffroom") && bash.contains("invite"));
    let zsh = staffroom_ok(d, &["completions", "zsh"], None);
    assert!(
        zsh.starts_with("#compdef staffroom"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    let fish = staffroom_ok(d, &["completions", "fish"], None);
    assert!(fish.contains("complete -c staffroom"));

    let man = staffroom_ok(d, &["man"], None);
    assert!(
        man.contains(".TH staffroom 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(
        man.contains(".SH SUBCOMMANDS") && man.contains("staffroom\\-network"),
        "{man}"
    );
    // Nothing was created in the data directory.
    assert_eq!(
        std::fs::read_dir(d).unwrap().count(),
        1,
        "only the script written here"
    );
}

#[test]
fn under_json_every_error_is_an_object_with_a_stable_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let error = |args: &[&str]| {
        let out = staffroom(d, args, None);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        let value: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"));
        (out.status.code(), value)
    };
    // A data directory that is not there (a typo): said so, not "no teacher key".
    let missing = d.join("no-such-dir");
    let out = staffroom(&missing, &["--json", "status"], None);
    let text = String::from_utf8_lossy(&out.stderr);
    let value: serde_json::Value = serde_json::from_str(text.trim()).expect("one object");
    assert_eq!(value["code"], "no_data_dir", "{value}");
    assert!(
        value["error"].as_str().unwrap().contains(&format!(
            "no Staffroom data directory at {}",
            missing.display()
        )),
        "{value}"
    );
    // No key yet.
    let (status, value) = error(&["--json", "status"]);
    assert_eq!(status, Some(1));
    assert_eq!(value["code"], "teacher_key", "{value}");
    assert!(
        value["error"].as_str().unwrap().contains("staffroom init"),
        "{value}"
    );
    // A key, but no node has ever run with this data directory.
    staffroom_ok(d, &["init"], None);
    let (status, value) = error(&["--json", "status"]);
    assert_eq!(
        (status, &value["code"]),
        (Some(1), &"no_node".into()),
        "{value}"
    );
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("no node has run with data directory"),
        "{value}"
    );
    // A node ran here, and is down now: its address no longer answers.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    std::fs::write(d.join("api.addr"), addr.to_string()).unwrap();
    std::fs::write(
        d.join("node.id"),
        "12D3KooWAJjbRkp8FPF5MKgMU53aUTxWkqvDrs4zc1VMbwRwfsbE",
    )
    .unwrap();
    let (status, value) = error(&["--json", "status"]);
    assert_eq!(
        (status, &value["code"]),
        (Some(1), &"node_not_running".into()),
        "{value}"
    );
    // A usage error, still with clap's exit code.
    let (status, value) = error(&["--json", "no-such-command"]);
    assert_eq!(
        (status, &value["code"]),
        (Some(2), &"usage".into()),
        "{value}"
    );
    // Without --json, the same error is one line for a person.
    let plain = staffroom(d, &["status"], None);
    let text = String::from_utf8_lossy(&plain.stderr);
    assert!(
        text.starts_with(&format!("error: node not running at {addr}")),
        "{text}"
    );
}

/// `node run --json` logs one JSON object a line (for journald or a log shipper), the
/// start with the API's address among its fields.
#[test]
fn under_json_a_node_logs_one_object_a_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    staffroom_ok(dir.path(), &["init"], None);
    let mut child = std::process::Command::new(staffroom_tests::cli_process::staffroom_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--json")
        .args(staffroom_tests::cli_process::NODE_RUN)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut started = None;
    while started.is_none() && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(1)) else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["fields"].is_object(),
            "{event}"
        );
        if event["fields"]["message"] == "node started" {
            started = Some(event);
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let started = started.expect("the node logged its start within 60 s");
    let api = started["fields"]["api_addr"].as_str().expect("api_addr");
    assert!(api.starts_with("127.0.0.1:"), "{started}");
}
