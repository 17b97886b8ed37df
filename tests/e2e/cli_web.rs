//! `staffroom web login` and `staffroom network publish` through the real binary: a link for
//! the teacher's own browser; a facilitator's publication opens the network's pages to
//! visitors on every member school's node, a member's is refused.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use staffroom_tests::cli_process::{staffroom, staffroom_ok};

use super::cli::json;
use super::cli_files::two_schools;

/// A visitor's GET on the pages at `origin` (`http://addr`): the status and the body.
fn visit(origin: &str, path: &str) -> (u16, String) {
    let addr = origin.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("the pages listen");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("an answer");
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// The origin of a node's pages, from the link `web login` prints.
fn origin_of(dir: &std::path::Path) -> String {
    let link = json(&staffroom_ok(dir, &["--json", "web", "login"], None));
    let url = link["url"].as_str().expect("a link").to_owned();
    assert!(link["valid_secs"].as_u64().unwrap() > 0);
    url.split("/sign-in/").next().unwrap().to_owned()
}

#[test]
fn a_facilitator_publishes_a_network_and_every_member_node_shows_it() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let (a, b) = (dirs[0].path(), dirs[1].path());
    let (node_a, node_b, _) = two_schools(a, b);
    let login = staffroom_ok(a, &["web", "login"], None);
    assert!(
        login.contains("/sign-in/") && login.contains("works once"),
        "{login}"
    );
    let (origin_a, origin_b) = (origin_of(a), origin_of(b));
    let post = json(&staffroom_ok(
        a,
        &[
            "--json",
            "post",
            "--title",
            "Open lesson",
            "--text",
            "For all",
        ],
        None,
    ));
    let id = post["id"].as_str().unwrap().to_owned();
    assert_eq!(
        visit(&origin_b, &format!("/e/{id}")).0,
        404,
        "members only at first"
    );

    // B joined but does not facilitate: refused. A founded the network: published.
    let refused = staffroom(b, &["network", "publish", "Maths hub"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only its facilitators"));
    let done = staffroom_ok(a, &["network", "publish", "Maths hub"], None);
    assert!(done.contains("now public"), "{done}");

    let start = Instant::now();
    for origin in [&origin_a, &origin_b] {
        loop {
            let (status, body) = visit(origin, &format!("/e/{id}"));
            if status == 200 {
                assert!(body.contains("Open lesson"));
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{origin} shows the entry to visitors"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    staffroom_ok(
        a,
        &["network", "publish", "Maths hub", "--members-only"],
        None,
    );
    let start = Instant::now();
    while visit(&origin_b, &format!("/e/{id}")).0 != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "members-only again on B"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(node_a.stop() && node_b.stop(), "both nodes stop cleanly");
}

/// Waits until a visitor's page `path` on `origin` answers 200 with what `check` wants.
fn visit_until(origin: &str, path: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = visit(origin, path);
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{origin}{path}: {what} ({status})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The page's schema.org data (its one JSON-LD script).
fn json_ld(page: &str) -> serde_json::Value {
    let start = page.find("application/ld+json\">").expect("JSON-LD") + 21;
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).expect("JSON-LD parses")
}

#[test]
fn a_resource_names_its_sources_and_every_member_node_shows_them_as_is_based_on() {
    let dirs = [(); 2].map(|_| tempfile::tempdir().unwrap());
    let (a, b) = (dirs[0].path(), dirs[1].path());
    let (node_a, node_b, _) = two_schools(a, b);
    let (origin_b, link) = (origin_of(b), "https://example.org/fractions?v=2");
    let add = |title: &str, extra: &[&str]| {
        let mut args = vec![
            "--json", "resource", "add", "--title", title, "--ages", "11-14",
        ];
        args.extend_from_slice(extra);
        staffroom(a, &args, None)
    };
    let first = add("Fractions, first take", &[]);
    let first = json(&String::from_utf8_lossy(&first.stdout))["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A web address with a space is refused before anything is published.
    let bad = add(
        "Never published",
        &["--based-on", "https://example.org/a b"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a usable web address"));
    let listed = staffroom_ok(a, &["list"], None);
    assert!(!listed.contains("Never published"), "{listed}");

    // The resource, then its statement: two replies, one per entry.
    let adapted = add(
        "Fractions, adapted",
        &["--based-on", &first[..8], "--based-on", link],
    );
    assert!(adapted.status.success(), "{adapted:?}");
    let replies: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&adapted.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(replies.len(), 2, "the resource and its sources");
    let adapted = replies[0]["id"].as_str().unwrap().to_owned();
    let stated = replies[1]["id"].as_str().unwrap().to_owned();

    staffroom_ok(a, &["network", "publish", "Maths hub"], None);
    let page = visit_until(&origin_b, &format!("/e/{adapted}"), "sources", |p| {
        p.contains("Based on")
    });
    assert!(page.contains("Fractions, first take") && page.contains(link));
    let based_on = &json_ld(&page)["isBasedOn"];
    assert_eq!(
        based_on,
        &serde_json::json!([format!("{origin_b}/e/{first}"), link])
    );

    // Only the author states a resource's sources.
    let hijack = staffroom(
        b,
        &["resource", "sources", &adapted, "--based-on", link],
        None,
    );
    assert!(!hijack.status.success());
    assert!(String::from_utf8_lossy(&hijack.stderr).contains("only a resource's author"));
    // The author withdraws them: every node shows none.
    let withdrawn = json(&staffroom_ok(
        a,
        &["--json", "resource", "sources", &adapted],
        None,
    ));
    let withdrawn = withdrawn["id"].as_str().unwrap().to_owned();
    let page = visit_until(&origin_b, &format!("/e/{adapted}"), "no sources", |p| {
        !p.contains("Based on")
    });
    assert!(json_ld(&page).get("isBasedOn").is_none());
    // Deleting the resource deletes its author's statements about it: their links are theirs.
    staffroom_ok(a, &["delete", &adapted], None);
    for statement in [&stated, &withdrawn] {
        let shown = staffroom(a, &["show", statement], None);
        assert!(!shown.status.success(), "statement {statement} was erased");
    }
    assert!(node_a.stop() && node_b.stop(), "both nodes stop cleanly");
}
