//! The node's web pages over real HTTP: a one-time sign-in link, what a signed-out visitor
//! may see (nothing of the school's networks: 404, not 403), a thread, a search narrowed by
//! a facet, a file downloaded byte-identical, hostile markdown rendered inert, JSON-LD that
//! parses, the security headers, and pages under 100 KB. Helpers: `web_site.rs`. (The
//! browser tests drive the same pages in Chromium: `tests/browser/`.)

use std::time::Duration;

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use reqwest::StatusCode;
use staffroom_protocol::fixtures::key;
use staffroom_tests::*;

/// Pages stay under this before files (the issue's budget).
const PAGE_BYTES_MAX: usize = 100 * 1024;

use super::web_site::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_signs_in_once_and_reads_searches_and_downloads_what_visitors_cannot_see() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let Site {
        net,
        name,
        post,
        resource,
        bytes,
    } = site(&node).await;
    let api = node.api();

    // Signed out: the start page, and nothing of the network.
    let mut browser = Browser::new(&node);
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("staffroom web login"), "how to sign in");
    assert!(!home.body.contains(&name), "no network named to a visitor");
    for path in [
        format!("/n/{}", net.id),
        format!("/e/{}", post.id()),
        format!("/e/{}/files/0", resource.id()),
        format!("/a/{}", post.author),
        "/search?q=practice".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path} for a visitor");
    }

    // A one-time link signs in; the cookie is HttpOnly and SameSite=Strict (no TLS here: not Secure).
    let link = api.web_sign_in().await.expect("a sign-in link");
    assert!(link.valid_secs > 0 && link.valid_secs <= 600);
    let set_cookie = browser.sign_in(&link.url).await;
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let token = link.url.rsplit('/').next().unwrap();
    let again = Browser::new(&node)
        .post("/sign-in", &[("token", token)])
        .await;
    assert_eq!(
        again.status,
        StatusCode::FORBIDDEN,
        "a used link is refused"
    );
    assert!(again.body.contains("used already"), "{}", again.body);

    let home = browser.get("/").await;
    assert!(
        home.body.contains(&name),
        "the network, by name: {}",
        home.body
    );
    let stream = browser.get(&format!("/n/{}", net.id)).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(stream.body.contains(POST_TITLE) && stream.body.contains("Fractions pack"));
    assert!(
        !stream.body.contains("We tried it too"),
        "comments are in threads, not the stream"
    );

    // The thread: the reply nested under the comment; the hostile markdown inert.
    let thread = browser.get(&format!("/e/{}", post.id())).await;
    assert_eq!(thread.status, StatusCode::OK);
    let (c, r) = (
        thread.body.find("We tried it too").unwrap(),
        thread.body.find("How did it go?").unwrap(),
    );
    assert!(c < r, "the reply after the comment it answers");
    let nested = &thread.body[c..r];
    assert!(
        nested.contains("<ol class=\"comments\">"),
        "the reply in its own nested list: {nested}"
    );
    for banned in ["<script>alert", "javascript:", "onerror", "<img"] {
        assert!(!thread.body.contains(banned), "{banned} survived");
    }
    assert!(thread.body.contains("click me"), "the link's text is kept");
    let csp = thread.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(thread.headers["x-content-type-options"], "nosniff");
    let data = json_ld(&thread.body);
    assert_eq!(data[0]["@type"], "BlogPosting");
    assert_eq!(data[0]["headline"], POST_TITLE);
    assert!(thread
        .body
        .contains(&format!(r#"property="og:title" content="{POST_TITLE}""#)));

    // A resource: its details, licence link, file; schema.org's LearningResource.
    let page = browser.get(&format!("/e/{}", resource.id())).await;
    assert!(
        page.body
            .contains(r#"rel="license" href="https://spdx.org/licenses/CC-BY-4.0.html""#),
        "{}",
        page.body
    );
    let data = json_ld(&page.body);
    assert_eq!(data[0]["@type"], "LearningResource");
    assert_eq!(data[0]["typicalAgeRange"], "11-14");
    assert_eq!(data[0]["educationalLevel"], "KS3");
    assert_eq!(
        data[0]["learningResourceType"],
        serde_json::json!(["other"])
    );
    let file = browser
        .http
        .get(format!("{}/e/{}/files/0", browser.origin, resource.id()))
        .header("cookie", browser.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()[CONTENT_TYPE], "application/octet-stream");
    assert_eq!(
        file.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"fractions.pdf\"; filename*=UTF-8''fractions.pdf"
    );
    assert!(file.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(
        file.bytes().await.unwrap().as_ref(),
        bytes.as_slice(),
        "byte-identical"
    );

    // Search, then narrowed by the kind facet.
    node.wait_for_search_index(Duration::from_secs(30)).await;
    let all = browser.get("/search?q=").await;
    assert!(all.body.contains(POST_TITLE) && all.body.contains("Fractions pack"));
    assert!(
        all.body.contains("kind=resource"),
        "a facet link narrows by kind: {}",
        all.body
    );
    let narrowed = browser.get("/search?q=&kind=resource").await;
    assert!(narrowed.body.contains("Fractions pack") && !narrowed.body.contains(POST_TITLE));
    assert!(
        narrowed.body.contains("remove"),
        "the facet in force can be removed"
    );
    // Language and resource type (from the files' media types) are facets too.
    for facet in ["language=en-gb", "resource_type=other"] {
        assert!(
            all.body.contains(facet),
            "a {facet} facet link: {}",
            all.body
        );
        let by = browser.get(&format!("/search?q=&{facet}")).await;
        assert!(
            by.body.contains(RESOURCE_TITLE) && !by.body.contains(POST_TITLE),
            "{facet}"
        );
    }

    // The author's page.
    let author = browser.get(&format!("/a/{}", post.author)).await;
    assert_eq!(author.status, StatusCode::OK);
    assert!(author.body.contains(POST_TITLE));

    let pages = [
        ("home", &home),
        ("stream", &stream),
        ("thread", &thread),
        ("resource", &page),
        ("search", &all),
        ("author", &author),
    ];
    for (name, page) in pages {
        // The figure beside the budget, for docs/performance.md.
        println!(
            "page {name:<9} {:>6} bytes (budget {PAGE_BYTES_MAX})",
            page.body.len()
        );
        assert!(
            page.body.len() < PAGE_BYTES_MAX,
            "a page of {} bytes",
            page.body.len()
        );
    }

    // Atom feeds: per network, author, tag and subject; each parses back as Atom.
    let feed = |path: String| {
        let browser = &browser;
        async move {
            let page = browser.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(page.headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/atom+xml"));
            page.body
                .parse::<atom_syndication::Feed>()
                .unwrap_or_else(|e| panic!("{path} is Atom ({e}): {}", page.body))
        }
    };
    let titles = |f: &atom_syndication::Feed| {
        f.entries()
            .iter()
            .map(|e| e.title().value.clone())
            .collect::<Vec<_>>()
    };
    let network_feed = feed(format!("/n/{}/feed.atom", net.id)).await;
    assert_eq!(
        titles(&network_feed),
        [RESOURCE_TITLE, POST_TITLE],
        "newest first, no comments"
    );
    let shared = &network_feed.entries()[0];
    assert!(shared
        .links()
        .iter()
        .any(|l| l.rel() == "license" && l.href() == "https://spdx.org/licenses/CC-BY-4.0.html"));
    assert!(shared
        .links()
        .iter()
        .any(|l| l.rel() == "alternate" && l.href().ends_with(&format!("/e/{}", resource.id()))));
    assert!(
        !network_feed.entries()[1]
            .content()
            .unwrap()
            .value()
            .unwrap()
            .contains("<script"),
        "sanitised in feeds too"
    );
    assert_eq!(
        titles(&feed(format!("/a/{}/feed.atom", post.author)).await),
        [POST_TITLE]
    );
    assert_eq!(
        titles(&feed("/tags/retrieval-practice/feed.atom".into()).await),
        [POST_TITLE]
    );
    assert_eq!(
        titles(&feed("/subjects/mathematics/feed.atom".into()).await),
        [RESOURCE_TITLE]
    );
    assert!(
        stream.body.contains(&format!(
            r#"type="application/atom+xml" title="{name}" href="/n/{}/feed.atom""#,
            net.id
        )),
        "the stream names its feed"
    );
    let visitor = Browser::new(&node)
        .get(&format!("/n/{}/feed.atom", net.id))
        .await;
    assert_eq!(visitor.status, StatusCode::NOT_FOUND);

    // Signing out takes this session's token; then the pages are a visitor's again.
    let token = csrf(&home.body);
    let forged = browser
        .post("/sign-out", &[("csrf", "00000000000000000000000000000000")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let out = browser.post("/sign-out", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = browser.get(&format!("/e/{}", post.id())).await;
    assert_eq!(
        after.status,
        StatusCode::NOT_FOUND,
        "the old cookie signs in no more"
    );
    node.node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_sign_in_link_is_refused() {
    init_tracing();
    let node = TestNode::start_with(&[], |c| c.web.sign_in_link_seconds = 1).await;
    let link = node.api().web_sign_in().await.expect("a sign-in link");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let browser = Browser::new(&node);
    let token = link.url.rsplit('/').next().unwrap();
    let refused = browser.post("/sign-in", &[("token", token)]).await;
    assert_eq!(refused.status, StatusCode::GONE, "{}", refused.body);
    assert!(refused.body.contains("expired"));
    assert!(refused.headers.get(SET_COOKIE).is_none(), "no session");
    node.node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_is_refused() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let link = node.api().web_sign_in().await.expect("a sign-in link");
    let browser = Browser::new(&node);
    let token = link.url.rsplit('/').next().unwrap();
    let response = browser
        .http
        .post(format!("{}/sign-in", browser.origin))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("token", token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The link was not used up by the refused post.
    let mut browser = Browser::new(&node);
    browser.sign_in(&link.url).await;
    node.node.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_pages_newest_first_through_every_entry_once() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let link = node.api().web_sign_in().await.expect("a link");
    let mut browser = Browser::new(&node);
    browser.sign_in(&link.url).await;
    // 45 entries take three pages; 40 exactly two, with no link to an empty third.
    for (count, pages_wanted, name) in [(45, 3, "Paging"), (40, 2, "Paging evenly")] {
        let net = TestNetwork::open(name);
        node.adopt(&net).await;
        let posts = node.post_many(&key(3), net.id, count).await;
        let (pages, seen) = walk_stream(&browser, &net).await;
        assert_eq!(pages, pages_wanted, "{count} entries");
        let mut expected: Vec<String> = posts.iter().map(|id| id.to_string()).collect();
        expected.reverse();
        assert_eq!(seen, expected, "newest first, each once");
    }
    let bad = browser.get("/n/00?before=nonsense").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    let net = TestNetwork::open("Paging");
    let bad = browser.get(&format!("/n/{}?before=nonsense", net.id)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    node.node.stop().await.expect("stops");
}

/// Follows a network's "Older entries" links: the pages read and the entry ids shown.
async fn walk_stream(browser: &Browser, net: &TestNetwork) -> (usize, Vec<String>) {
    let marker = r#"<h2><span class="kind">Blog</span><a href="/e/"#;
    let (mut path, mut seen, mut pages) = (Some(format!("/n/{}", net.id)), Vec::new(), 0);
    while let Some(here) = path.take() {
        pages += 1;
        assert!(pages <= 4, "no more pages than entries need");
        let page = browser.get(&here).await;
        assert_eq!(page.status, StatusCode::OK, "{here}");
        seen.extend(
            page.body
                .match_indices(marker)
                .map(|(at, m)| page.body[at + m.len()..at + m.len() + 64].to_owned()),
        );
        path = page.body.find(r#"rel="next""#).map(|_| {
            let at = page.body.find("before=").expect("a cursor");
            let end = page.body[at..].find('"').expect("the link ends");
            format!("/n/{}?{}", net.id, &page.body[at..at + end])
        });
    }
    (pages, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_session_cookie_is_secure_and_host_bound() {
    init_tracing();
    let public = "https://staffroom.school.example";
    let node = TestNode::start_with(&[], |c| c.web.public_url = Some(public.into())).await;
    let link = node.api().web_sign_in().await.expect("a link");
    assert!(
        link.url.starts_with(&format!("{public}/sign-in/")),
        "{}",
        link.url
    );
    let token = link.url.rsplit('/').next().unwrap();
    let browser = Browser::new(&node);
    // The proxy passes the request on; the browser's Origin is the public one.
    let post = |origin: &'static str| {
        browser
            .http
            .post(format!("{}/sign-in", browser.origin))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("token", token)]))
            .send()
    };
    let refused = post("http://staffroom.school.example").await.unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "the same host in clear is another origin"
    );
    let signed_in = post("https://staffroom.school.example").await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-staffroom_"), "{cookie}");
    for flag in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    node.node.stop().await.expect("stops");
}
