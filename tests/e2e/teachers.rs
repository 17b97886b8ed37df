//! Several teachers on one school node, each with their own key and their own CLI
//! configuration; and what the API refuses: unregistered keys, unsigned, replayed and
//! tampered requests, and requests captured by whatever listens on the node's old port.

use std::path::Path;

use staffroom_node::api::auth::Call;
use staffroom_node::api::types::HelloResponse;
use staffroom_tests::cli_process::{staffroom, staffroom_ok, NodeProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cli::{json, wait_for};

fn api_addr(node: &Path) -> String {
    std::fs::read_to_string(node.join("api.addr"))
        .expect("the node wrote its API address")
        .trim()
        .to_owned()
}

/// A teacher's own computer: their key, and the school node pinned with `connect`.
fn teacher_computer(addr: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let init = json(&staffroom_ok(dir.path(), &["--json", "init"], None));
    staffroom_ok(dir.path(), &["connect", addr], None);
    (dir, init["author"].as_str().unwrap().to_owned())
}

fn stderr_of(dir: &Path, args: &[&str]) -> String {
    let out = staffroom(dir, args, None);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_teachers_post_through_one_school_node_with_their_own_keys() {
    let school_dir = tempfile::tempdir().unwrap();
    let school = school_dir.path();
    staffroom_ok(school, &["init"], None);
    let _node = NodeProcess::start(school, &[]);
    wait_for(school, &["status", "--json"], "the school node", |_| true);
    let addr = api_addr(school);
    staffroom_ok(
        school,
        &["network", "create", "Staff room", "--invite-only"],
        None,
    );

    let mut teachers = Vec::new();
    for name in ["Ms Ada", "Mr Bo"] {
        let (dir, author) = teacher_computer(&addr);
        let refused = stderr_of(dir.path(), &["status"]);
        assert!(
            refused.contains("not registered") && refused.contains("add-teacher"),
            "{refused}"
        );
        staffroom_ok(
            school,
            &["school", "add-teacher", &author, "--name", name],
            None,
        );
        let invited = json(&staffroom_ok(
            school,
            &["--json", "network", "invite", "Staff room"],
            None,
        ));
        let token = invited["token"].as_str().unwrap();
        staffroom_ok(dir.path(), &["network", "join", token], None);
        staffroom_ok(
            dir.path(),
            &[
                "post",
                "--title",
                &format!("Notes from {name}"),
                "--text",
                "Hello.",
            ],
            None,
        );
        teachers.push((dir, author));
    }
    let posts = json(&staffroom_ok(school, &["--json", "list"], None));
    let authors: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["author"].as_str().unwrap())
        .collect();
    for (_, author) in &teachers {
        assert!(authors.contains(&author.as_str()), "{posts}");
    }
    assert!(
        !school.join("api.token").exists() && !teachers[0].0.path().join("api.token").exists(),
        "no shared secret anywhere"
    );
    let listed = json(&staffroom_ok(school, &["--json", "school", "list"], None));
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "admin and two teachers"
    );

    // Only the admin manages teachers; a removed teacher is refused from then on.
    let not_admin = stderr_of(teachers[0].0.path(), &["school", "list"]);
    assert!(not_admin.contains("admin"), "{not_admin}");
    staffroom_ok(school, &["school", "remove-teacher", &teachers[1].1], None);
    let removed = stderr_of(teachers[1].0.path(), &["list"]);
    assert!(removed.contains("not registered"), "{removed}");
}

/// What one raw HTTP request to the node answers: status and body. Reads the response by
/// its length (a replayed request may ask to keep the connection open).
async fn raw(addr: &str, request: String) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the node answers")
            .unwrap();
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                return (status, body.to_owned());
            }
        }
        assert!(n > 0, "connection closed mid-answer");
    }
}

