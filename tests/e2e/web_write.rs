//! Writing through the web pages' script calls (`/w/…`) over HTTP: the session's CSRF token,
//! a session, and the author's own signature are all required; the author's own is stored.
//! (Chromium drives the same calls with WebCrypto: `browser.rs`.)

use reqwest::StatusCode;
use staffroom_protocol::fixtures::{blog_body, key, signed};
use staffroom_tests::*;

use super::web::{csrf, Browser};

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
    node.api()
        .add_teacher(author, "Ada Writer")
        .await
        .expect("registered");
    let link = node
        .api()
        .as_teacher(writer.clone())
        .web_sign_in()
        .await
        .expect("a link");
    let mut browser = Browser::new(&node);
    let visitor = Browser::new(&node);
    browser.sign_in(&link.url).await;
    let token = csrf(&browser.get("/").await.body);
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
    let signature = hex::encode(writer.sign(&message).to_bytes());
    let (status, submitted) = browser
        .call(
            "/w/submit",
            serde_json::json!({"message": prepared["message"], "signature": signature}),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{submitted}");
    let page = browser.get(submitted["url"].as_str().unwrap()).await;
    assert!(page.body.contains("Written in a browser") && page.body.contains("Ada Writer"));
    let id: staffroom_protocol::EntryId = submitted["id"].as_str().unwrap().parse().unwrap();
    let stored = node.api().get(&id).await.expect("stored");
    assert_eq!(stored.stored.entry.author, author);
    node.node.stop().await.expect("stops");
}
