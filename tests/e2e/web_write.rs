//! Writing through the web pages' script calls (`/w/…`) over HTTP: the session's CSRF token,
//! a session, and the author's own signature are all required; the author's own is stored.
//! (Chromium drives the same calls with WebCrypto: `browser.rs`.)

use reqwest::StatusCode;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_tests::*;

use super::web_site::{csrf, Browser};

impl Browser {
    /// A script's call: JSON, with the session's CSRF token when given.
    async fn call(
        &self,
        path: &str,
        json: serde_json::Value,
        csrf: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.origin))
            .header("origin", &self.origin)
            .header("content-type", "application/json")
            .body(json.to_string());
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await.expect("answers");
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// What the page's script does with `/w/prepare`'s answer: signs its bytes with `key`
    /// (as WebCrypto does) and submits them.
    async fn sign_and_submit(
        &self,
        prepared: &serde_json::Value,
        key: &staffroom_protocol::SigningKey,
        token: &str,
    ) -> (StatusCode, serde_json::Value) {
        use ed25519_dalek::Signer;
        let message = hex::decode(prepared["message"].as_str().expect("bytes")).expect("hex");
        let signature = hex::encode(key.sign(&message).to_bytes());
        let body = serde_json::json!({"message": prepared["message"], "signature": signature});
        self.call("/w/submit", body, Some(token)).await
    }
}

