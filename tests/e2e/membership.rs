//! Membership across real nodes: a network founded on one school's node, joined from others
//! with nothing but an invite token; invites that are over-used, expired or revoked are
//! refused with a reason; a node no member has bound gets nothing; a removed member's new
//! posts are refused everywhere while their earlier posts stay.

use staffroom_node::api::ClientError;
use staffroom_protocol::fixtures::{self, key};
use staffroom_protocol::membership::{Action, InviteToken, Policy};
use staffroom_protocol::{AuthorId, Entry, EntryId, NetworkId, SigningKey};
use staffroom_tests::*;

fn author(k: &SigningKey) -> AuthorId {
    AuthorId(k.verifying_key().to_bytes())
}

/// Signs `action` by `teacher` after the heads `node` knows, and submits it there.
async fn operate(
    node: &TestNode,
    teacher: &SigningKey,
    network: NetworkId,
    action: Action,
) -> Entry {
    let heads = node.api().members(&network).await.expect("members").heads;
    let op = fixtures::membership(teacher, network, now_ms(), &heads, action);
    node.api()
        .submit(op.encode())
        .await
        .expect("operation accepted");
    op
}

/// An invite by `teacher` on `node`, and its token (naming `node`'s loopback address).
async fn invite(
    node: &TestNode,
    teacher: &SigningKey,
    network: NetworkId,
    uses_max: u16,
    expires_at_ms: u64,
) -> (EntryId, String) {
    let action = Action::Invite {
        expires_at_ms,
        uses_max,
    };
    let op = operate(node, teacher, network, action).await;
    let token = InviteToken {
        network,
        invite: op.id(),
        expires_at_ms,
        addrs: vec![node.addr().to_vec()],
        name: String::new(),
    };
    (op.id(), token.encode())
}

/// `teacher` joins from `node` with the token alone: a signed join and node binding.
async fn join(node: &TestNode, teacher: &SigningKey, token: &str) -> Result<(), ClientError> {
    let parsed = InviteToken::decode(token).expect("token");
    let status = node.api().status().await.expect("status");
    let join = fixtures::membership(
        teacher,
        parsed.network,
        now_ms(),
        &[parsed.invite],
        Action::Join {
            invite: Some(parsed.invite),
        },
    );
    let node_key = status.node_key.expect("ed25519 node");
    let bind = fixtures::membership(
        teacher,
        parsed.network,
        now_ms(),
        &[join.id()],
        Action::BindNode { node: node_key },
    );
    node.api()
        .join_with_token(token, &[join.encode(), bind.encode()])
        .await
        .map(|_| ())
}

/// Founds an invite-only network on `node`: the founding entry, then `node` bound to the
/// founder's membership.
async fn found(node: &TestNode, founder: &SigningKey, name: &str) -> NetworkId {
    let genesis = fixtures::genesis(founder, name, Policy::InviteOnly, now_ms() - 60_000);
    let node_key = node.api().status().await.unwrap().node_key.unwrap();
    let bind = fixtures::membership(
        founder,
        genesis.network,
        now_ms(),
        &[genesis.id()],
        Action::BindNode { node: node_key },
    );
    node.api()
        .adopt_network(&[genesis.encode(), bind.encode()])
        .await
        .expect("founded");
    genesis.network
}

fn post(teacher: &SigningKey, network: NetworkId, title: &str) -> Entry {
    fixtures::signed(
        teacher,
        network,
        now_ms(),
        vec![],
        fixtures::blog_body(title),
    )
}

