//! Private networks across real nodes: a relay that is no member's node stores and relays
//! only ciphertext; members' nodes read; a new member's node reads the history the network
//! gives; after a removal, the removed member's node cannot open what is written next.

use std::path::Path;

use staffroom_node::api::ApiClient;
use staffroom_protocol::fixtures::{blog_body, membership};
use staffroom_protocol::membership::{Action, Genesis, InviteBy, Policy};
use staffroom_protocol::private::crypto;
use staffroom_protocol::{AuthorId, Body, Draft, Entry, EntryId, NodeKey, SigningKey};
use staffroom_tests::*;

pub(crate) async fn node_key(node: &TestNode) -> NodeKey {
    node.api()
        .status()
        .await
        .expect("status")
        .node_key
        .expect("ed25519 node")
}

pub(crate) fn author(key: &SigningKey) -> AuthorId {
    AuthorId(key.verifying_key().to_bytes())
}

/// Appends the operation `action` by `key` after the network's last entry.
pub(crate) fn operate(net: &mut TestNetwork, key: &SigningKey, action: Action) -> Entry {
    let last = net.entries.last().expect("founded").id();
    let at = net.entries.last().expect("founded").created_at_ms + 1;
    let op = membership(key, net.id, at, &[last], action);
    net.entries.push(op.clone());
    op
}