/// A browser signed in to `node`'s pages as `teacher`, registered there as `name`, and its
/// session's CSRF token.
async fn teacher_signed_in(
    node: &TestNode,
    teacher: &staffroom_protocol::SigningKey,
    name: &str,
) -> (Browser, String) {
    let author = staffroom_protocol::AuthorId(teacher.verifying_key().to_bytes());
    node.api()
        .add_teacher(author, name)
        .await
        .expect("registered");
    let api = node.api().as_teacher(teacher.clone());
    let link = api.web_sign_in().await.expect("a link");
    let mut browser = Browser::new(node);
    browser.sign_in(&link.url).await;
    let token = csrf(&browser.get("/").await.body);
    (browser, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_takes_the_session_token_and_the_authors_own_signature() {
    use ed25519_dalek::Signer;
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Writing");
    node.adopt(&net).await;
    let writer = key(1);
    let author = staffroom_protocol::AuthorId(writer.verifying_key().to_bytes());
    let (browser, token) = teacher_signed_in(&node, &writer, "Ada Writer").await;
    let visitor = Browser::new(&node);
    let draft = serde_json::json!({
        "network": net.id.to_string(),
        "body": {"kind": "blog_post", "title": "Written in a browser", "body_md": "Signed by *me*.", "tags": []},
    });

    let (status, _) = browser.call("/w/prepare", draft.clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let no_token = serde_json::json!({"message": "00", "signature": "00"});
    assert_eq!(
        browser.call("/w/submit", no_token, None).await.0,
        StatusCode::FORBIDDEN
    );
    let upload = browser
        .http
        .post(format!("{}/w/upload?name=x", browser.origin))
        .header("origin", &browser.origin)
        .header("cookie", browser.cookie.clone().unwrap())
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(
        upload.status(),
        StatusCode::FORBIDDEN,
        "an upload without the token"
    );
    let (status, _) = visitor
        .call("/w/prepare", draft.clone(), Some(&token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no session");
    let (status, prepared) = browser.call("/w/prepare", draft, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{prepared}");
    assert_eq!(prepared["author"], author.to_string());
    let message = hex::decode(prepared["message"].as_str().unwrap()).unwrap();
    assert!(message.starts_with(staffroom_protocol::SIGNING_CONTEXT));

    // Another key's signature over the same bytes does not verify as this author's.
    let forged = hex::encode(key(2).sign(&message).to_bytes());
    let (status, refused) = browser
        .call(
            "/w/submit",
            serde_json::json!({"message": prepared["message"], "signature": forged}),
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_signature"))
    );
    // Another author's whole entry is not this teacher's to submit.
    let theirs = signed(&key(2), net.id, now_ms(), vec![], blog_body("Not mine"));
    let mut their_message = staffroom_protocol::SIGNING_CONTEXT.to_vec();
    let encoded = theirs.encode();
    their_message.extend_from_slice(&encoded[..encoded.len() - 64]);
    let (status, refused) = browser
        .call(
            "/w/submit",
            serde_json::json!({"message": hex::encode(&their_message), "signature": hex::encode(theirs.signature)}),
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_yours"))
    );

    // The author's own signature, as WebCrypto makes it: stored, and its page shows it.
    let (status, submitted) = browser.sign_and_submit(&prepared, &writer, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{submitted}");
    let page = browser.get(submitted["url"].as_str().unwrap()).await;
    assert!(page.body.contains("Written in a browser") && page.body.contains("Ada Writer"));
    let id: staffroom_protocol::EntryId = submitted["id"].as_str().unwrap().parse().unwrap();
    let stored = node.api().get(&id).await.expect("stored");
    assert_eq!(stored.stored.entry.author, author);
    // Sources only for one's own resource: a post is none, and nothing is prepared.
    let sources = sources_of(&net, &id);
    let (status, refused) = browser.call("/w/prepare", sources, Some(&token)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_yours"))
    );
    node.node.stop().await.expect("stops");
}

/// A `/w/prepare` request stating that `resource` in `net` is based on one web page.
fn sources_of(net: &TestNetwork, resource: &staffroom_protocol::EntryId) -> serde_json::Value {
    serde_json::json!({
        "network": net.id.to_string(),
        "body": {"kind": "sources", "resource": resource.to_string(), "entries": [],
            "links": ["https://example.org/"]},
    })
}

/// A file to the pages' upload, for `network`: `(status, reply)`.
async fn upload(
    browser: &Browser,
    token: &str,
    network: &staffroom_protocol::NetworkId,
    bytes: &[u8],
) -> (StatusCode, serde_json::Value) {
    let response = browser
        .http
        .post(format!(
            "{}/w/upload?name=plan.pdf&network={network}",
            browser.origin
        ))
        .header("origin", &browser.origin)
        .header("cookie", browser.cookie.clone().unwrap())
        .header("x-csrf-token", token)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("answers");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// `count` posts by `author` sealed on `node` and stored there, dated after everything else.
async fn seal_posts(
    node: &TestNode,
    author: &staffroom_protocol::SigningKey,
    network: staffroom_protocol::NetworkId,
    count: u64,
) {
    let (api, teacher) = (node.api(), node.api().as_teacher(author.clone()));
    let start = now_ms();
    for n in 0..count {
        let at = start + n;
        let body = blog_body(&format!("Reading log {n}"));
        let sealed = teacher.seal(&network, at, body).await.expect("sealed");
        let entry = staffroom_protocol::Draft {
            network,
            created_at_ms: at,
            refs: vec![],
            body: staffroom_protocol::Body::Sealed(sealed),
        }
        .sign(author);
        api.submit(entry.encode()).await.expect("stored");
    }
}

/// In a private network the school's node seals what the teacher writes before they sign it,
/// as it does for the CLI: the file is sealed as it uploads, the entry is kind 10, the pages
/// open it for the author, and the other member's node opens it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_written_in_a_private_network_is_sealed_before_it_is_signed() {
    use super::private::{author, node_key, operate, private_network};
    use staffroom_protocol::membership::{Action, Policy};
    init_tracing();
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[a.addr()]).await;
    let (founder, member) = (key(1), b.node.admin_key().clone());
    let mut net = private_network(&founder, Policy::Private, 9);
    operate(
        &mut net,
        &founder,
        Action::Add {
            member: author(&member),
        },
    );
    let (node_a, node_b) = (node_key(&a).await, node_key(&b).await);
    operate(&mut net, &founder, Action::BindNode { node: node_a });
    operate(&mut net, &member, Action::BindNode { node: node_b });
    a.adopt(&net).await;
    b.adopt(&net).await;
    let (browser, token) = teacher_signed_in(&a, &founder, "Ada Founder").await;

    // The file is sealed as it arrives, once A's node holds the network's content key.
    let plain: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let start = std::time::Instant::now();
    let sealed_file = loop {
        let (status, reply) = upload(&browser, &token, &net.id, &plain).await;
        if status == StatusCode::CREATED {
            break reply;
        }
        assert_eq!(reply["code"], "no_content_key", "{status} {reply}");
        assert!(start.elapsed() < DEADLINE, "a content key in time");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(sealed_file["size_bytes"].as_u64().unwrap() > plain.len() as u64);
    let resource = |root: &serde_json::Value, size: &serde_json::Value| {
        serde_json::json!({
            "network": net.id.to_string(),
            "body": {"kind": "resource", "title": "Phonics plan, private", "description_md": "",
                "subjects": [], "age_min_years": 5, "age_max_years": 6, "key_stage": "KS1",
                "licence": "CC-BY-4.0", "language": "en-GB",
                "files": [{"name": "plan.pdf", "media_type": "application/pdf",
                    "size_bytes": size, "root": root}]},
        })
    };
    // A file uploaded in the clear is never listed by a sealed resource.
    let clear = browser
        .http
        .post(format!("{}/w/upload?name=plan.pdf", browser.origin))
        .header("origin", &browser.origin)
        .header("cookie", browser.cookie.clone().unwrap())
        .header("x-csrf-token", &token)
        .body(plain.clone())
        .send()
        .await
        .unwrap();
    let clear: serde_json::Value = clear.json().await.unwrap();
    let (status, refused) = browser
        .call(
            "/w/prepare",
            resource(&clear["root"], &clear["size_bytes"]),
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_sealable"))
    );

    let draft = resource(&sealed_file["root"], &sealed_file["size_bytes"]);
    let (status, prepared) = browser.call("/w/prepare", draft, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{prepared}");
    assert_eq!(prepared["sealed"], true);
    let message = hex::decode(prepared["message"].as_str().unwrap()).unwrap();
    let title = b"Phonics plan, private";
    assert!(
        !message.windows(title.len()).any(|w| w == title),
        "sealed, not in the clear"
    );
    let (status, submitted) = browser.sign_and_submit(&prepared, &founder, &token).await;
    assert_eq!(status, StatusCode::CREATED, "{submitted}");
    let id: staffroom_protocol::EntryId = submitted["id"].as_str().unwrap().parse().unwrap();
    let stored = a.api().get(&id).await.expect("stored");
    assert_eq!(
        stored.stored.entry.kind(),
        staffroom_protocol::EntryKind::Sealed
    );

    // The author's pages open it, and the file downloads as it was written.
    let page = browser.get(&format!("/e/{id}")).await;
    assert!(page.body.contains("Phonics plan, private"), "{}", page.body);
    let download = browser
        .http
        .get(format!("{}/e/{id}/files/0", browser.origin))
        .header("cookie", browser.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), plain.as_slice());
    // Its sources would travel in the clear: refused before anything is signed.
    let sources = sources_of(&net, &id);
    let (status, refused) = browser.call("/w/prepare", sources, Some(&token)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_writable"))
    );
    // Under the Resources tab even behind more than a listing's 1,000 newer sealed posts
    // (every private entry is kind 10: the tab judges what each opens to).
    seal_posts(&a, &founder, net.id, 1_005).await;
    let (mut path, mut found) = (Some(format!("/n/{}?kind=resources", net.id)), false);
    for _ in 0..5 {
        let Some(here) = path.take() else { break };
        let page = browser.get(&here).await;
        if page.body.contains("Phonics plan, private") {
            found = true;
            break;
        }
        path = page.body.find("before=").map(|at| {
            let end = page.body[at..].find('"').expect("the link ends");
            format!("/n/{}?kind=resources&{}", net.id, &page.body[at..at + end])
        });
    }
    assert!(found, "the resource is reached page by page");
    // The other member's node opens it too.
    let b_api = b.api();
    eventually("B's node opens the resource", || {
        let api = b_api.clone();
        async move {
            matches!(
                api.get(&id).await.ok().and_then(|v| v.stored.opened),
                Some(staffroom_protocol::Body::Resource(r)) if r.title == "Phonics plan, private"
            )
        }
    })
    .await;
    a.node.stop().await.expect("stops");
    b.node.stop().await.expect("stops");
}