async fn refusal(node: &TestNode, teacher: &SigningKey, token: &str) -> (String, String) {
    let err = join(node, teacher, token).await.expect_err("refused");
    (err.code().unwrap_or_default().to_owned(), err.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_join_refuse_and_remove_across_three_nodes() {
    init_tracing();
    let (founder, second, third) = (key(1), key(2), key(3));
    let a = TestNode::start(&[]).await;
    let b = TestNode::start(&[]).await;
    let c = TestNode::start(&[]).await;

    let network = found(&a, &founder, "Maths hub").await;
    let mut history = Vec::new();
    for n in 0..3 {
        let e = post(&founder, network, &format!("Before anyone joined {n}"));
        a.api().submit(e.encode()).await.expect("posted");
        history.push(e.id());
    }

    // B joins with the token alone: it dials A, hands in the join, and gets the history.
    let hour = now_ms() + 3_600_000;
    let (_, once) = invite(&a, &founder, network, 1, hour).await;
    join(&b, &second, &once).await.expect("B joins");
    for id in &history {
        b.wait_for_entry(id).await;
    }
    let on_b = b.api().members(&network).await.unwrap();
    assert_eq!(on_b.name, "Maths hub");
    assert!(on_b.members.iter().any(|m| m.author == author(&second)));

    // The same one-use token again, an expired one, a revoked one: refused, saying why.
    let (code, message) = refusal(&c, &third, &once).await;
    assert_eq!(code, "invite_refused", "{message}");
    assert!(message.contains("used"), "{message}");
    let (_, expired) = invite(&a, &founder, network, 5, now_ms() - 1).await;
    let (code, message) = refusal(&c, &third, &expired).await;
    assert_eq!(code, "invite_refused", "{message}");
    assert!(message.contains("expired"), "{message}");
    let (revoked_id, revoked) = invite(&a, &founder, network, 5, hour).await;
    operate(
        &a,
        &founder,
        network,
        Action::RevokeInvite { invite: revoked_id },
    )
    .await;
    let (code, message) = refusal(&c, &third, &revoked).await;
    assert_eq!(code, "invite_refused", "{message}");
    assert!(message.contains("revoked"), "{message}");
    assert!(
        c.api().networks().await.unwrap().is_empty(),
        "a refused join leaves nothing followed"
    );
    assert_eq!(c.entry_count().await, 0, "nothing of the network reached C");

    // A good invite lets C in.
    let (_, good) = invite(&a, &founder, network, 1, hour).await;
    join(&c, &third, &good).await.expect("C joins");
    for id in &history {
        c.wait_for_entry(id).await;
    }

    // B's teacher posts, then is removed; their later post is refused on every node, the
    // earlier one stays everywhere.
    let earlier = post(&second, network, "Written while a member");
    b.api()
        .submit(earlier.encode())
        .await
        .expect("member posts");
    for node in [&a, &c] {
        node.wait_for_entry(&earlier.id()).await;
    }
    operate(
        &a,
        &founder,
        network,
        Action::Remove {
            member: author(&second),
        },
    )
    .await;
    // A and C learn of the removal; B's node, bound only by the removed member, stops
    // following the network.
    for node in [&a, &c] {
        let api = node.api();
        eventually("the removal on A and C", || {
            let api = api.clone();
            let second = author(&second);
            async move {
                let view = api.members(&network).await.unwrap();
                view.former.contains_key(&second)
            }
        })
        .await;
    }
    let b_api = b.api();
    eventually("B's node no longer following", || {
        let api = b_api.clone();
        async move { api.networks().await.is_ok_and(|n| n.is_empty()) }
    })
    .await;
    let later = post(&second, network, "Written after removal");
    for (node, code) in [
        (&a, "former_member"),
        (&b, "not_member"),
        (&c, "former_member"),
    ] {
        let err = node
            .api()
            .submit(later.encode())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Some(code), "{err}");
        node.api()
            .get(&earlier.id())
            .await
            .expect("earlier post stays");
    }
    // B no longer takes part: A sees it leave the topic, and nobody syncs the network with it.
    let a_api = a.api();
    let b_peer = b.node.peer_id;
    eventually("A seeing B leave the topic", || {
        let api = a_api.clone();
        async move {
            let peers = api.peers().await.unwrap_or_default();
            !peers
                .iter()
                .any(|p| p.peer_id == b_peer && p.networks.contains(&network))
        }
    })
    .await;
    let reports = c.api().sync(Some(network)).await.unwrap().sessions;
    assert!(
        reports.iter().all(|r| r.peer != b_peer),
        "nobody syncs the network with B: {reports:?}"
    );
    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_no_member_has_bound_gets_nothing_by_sync() {
    init_tracing();
    let founder = key(1);
    let a = TestNode::start(&[]).await;
    let network = found(&a, &founder, "Closed").await;
    a.post_many(&founder, network, 5).await;

    // An outsider that knows the network id follows it and dials A: it learns nothing.
    let outsider_dir = tempfile::tempdir().unwrap();
    {
        use staffroom_node::store::{NetworkRecord, Store};
        let store = Store::open(&staffroom_node::config::DataDir::new(outsider_dir.path()).store())
            .unwrap();
        let record = NetworkRecord {
            id: network,
            name: "Closed".into(),
            joined_at_ms: 0,
        };
        store.join_network(record).await.unwrap();
        store.flush().await.unwrap();
    }
    let outsider = TestNode::start_in(outsider_dir, &[a.addr()], |_| {}).await;
    outsider.wait_for_network_peers(network, 1).await;
    let reports = outsider.api().sync(Some(network)).await.unwrap().sessions;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let error = reports[0].error.clone().unwrap_or_default();
    assert!(error.contains("not bound"), "{reports:?}");
    assert_eq!(outsider.entry_count().await, 0);
    let peers = a.api().peers().await.unwrap();
    assert!(
        peers.iter().all(|p| !p.blocked && p.invalid_messages == 0),
        "asking is not misbehaving: {peers:?}"
    );
    outsider.stop().await;
    a.stop().await;
}
