//! The web pages in a real browser (feature `browser`): Debian's Chromium driven by
//! Playwright (`tests/browser/pages.mjs`, `npm ci` in `tests/browser` first). This test starts
//! two connected nodes and the content, hands the script fresh sign-in links — the admin's,
//! and a member teacher's who writes with their own key — and passes if the script does.
//! Screenshots land in `target/browser-screenshots/` for review.

use std::process::Stdio;
use std::time::Duration;

use staffroom_tests::*;

use super::web_site::{site, POST_TITLE, RESOURCE_TITLE};

/// The whole browser run, Chromium's start included.
const BROWSER_DEADLINE: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_reads_searches_and_downloads_in_chromium() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let site = site(&node).await;
    let other = TestNode::start(&[node.addr()]).await;
    other.adopt(&site.net).await;
    node.wait_for_search_index(Duration::from_secs(30)).await;
    let link = node.api().web_sign_in().await.expect("a sign-in link");
    // A member of the network, registered at the school, writes from the browser.
    let writer = staffroom_protocol::fixtures::key(1);
    let author = staffroom_protocol::AuthorId(writer.verifying_key().to_bytes());
    node.api()
        .add_teacher(author, "Ada Writer")
        .await
        .expect("registered");
    let writer_link = node
        .api()
        .as_teacher(writer.clone())
        .web_sign_in()
        .await
        .expect("a link");
    let other_link = other
        .api()
        .web_sign_in()
        .await
        .expect("a link on the second node");
    let private = private_network_of(&node, &writer).await;
    let plain_link = node
        .api()
        .web_sign_in()
        .await
        .expect("a link for reading without scripts");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = node.dir.path().join("expected-file");
    std::fs::write(&file, &site.bytes).expect("write the expected bytes");
    let shots = root.join("../target/browser-screenshots");
    let web = format!("http://{}", node.node.web_addr.expect("web pages enabled"));
    let other_web = format!("http://{}", other.node.web_addr.expect("web pages enabled"));
    let child = tokio::process::Command::new("node")
        .arg("pages.mjs")
        .current_dir(root.join("browser"))
        .env("STAFFROOM_WEB", &web)
        .env("STAFFROOM_LINK", &link.url)
        .env("STAFFROOM_NETWORK", site.net.id.to_string())
        .env("STAFFROOM_POST", site.post.id().to_string())
        .env("STAFFROOM_POST_TITLE", POST_TITLE)
        .env("STAFFROOM_RESOURCE", site.resource.id().to_string())
        .env("STAFFROOM_RESOURCE_TITLE", RESOURCE_TITLE)
        .env("STAFFROOM_FILE", &file)
        .env("STAFFROOM_SCREENSHOTS", &shots)
        .env("STAFFROOM_WRITER_LINK", &writer_link.url)
        .env("STAFFROOM_WRITER_KEY", hex::encode(writer.to_bytes()))
        .env("STAFFROOM_OTHER_WEB", &other_web)
        .env("STAFFROOM_OTHER_LINK", &other_link.url)
        .env("STAFFROOM_PLAIN_LINK", &plain_link.url)
        .env("STAFFROOM_PRIVATE_NETWORK", private.id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (Node.js) runs: install it, then `npm ci` in tests/browser");
    let out = tokio::time::timeout(BROWSER_DEADLINE, child.wait_with_output())
        .await
        .expect("the browser run ends in time")
        .expect("the browser run's output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    for name in ["home", "stream", "thread", "resource", "search", "write"] {
        for width in ["desktop", "phone"] {
            let shot = shots.join(format!("{name}-{width}.png"));
            let bytes = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            assert!(bytes > 1000, "{} was kept", shot.display());
        }
    }
    other.node.stop().await.expect("stops");
    node.node.stop().await.expect("stops");
}

/// A private network `founder` founds with `node` as their school's node, once that node
/// holds its content key (it seals what they write there).
async fn private_network_of(
    node: &TestNode,
    founder: &staffroom_protocol::SigningKey,
) -> TestNetwork {
    use super::private::{node_key, operate, private_network};
    use staffroom_protocol::membership::{Action, Policy};
    let mut net = private_network(founder, Policy::Private, 11);
    let bound = node_key(node).await;
    operate(&mut net, founder, Action::BindNode { node: bound });
    node.adopt(&net).await;
    let api = node.api().as_teacher(founder.clone());
    let body = staffroom_protocol::fixtures::blog_body("probe");
    eventually("the node holds the private network's content key", || {
        let (api, body) = (api.clone(), body.clone());
        async move { api.seal(&net.id, now_ms(), body).await.is_ok() }
    })
    .await;
    net
}
