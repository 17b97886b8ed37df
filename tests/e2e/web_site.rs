//! What the web-page tests share: a `Browser` over plain HTTP (the session cookie carried by
//! hand, no redirects followed) and a `Site` — a network with a hostile post, a nested
//! reply and a resource with a file — on a node.

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use staffroom_protocol::fixtures::{blog_body, comment_body, key, reply_to, signed};
use staffroom_protocol::{Body, Entry};
use staffroom_tests::*;

use super::files::{file_bytes, share};

/// A browser, minus the browser: no redirects followed, the session cookie carried by hand.
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) origin: String,
    pub(crate) cookie: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Browser {
    pub(crate) fn new(node: &TestNode) -> Browser {
        let addr = node.node.web_addr.expect("web pages enabled in tests");
        // Plain HTTP only, but reqwest wants a TLS provider chosen (ours is ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            origin: format!("http://{addr}"),
            cookie: None,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.origin));
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        page(request.send().await.expect("page answers")).await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.origin))
            .header("origin", &self.origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form));
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        page(request.send().await.expect("page answers")).await
    }

    /// Signs in with `link`; the `Set-Cookie` it got.
    pub(crate) async fn sign_in(&mut self, link: &str) -> String {
        let path = link
            .strip_prefix(&self.origin)
            .expect("link on this origin");
        let form = self.get(path).await;
        assert_eq!(form.status, StatusCode::OK);
        // Not `no-referrer`, with which Chromium posts the form with `Origin: null`.
        assert_eq!(form.headers["referrer-policy"], "same-origin");
        let token = path.trim_start_matches("/sign-in/");
        assert!(form.body.contains(token), "the form carries the token");
        let signed_in = self.post("/sign-in", &[("token", token)]).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        assert_eq!(signed_in.headers[LOCATION], "/");
        let set = signed_in.headers[SET_COOKIE].to_str().unwrap().to_owned();
        self.cookie = Some(set.split(';').next().unwrap().to_owned());
        set
    }
}

pub(crate) async fn page(response: reqwest::Response) -> Page {
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

pub(crate) fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25")
                    .replace('&', "%26")
                    .replace('=', "%3D")
                    .replace(' ', "+")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The JSON-LD blocks of a page, parsed.
pub(crate) fn json_ld(body: &str) -> Vec<serde_json::Value> {
    body.split(r#"<script type="application/ld+json">"#)
        .skip(1)
        .map(|rest| {
            let json = rest.split("</script>").next().expect("closed");
            serde_json::from_str(json).unwrap_or_else(|e| panic!("JSON-LD parses ({e}): {json}"))
        })
        .collect()
}

/// The session's CSRF token, from the sign-out form every signed-in page has.
pub(crate) fn csrf(body: &str) -> String {
    let at = body
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    body[at..at + 32].to_owned()
}

pub(crate) const HOSTILE: &str =
    "Read this.\n\n<script>alert('owned')</script>\n\n[click me](javascript:alert(1)) \
                       <img src=x onerror=alert(2)> <a href=\"javascript:alert(3)\">x</a>";

/// What the page tests read: a network with a hostile post, a comment on it and a reply, and
/// a resource with a file.
pub(crate) struct Site {
    pub net: TestNetwork,
    /// The network's name on the node.
    pub name: String,
    pub post: Entry,
    pub resource: Entry,
    pub bytes: Vec<u8>,
}

pub(crate) const POST_TITLE: &str = "Spaced practice in Year 9";
pub(crate) const RESOURCE_TITLE: &str = "Fractions pack";

pub(crate) async fn site(node: &TestNode) -> Site {
    let net = TestNetwork::open("Web pages");
    node.adopt(&net).await;
    let api = node.api();
    let t = now_ms() - 60_000;
    let mut hostile = blog_body(POST_TITLE);
    if let Body::BlogPost(p) = &mut hostile {
        p.body_md = HOSTILE.into();
    }
    let post = signed(&key(1), net.id, t, vec![], hostile);
    let comment = signed(
        &key(2),
        net.id,
        t + 1,
        vec![reply_to(post.id())],
        comment_body("We tried it too"),
    );
    let reply = signed(
        &key(1),
        net.id,
        t + 2,
        vec![reply_to(comment.id())],
        comment_body("How did it go?"),
    );
    for e in [&post, &comment, &reply] {
        api.submit(e.encode()).await.expect("accepted");
    }
    let bytes = file_bytes(300_000, 7);
    let resource: Entry = share(&api, net.id, &[("fractions.pdf", &bytes)]).await;
    let networks = api.networks().await.expect("networks");
    let name = networks
        .iter()
        .find(|n| n.id == net.id)
        .expect("followed")
        .name
        .clone();
    assert!(!name.is_empty());
    Site {
        net,
        name,
        post,
        resource,
        bytes,
    }
}