fn request(method: &str, path: &str, auth: Option<&str>, body: &str) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_unregistered_replayed_and_tampered_requests_are_refused() {
    let node = staffroom_tests::TestNode::start(&[]).await;
    let addr = node.node.api_addr.to_string();
    let hello: HelloResponse =
        serde_json::from_str(&raw(&addr, request("GET", "/v1/hello", None, "")).await.1).unwrap();
    let admin = staffroom_node::teacher_key::load(&node.dir.path().join("teacher.key")).unwrap();
    let sign = |key: &staffroom_protocol::SigningKey, method, path, body: &str, nonce| {
        let call = Call {
            node: &hello.node_id,
            boot: &hello.boot,
            method,
            target: path,
            body_hash: blake3::hash(body.as_bytes()),
        };
        call.sign(key, staffroom_tests::now_ms(), [nonce; 16])
    };

    let (status, body) = raw(&addr, request("GET", "/v1/status", None, "")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unsigned_request"), "{body}");

    let stranger = staffroom_protocol::fixtures::key(99);
    let header = sign(&stranger, "GET", "/v1/status", "", 1);
    let (status, body) = raw(&addr, request("GET", "/v1/status", Some(&header), "")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("unknown_teacher") && body.contains("add-teacher"),
        "{body}"
    );

    let header = sign(&admin, "GET", "/v1/status", "", 2);
    let once = request("GET", "/v1/status", Some(&header), "");
    assert_eq!(raw(&addr, once.clone()).await.0, 200);
    let (status, body) = raw(&addr, once).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("replayed_request"), "{body}");

    let dial = r#"{"addr":"/ip4/127.0.0.1/tcp/1"}"#;
    let header = sign(&admin, "POST", "/v1/peers", dial, 3);
    let tampered = r#"{"addr":"/ip4/127.0.0.1/tcp/2"}"#;
    let (status, body) = raw(&addr, request("POST", "/v1/peers", Some(&header), tampered)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bad_request_signature"), "{body}");
    let header = sign(&admin, "POST", "/v1/peers", dial, 4);
    let (status, body) = raw(&addr, request("POST", "/v1/sync", Some(&header), dial)).await;
    assert_eq!(status, 401, "signed for another path: {body}");
    node.stop().await;
}

/// Pretends to be the node on its old port: answers `hello` as the node did (its id, a run
/// id, a clock), and keeps the first signed request it is sent.
async fn impostor(listener: tokio::net::TcpListener, node_id: String) -> Option<String> {
    for _ in 0..4 {
        let (mut stream, _) = listener.accept().await.ok()?;
        let mut buf = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("GET /v1/hello") {
            let body = serde_json::json!({
                "node_id": node_id, "boot": "00000000000000000000000000000000",
                "clock_ms": staffroom_tests::now_ms(), "version": "0", "auth": "Staffroom-v1"
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.ok()?;
            continue;
        }
        let answer =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        stream.write_all(answer.as_bytes()).await.ok()?;
        return Some(text);
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_listens_on_the_old_port_learns_nothing_it_can_reuse() {
    let node = staffroom_tests::TestNode::start(&[]).await;
    let old_addr = node.node.api_addr;
    let node_id = node.node.peer_id.to_string();
    let client = node.api();
    let dir = node.stop().await;
    let listener = tokio::net::TcpListener::bind(old_addr).await.unwrap();
    let captured = tokio::spawn(impostor(listener, node_id));
    let _ = client.status().await;
    let captured = captured
        .await
        .unwrap()
        .expect("the client sent a signed request");
    assert!(captured.contains("Staffroom-v1"), "{captured}");
    assert!(
        !captured.contains("Bearer"),
        "no reusable token: {captured}"
    );

    // Replayed to the node once it is back: refused, whatever the port.
    let node = staffroom_tests::TestNode::restart(dir, &[]).await;
    let (status, body) = raw(&node.node.api_addr.to_string(), captured).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("node_restarted"), "{body}");
    node.stop().await;
}

/// Over TLS, clients speak only to the certificate they pinned; the pin a first contact sees
/// is the node's own; a teacher's CLI connects and keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_only_the_pinned_certificate_is_spoken_to() {
    use staffroom_node::api::{ApiClient, Transport};
    let node = staffroom_tests::TestNode::start_with(&[], |c| c.api_tls = true).await;
    let pin = node
        .node
        .api_pin
        .clone()
        .expect("a node serving TLS has a pin");
    let written = std::fs::read_to_string(node.dir.path().join("api.pin")).unwrap();
    assert_eq!(written.trim(), pin);
    node.api()
        .status()
        .await
        .expect("the pinned client is answered");

    let addr = node.node.api_addr;
    let admin = staffroom_node::teacher_key::load(&node.dir.path().join("teacher.key")).unwrap();
    let plain = ApiClient::new(addr, node.node.peer_id.to_string(), admin.clone());
    assert!(plain.status().await.is_err(), "no plain HTTP on a TLS port");
    let wrong = plain.over_tls(format!("blake3:{}", "0".repeat(64)));
    let err = wrong.status().await.expect_err("another certificate");
    assert!(err.to_string().contains("pinned"), "{err}");
    let (_, seen) = ApiClient::hello(&addr.to_string(), &Transport::Tls { pin: None })
        .await
        .unwrap();
    assert_eq!(
        seen.as_deref(),
        Some(pin.as_str()),
        "first contact sees the node's pin"
    );

    // A teacher's CLI: connect takes the pin, and its requests reach the node over TLS.
    let teacher = tempfile::tempdir().unwrap();
    let init = json(&staffroom_ok(teacher.path(), &["--json", "init"], None));
    let connected = json(&staffroom_ok(
        teacher.path(),
        &["--json", "connect", &addr.to_string(), "--pin", &pin],
        None,
    ));
    assert_eq!(connected["pin"].as_str(), Some(pin.as_str()));
    let refused = stderr_of(teacher.path(), &["status"]);
    assert!(
        refused.contains("not registered"),
        "answered over TLS: {refused}"
    );
    let key = init["author"].as_str().unwrap().parse().unwrap();
    node.api().add_teacher(key, "Ms Tls").await.unwrap();
    staffroom_ok(teacher.path(), &["status"], None);
    node.stop().await;
}
