//! Pages stay under the 100 KB however long a thread grows: an entry's notes and
//! comments fill what the page has left after the entry's own text, and the page says when
//! it shows fewer than there are.

use reqwest::StatusCode;
use staffroom_protocol::fixtures::{
    blog_body, comment_body, enquiry_body, in_enquiry, key, note_body, reply_to, signed,
};
use staffroom_protocol::{Entry, Stage};
use staffroom_tests::*;

use super::web_site::Browser;

/// The budget for a page before files.
const PAGE_BYTES_MAX: usize = 100 * 1024;

/// About 12 KB of markdown: a long comment or note, well under the protocol's 48 KiB.
fn long_text(n: usize) -> String {
    format!(
        "Item {n}. {}",
        "Retrieval practice, spaced and low stakes. ".repeat(280)
    )
}

async fn store(node: &TestNode, entries: &[Entry]) {
    for entry in entries {
        node.api().submit(entry.encode()).await.expect("stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_thread_fills_one_page_of_100_kb_and_says_there_is_more() {
    init_tracing();
    let node = TestNode::start(&[]).await;
    let net = TestNetwork::open("Long threads");
    node.adopt(&net).await;
    let (writer, at) = (key(1), now_ms() - 100_000);
    let post = signed(&writer, net.id, at, vec![], blog_body("A busy post"));
    let enquiry = signed(&writer, net.id, at, vec![], enquiry_body("Does it last?"));
    let mut entries = vec![post.clone(), enquiry.clone()];
    for n in 0..20u64 {
        let comment = comment_body(&long_text(n as usize));
        entries.push(signed(
            &writer,
            net.id,
            at + 1 + n,
            vec![reply_to(post.id())],
            comment,
        ));
        let note = note_body(Stage::Evidence, &long_text(n as usize));
        entries.push(signed(
            &writer,
            net.id,
            at + 1 + n,
            vec![in_enquiry(enquiry.id())],
            note,
        ));
    }
    store(&node, &entries).await;
    let link = node.api().web_sign_in().await.expect("a link");
    let mut browser = Browser::new(&node);
    browser.sign_in(&link.url).await;

    for (what, entry) in [("comments", &post), ("notes", &enquiry)] {
        let page = browser.get(&format!("/e/{}", entry.id())).await;
        assert_eq!(page.status, StatusCode::OK);
        println!("page with 20 long {what}: {} bytes", page.body.len());
        assert!(
            page.body.len() < PAGE_BYTES_MAX,
            "{what}: a page of {} bytes",
            page.body.len()
        );
        assert!(
            page.body.contains("Item 0."),
            "{what}: the first ones are shown"
        );
        assert!(
            !page.body.contains("Item 19."),
            "{what}: not all 240 KB of them"
        );
        assert!(
            page.body
                .contains(&format!("There are more {what} than this page shows")),
            "{what}: the page says so"
        );
    }
    node.node.stop().await.expect("stops");
}