/// Seals and signs a post by `key` on `api`'s node, once that node holds a writing key.
async fn sealed_post(
    api: &ApiClient,
    net: &TestNetwork,
    key: &SigningKey,
    title: &str,
) -> (Entry, Body) {
    let body = blog_body(title);
    let start = tokio::time::Instant::now();
    loop {
        let at = now_ms();
        match api.seal(&net.id, at, body.clone()).await {
            Ok(sealed) => {
                let draft = Draft {
                    network: net.id,
                    created_at_ms: at,
                    refs: vec![],
                    body: Body::Sealed(sealed),
                };
                return (draft.sign(key), body);
            }
            Err(e) => {
                assert_eq!(e.code(), Some("no_content_key"), "{e}");
                assert!(start.elapsed() < DEADLINE, "no content key in time");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// Whether `api`'s node holds the sealed files of resource `id` (the only files of its
/// network) complete, as any node sees them: by their roots and sizes.
async fn node_has_file(api: &ApiClient, id: &EntryId) -> bool {
    let Ok(view) = api.get(id).await else {
        return false;
    };
    let Body::Sealed(sealed) = &view.stored.entry.body else {
        return false;
    };
    let mut complete = true;
    for file in &sealed.files {
        let network_files = api.network_files(&view.stored.entry.network).await;
        complete &= network_files.is_ok_and(|n| n.bytes_here >= file.size_bytes);
    }
    complete && !sealed.files.is_empty()
}

/// A private network founded by `founder` with `policy` (no name in its founding entry).
pub(crate) fn private_network(founder: &SigningKey, policy: Policy, nonce: u8) -> TestNetwork {
    let genesis = Genesis {
        name: String::new(),
        description_md: String::new(),
        policy,
        invite_by: InviteBy::Facilitators,
        nonce: [nonce; 16],
    }
    .found(now_ms() - 60_000, founder);
    TestNetwork {
        id: genesis.network,
        entries: vec![genesis],
    }
}

/// The founder (whose node is `at`) adds the admin of `newcomer`, who binds that node; the
/// newcomer's node then follows the network.
async fn admit(net: &mut TestNetwork, founder: &SigningKey, at: &TestNode, newcomer: &TestNode) {
    let key = newcomer.node.admin_key().clone();
    let add = operate(
        net,
        founder,
        Action::Add {
            member: author(&key),
        },
    );
    let node = node_key(newcomer).await;
    let bind = operate(net, &key, Action::BindNode { node });
    at.api().submit(add.encode()).await.expect("added");
    at.api().submit(bind.encode()).await.expect("bound");
    newcomer.adopt(net).await;
}

/// A post sealed and signed on `api`'s node once it writes with a key other than `earlier`'s.
async fn sealed_post_after_new_key(
    api: &ApiClient,
    net: &TestNetwork,
    key: &SigningKey,
    title: &str,
    earlier: &Entry,
) -> (Entry, Body) {
    let start = tokio::time::Instant::now();
    loop {
        let (entry, body) = sealed_post(api, net, key, title).await;
        if key_id_of(&entry) != key_id_of(earlier) {
            return (entry, body);
        }
        assert!(start.elapsed() < DEADLINE, "no new key in time");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Waits until `node` opens `id` to `body` for its admin.
async fn wait_opened(node: &TestNode, id: EntryId, body: &Body, what: &str) {
    let api = node.api();
    eventually(what, || {
        let (api, body) = (api.clone(), body.clone());
        async move { opened(&api, &id).await == Some(body) }
    })
    .await;
}

async fn opened(api: &ApiClient, id: &EntryId) -> Option<Body> {
    api.get(id).await.ok().and_then(|v| v.stored.opened)
}

/// Whether any file under `dir` contains `needle`.
fn found_in(dir: &Path, needle: &[u8]) -> bool {
    let Ok(items) = std::fs::read_dir(dir) else {
        return false;
    };
    items.flatten().any(|item| {
        let path = item.path();
        match path.is_dir() {
            true => found_in(&path, needle),
            false => std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)),
        }
    })
}

fn key_id_of(entry: &Entry) -> staffroom_protocol::private::KeyId {
    match &entry.body {
        Body::Sealed(s) => s.key_id,
        _ => panic!("a sealed entry"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_hold_ciphertext_members_read_and_a_removed_members_node_reads_no_more() {
    init_tracing();
    // A is the founder's node; B and C members' nodes; R a relay no member bound. B and C
    // reach A only through R.
    let a = TestNode::start(&[]).await;
    let r = TestNode::start(&[a.addr()]).await;
    let b = TestNode::start(&[r.addr()]).await;
    let c = TestNode::start(&[r.addr()]).await;
    let (founder, m1, m2) = (
        a.node.admin_key().clone(),
        b.node.admin_key().clone(),
        c.node.admin_key().clone(),
    );
    let mut net = private_network(&founder, Policy::Private, 3);
    operate(
        &mut net,
        &founder,
        Action::Add {
            member: author(&m1),
        },
    );
    operate(
        &mut net,
        &founder,
        Action::Add {
            member: author(&m2),
        },
    );
    operate(
        &mut net,
        &founder,
        Action::BindNode {
            node: node_key(&a).await,
        },
    );
    operate(
        &mut net,
        &m1,
        Action::BindNode {
            node: node_key(&b).await,
        },
    );
    operate(
        &mut net,
        &m2,
        Action::BindNode {
            node: node_key(&c).await,
        },
    );
    // The founder's node knows the network by a name that is in no entry.
    let name = "Y2 reading recovery group";
    a.api()
        .adopt_network_named(&net.encoded(), Some(name))
        .await
        .expect("adopted with its name");
    for node in [&r, &b, &c] {
        node.adopt(&net).await;
    }

    let (post, body) =
        sealed_post(&a.api(), &net, &founder, "Reading recovery trial, Year 2").await;
    a.api()
        .submit(post.encode())
        .await
        .expect("sealed post accepted");
    for node in [&r, &b, &c] {
        node.wait_for_entry(&post.id()).await;
    }
    // Members' nodes open it for their members; the relay holds it but cannot.
    for node in [&b, &c] {
        wait_opened(node, post.id(), &body, "a member's node opens the post").await;
    }
    assert_eq!(opened(&r.api(), &post.id()).await, None);
    let needle = b"Reading recovery trial";
    let Body::Sealed(sealed) = &post.body else {
        unreachable!()
    };
    assert!(
        !post.encode().windows(needle.len()).any(|w| w == needle),
        "relayed bytes"
    );
    assert!(
        found_in(r.dir.path(), &sealed.ciphertext[..32]),
        "the relay stores the ciphertext"
    );
    assert!(!found_in(r.dir.path(), needle), "and no plaintext");
    assert!(
        !found_in(r.dir.path(), name.as_bytes()),
        "nor the network's name"
    );
    // What the relay passed on, as B (reachable only through R) received it.
    let at_b = b
        .api()
        .get(&post.id())
        .await
        .expect("on B")
        .stored
        .entry
        .encode();
    assert!(
        !at_b.windows(needle.len()).any(|w| w == needle),
        "relayed sealed"
    );
    assert!(
        found_in(a.dir.path(), name.as_bytes()),
        "which its founder's node keeps"
    );

    // A file shared in the network: sealed before it is hashed, so the relay fetches and
    // stores sealed bytes, and members' nodes open it.
    let plain: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("pupil work sample {i}\n").into_bytes())
        .take(300_000)
        .collect();
    let files = tempfile::tempdir().expect("temp dir");
    let path = files.path().join("samples.txt");
    std::fs::write(&path, &plain).expect("write");
    let up = a
        .api()
        .upload_sealed_file(&net.id, &path, std::sync::Arc::new(|_| {}))
        .await
        .expect("sealed upload");
    assert_ne!(up.root, staffroom_protocol::FileRoot::of(&plain));
    let mut resource = staffroom_protocol::fixtures::resource_body("Work samples");
    if let Body::Resource(r) = &mut resource {
        r.files = vec![staffroom_protocol::FileRef {
            name: "samples.txt".into(),
            media_type: "text/plain".into(),
            size_bytes: up.size_bytes,
            root: up.root,
        }];
    }
    let at = now_ms();
    let sealed = a.api().seal(&net.id, at, resource).await.expect("sealed");
    let shared = Draft {
        network: net.id,
        created_at_ms: at,
        refs: vec![],
        body: Body::Sealed(sealed),
    }
    .sign(&founder);
    a.api()
        .submit(shared.encode())
        .await
        .expect("resource accepted");
    for node in [&r, &b] {
        let api = node.api();
        eventually_within(
            "the sealed file complete",
            std::time::Duration::from_secs(60),
            || {
                let api = api.clone();
                let id = shared.id();
                async move { node_has_file(&api, &id).await }
            },
        )
        .await;
    }
    let saved = files.path().join("on-b.txt");
    b.api()
        .download_opened(up.root, up.size_bytes, &saved, std::sync::Arc::new(|_| {}))
        .await
        .expect("opened on a member's node");
    assert!(std::fs::read(&saved).expect("saved") == plain);
    let refused = r
        .api()
        .download_opened(
            up.root,
            up.size_bytes,
            &files.path().join("r.txt"),
            std::sync::Arc::new(|_| {}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("cannot_open"), "{refused}");
    assert!(
        !found_in(r.dir.path(), b"pupil work sample 1"),
        "no file plaintext on the relay"
    );
    // Even a member's node keeps only the sealed file: it opens it as it serves its teacher.
    assert!(!found_in(
        &b.dir.path().join("files"),
        b"pupil work sample 1"
    ));
    // The founder deletes the sealed resource: every node, the relay included, drops it and
    // its sealed file, with no key needed.
    let erasure = staffroom_protocol::fixtures::erasure_body(
        &shared,
        staffroom_protocol::ErasureAction::Delete,
        staffroom_protocol::ErasureReason::PersonalData,
    );
    let deletion =
        staffroom_protocol::fixtures::signed(&founder, net.id, now_ms(), vec![], erasure);
    a.api().submit(deletion.encode()).await.expect("deleted");
    let sealed_prefix = up.root.to_hex();
    for node in [&a, &r, &b] {
        let dir = node.dir.path().join("files").join("complete");
        let api = node.api();
        eventually_within(
            "the sealed resource and its file gone",
            std::time::Duration::from_secs(60),
            || {
                let (dir, api, prefix) = (dir.clone(), api.clone(), sealed_prefix.clone());
                let id = shared.id();
                async move {
                    let files_left = std::fs::read_dir(&dir)
                        .map(|d| {
                            d.flatten()
                                .any(|f| f.file_name().to_string_lossy().starts_with(&prefix))
                        })
                        .unwrap_or(false);
                    !files_left && api.get(&id).await.is_err()
                }
            },
        )
        .await;
    }

    // A new member's node is given the history.
    let d = TestNode::start(&[r.addr()]).await;
    admit(&mut net, &founder, &a, &d).await;
    wait_opened(
        &d,
        post.id(),
        &body,
        "the new member's node opens the earlier post",
    )
    .await;

    // M2 is removed: the founder's node makes a new key that C never gets.
    let removal = operate(
        &mut net,
        &founder,
        Action::Remove {
            member: author(&m2),
        },
    );
    a.api().submit(removal.encode()).await.expect("removed");
    let (after, body_after) =
        sealed_post_after_new_key(&a.api(), &net, &founder, "After the removal", &post).await;
    a.api().submit(after.encode()).await.expect("accepted");
    for node in [&b, &c, &d] {
        node.wait_for_entry(&after.id()).await;
    }
    let remaining = "a remaining member's node opens the new post";
    wait_opened(&b, after.id(), &body_after, remaining).await;
    // C stores the new post but holds no key that opens it.
    let c_dir = c.stop().await;
    let store = staffroom_node::store::Store::open(&c_dir.path().join("store")).expect("store");
    let keys = store.content_keys(&net.id).expect("keys");
    assert!(
        keys.contains_key(&key_id_of(&post)),
        "C had the earlier key"
    );
    assert!(!keys.contains_key(&key_id_of(&after)));
    assert!(keys.values().all(|k| crypto::open_body(&after, k).is_err()));
    drop(store);
    for node in [a, r, b, d] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_history_a_new_member_reads_only_what_follows_their_joining() {
    init_tracing();
    let a = TestNode::start(&[]).await;
    let d = TestNode::start(&[a.addr()]).await;
    let founder = a.node.admin_key().clone();
    let mut net = private_network(&founder, Policy::PrivateFromJoining, 4);
    operate(
        &mut net,
        &founder,
        Action::BindNode {
            node: node_key(&a).await,
        },
    );
    a.adopt(&net).await;
    let (before, _) = sealed_post(&a.api(), &net, &founder, "Before you came").await;
    a.api().submit(before.encode()).await.expect("accepted");
    admit(&mut net, &founder, &a, &d).await;
    // The founder's node makes a new key for both nodes; what is written with it, D reads.
    let (after, body_after) =
        sealed_post_after_new_key(&a.api(), &net, &founder, "After you came", &before).await;
    a.api().submit(after.encode()).await.expect("accepted");
    d.wait_for_entry(&after.id()).await;
    d.wait_for_entry(&before.id()).await;
    wait_opened(
        &d,
        after.id(),
        &body_after,
        "the new member's node opens what follows",
    )
    .await;
    assert_eq!(
        opened(&d.api(), &before.id()).await,
        None,
        "but not what came before"
    );
    for node in [a, d] {
        node.stop().await;
    }
}
