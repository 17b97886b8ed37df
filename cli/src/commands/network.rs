//! `staffroom network …` and `staffroom profile set`: founding, inviting, joining, members,
//! roles and leaving. Every change is a membership operation signed here with the teacher's
//! key and submitted to the node, which resolves who is a member.

use anyhow::{bail, Context};
use staffroom_node::api::types::MembersView;
use staffroom_node::api::ApiClient;
use staffroom_node::ingest::now_ms;
use staffroom_protocol::membership::{Action, Genesis, InviteBy, InviteToken, Policy, Profile};
use staffroom_protocol::{AuthorId, Entry, NetworkId, SigningKey};

use super::{resolve_network, Ctx};
use crate::{render, teacher};

/// Founds a network: its founding entry, then this node bound to the founder's membership.
pub async fn create(
    ctx: &Ctx,
    name: &str,
    policy: Policy,
    description: &str,
) -> anyhow::Result<()> {
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let name = name.trim();
    if name.is_empty() {
        bail!("a network needs a name, e.g. `staffroom network create \"Maths hub\"`");
    }
    // Names pick networks in every command: two alike would make each of them ambiguous.
    if let Some(same) = api.networks().await?.iter().find(|n| n.name == name) {
        bail!(
            "this node already follows a network named {name:?} ({}): choose another name",
            same.id.short()
        );
    }
    let node = node_key(&api).await?;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).context("no randomness for the network's nonce")?;
    // A private network's name is not in its founding entry, which every relay holds: it is
    // kept here and travels in invites.
    let private = policy.is_private();
    let genesis = Genesis {
        name: if private {
            String::new()
        } else {
            name.to_owned()
        },
        description_md: description.to_owned(),
        policy,
        invite_by: InviteBy::Facilitators,
        nonce,
    }
    .found(now_ms(), &key);
    staffroom_protocol::verify_entry(&genesis.encode(), now_ms())?;
    let bind = sign(
        &key,
        genesis.network,
        &[genesis.id()],
        Action::BindNode { node },
    );
    let local_name = private.then_some(name);
    let record = api
        .adopt_network_named(&[genesis.encode(), bind.encode()], local_name)
        .await?;
    ctx.print(&record, || {
        format!(
            "Founded network {:?}.\nIts id: {}\nInvite schools with `staffroom network invite {:?}`.\n",
            record.name, record.id, record.name
        )
    })
}

/// Signs an invite and prints the token that carries it.
pub async fn invite(
    ctx: &Ctx,
    network: Option<&str>,
    uses: u16,
    expires: &str,
) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = resolve_network(&api, network).await?;
    let expires_at_ms = now_ms().saturating_add(duration_ms(expires)?);
    let action = Action::Invite {
        expires_at_ms,
        uses_max: uses,
    };
    let invite = operate(ctx, &api, network, action).await?;
    let status = api.status().await?;
    let addrs = invite_addrs(&status);
    // A private network's name is in no entry: the token carries it to the invited.
    let view = api.members(&network).await?;
    let name = match view.policy.is_some_and(|p| p.is_private()) {
        true => view.name,
        false => String::new(),
    };
    let token = InviteToken {
        network,
        invite: invite.id(),
        expires_at_ms,
        addrs: addrs.iter().map(|a| a.to_vec()).collect(),
        name,
    };
    let text = token.encode();
    ctx.print(&serde_json::json!({ "token": text, "invite": invite.id(), "expires_at_ms": expires_at_ms, "uses": uses }), || {
        format!(
            "{text}\n\nValid for {uses} join(s) until {}. Share it with the teacher you invite: \
             `staffroom network join TOKEN`.\n",
            render::date(expires_at_ms)
        )
    })
}

/// The addresses an invite carries (the token keeps the first four): those confirmed
/// reachable from outside, then relay circuits (for a node behind NAT), then other listen
/// addresses (a LAN), loopback last (for tests on one machine); each ends in this node's
/// peer id, once.
pub fn invite_addrs(
    status: &staffroom_node::api::types::StatusResponse,
) -> Vec<staffroom_node::Multiaddr> {
    use staffroom_node::net::reach::{is_local_only, is_relayed};
    let me = staffroom_node::net::p2p(status.peer_id);
    let listening = status
        .listen_addrs
        .iter()
        .filter(|a| !a.to_string().starts_with("/ip4/0.0.0.0"));
    let mut addrs: Vec<staffroom_node::Multiaddr> = Vec::new();
    for a in status.external_addrs.iter().chain(listening) {
        let a = match a.iter().last() == Some(me.clone()) {
            true => a.clone(),
            false => a.clone().with(me.clone()),
        };
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    // Compared without the peer id the loop above appended: a string prefix would take
    // `…/tcp/40` for `…/tcp/4040`.
    let confirmed = |a: &staffroom_node::Multiaddr| {
        let mut bare = a.clone();
        bare.pop();
        status.external_addrs.iter().any(|e| *e == bare || e == a)
    };
    addrs.sort_by_key(|a| match (is_local_only(a), is_relayed(a), confirmed(a)) {
        (true, _, _) => 3,
        (false, true, _) => 1,
        (false, false, true) => 0,
        (false, false, false) => 2,
    });
    addrs
}

/// Joins with a token: signs the join and this node's binding; the node does the rest.
pub async fn join(ctx: &Ctx, token: &str) -> anyhow::Result<()> {
    let parsed = InviteToken::decode(token)?;
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let node = node_key(&api).await?;
    let action = Action::Join {
        invite: Some(parsed.invite),
    };
    let join = sign(&key, parsed.network, &[parsed.invite], action);
    let bind = sign(
        &key,
        parsed.network,
        &[join.id()],
        Action::BindNode { node },
    );
    let record = api
        .join_with_token(token, &[join.encode(), bind.encode()])
        .await?;
    ctx.print(&record, || {
        format!("Joined network {:?} ({}).\n", record.name, record.id)
    })
}

pub async fn members(ctx: &Ctx, network: Option<&str>) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = resolve_network(&api, network).await?;
    let view = api.members(&network).await?;
    ctx.print(&view, || render::members(&view))
}

pub async fn remove(ctx: &Ctx, network: &str, member: &str) -> anyhow::Result<()> {
    change_member(ctx, network, member, |m| Action::Remove { member: m }).await
}

pub async fn promote(ctx: &Ctx, network: &str, member: &str) -> anyhow::Result<()> {
    change_member(ctx, network, member, |m| Action::Grant { member: m }).await
}

pub async fn demote(ctx: &Ctx, network: &str, member: &str) -> anyhow::Result<()> {
    change_member(ctx, network, member, |m| Action::Demote { member: m }).await
}

async fn change_member(
    ctx: &Ctx,
    network: &str,
    member: &str,
    action: impl FnOnce(AuthorId) -> Action,
) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = resolve_network(&api, Some(network)).await?;
    let view = api.members(&network).await?;
    let target = find_member(&view, member)?;
    let action = action(target);
    let name = action.name();
    let op = operate(ctx, &api, network, action).await?;
    let after = api.members(&network).await?;
    let role = after.members.iter().find(|m| m.author == target);
    let took_effect = match name {
        "remove" => role.is_none(),
        "grant" => role.is_some_and(|m| m.facilitator),
        _ => role.is_some_and(|m| !m.facilitator),
    };
    if !took_effect {
        bail!(
            "recorded, but it does not count: only facilitators may do this, and only a more \
             senior facilitator may remove or demote a facilitator"
        );
    }
    ctx.print(&after, || {
        format!("Done ({name}, operation {}).\n", op.id())
    })
}

/// Leaves: the teacher's leave operation, then this node stops following the network.
pub async fn leave(ctx: &Ctx, network: &str, purge: bool) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = resolve_network(&api, Some(network)).await?;
    operate(ctx, &api, network, Action::Leave).await?;
    let left = api.leave_network(&network, purge).await?;
    ctx.print(&left, || {
        let purged = match purge {
            true => format!(
                " {} entries and their files deleted from this node.",
                left.purged_entries
            ),
            false => String::new(),
        };
        format!("Left network {network}; this node no longer follows it.{purged}\n")
    })
}

/// Sets the teacher's profile in every followed network they are a member of.
pub async fn set_profile(ctx: &Ctx, profile: Profile) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let me = teacher::author_id(&teacher::load(&ctx.data)?);
    let mut updated = Vec::new();
    for record in api.networks().await? {
        let view = api.members(&record.id).await?;
        if view.members.iter().any(|m| m.author == me) {
            operate(ctx, &api, record.id, Action::SetProfile(profile.clone())).await?;
            updated.push(record.name);
        }
    }
    if updated.is_empty() {
        bail!("you are not a member of any network this node follows");
    }
    ctx.print(&updated, || {
        format!("Profile set in: {}.\n", updated.join(", "))
    })
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let networks = ctx.api()?.networks().await?;
    ctx.print(&networks, || {
        if networks.is_empty() {
            return "No networks yet: `staffroom network create NAME` or `staffroom network join TOKEN`.\n".into();
        }
        networks
            .iter()
            .map(|n| format!("{}  {}  joined {}\n", n.id, n.name, render::date(n.joined_at_ms)))
            .collect()
    })
}

/// Signs `action` after the network's current heads and submits it.
async fn operate(
    ctx: &Ctx,
    api: &ApiClient,
    network: NetworkId,
    action: Action,
) -> anyhow::Result<Entry> {
    let key = teacher::load(&ctx.data)?;
    let view = api.members(&network).await?;
    if view.heads.is_empty() {
        bail!(
            "this node holds none of network {network}'s membership yet; try again after it syncs"
        );
    }
    let op = sign(&key, network, &view.heads, action);
    api.submit(op.encode()).await?;
    Ok(op)
}

fn sign(
    key: &SigningKey,
    network: NetworkId,
    after: &[staffroom_protocol::EntryId],
    action: Action,
) -> Entry {
    action.draft(network, now_ms(), after).sign(key)
}

async fn node_key(api: &ApiClient) -> anyhow::Result<staffroom_protocol::NodeKey> {
    api.status()
        .await?
        .node_key
        .context("this node's key is not an ed25519 key; it cannot be bound to a membership")
}

/// A member named by key (hex) or by display name.
fn find_member(view: &MembersView, given: &str) -> anyhow::Result<AuthorId> {
    if let Ok(key) = given.parse::<AuthorId>() {
        return Ok(key);
    }
    let named: Vec<_> = view
        .members
        .iter()
        .filter(|m| m.profile.as_ref().is_some_and(|p| p.display_name == given))
        .collect();
    match named.as_slice() {
        [one] => Ok(one.author),
        [] => bail!("no member named {given:?}: see `staffroom network members`"),
        _ => bail!("several members are named {given:?}: give the member's key"),
    }
}

/// "30m", "12h", "7d" (or plain seconds) in milliseconds.
fn duration_ms(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit_ms) = match text.chars().last() {
        Some('m') => (&text[..text.len() - 1], 60_000),
        Some('h') => (&text[..text.len() - 1], 3_600_000),
        Some('d') => (&text[..text.len() - 1], 86_400_000),
        Some('s') => (&text[..text.len() - 1], 1_000),
        _ => (text, 1_000),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("not a duration: {text:?} (use e.g. 30m, 12h or 7d)"))?;
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 365 * 86_400_000)
        .with_context(|| format!("{text:?} is longer than a year"))
}

/// `network publish`: signs a publication (kind 12) saying whether the network's pages are
/// public. Every member node's admission takes in only a facilitator's.
pub async fn publish(ctx: &Ctx, network: &str, public: bool) -> anyhow::Result<()> {
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let network = super::resolve_network(&api, Some(network)).await?;
    let draft = staffroom_protocol::Draft {
        network,
        created_at_ms: now_ms(),
        refs: Vec::new(),
        body: staffroom_protocol::Body::Publication(staffroom_protocol::Publication { public }),
    };
    let signed = draft.sign(&key);
    api.submit(signed.encode()).await?;
    ctx.print(
        &serde_json::json!({ "network": network, "public": public, "entry": signed.id() }),
        || match public {
            true => format!(
                "Network {}'s pages are now public on its member schools' nodes: anyone can read \
                 them and follow their feeds.\n",
                network.short()
            ),
            false => format!(
                "Network {}'s pages are members-only again: only the schools' signed-in teachers \
                 read them.\n",
                network.short()
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_node::api::types::StatusResponse;
    use staffroom_node::{Multiaddr, PeerId};

    #[test]
    fn invites_carry_reachable_addresses_first_each_naming_the_node_once() {
        let (me, relay) = (PeerId::random(), PeerId::random());
        let addr = |text: String| text.parse::<Multiaddr>().unwrap();
        let circuit = addr(format!(
            "/ip4/198.51.100.1/tcp/4040/p2p/{relay}/p2p-circuit/p2p/{me}"
        ));
        let status = StatusResponse {
            version: "0".into(),
            peer_id: me,
            node_key: None,
            listen_addrs: ["127.0.0.1", "0.0.0.0", "192.168.1.5", "203.0.113.9"]
                .map(|ip| addr(format!("/ip4/{ip}/tcp/4040")))
                .into_iter()
                // Not confirmed, though the confirmed address is a prefix of its text.
                .chain([addr("/ip4/203.0.113.9/tcp/40404".into())])
                .collect(),
            connected_peers: 0,
            explicit_peers: vec![],
            networks: 0,
            entries: 0,
            held_entries: 0,
            clock_ms: 0,
            file_bytes_max: 0,
            external_addrs: vec![circuit.clone(), addr("/ip4/203.0.113.9/tcp/4040".into())],
            reach: Default::default(),
            problems: vec![],
            runtime_tasks: 0,
            gossip_copies_received: 0,
        };
        let shown: Vec<String> = invite_addrs(&status)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                format!("/ip4/203.0.113.9/tcp/4040/p2p/{me}"),
                circuit.to_string(),
                format!("/ip4/192.168.1.5/tcp/4040/p2p/{me}"),
                format!("/ip4/203.0.113.9/tcp/40404/p2p/{me}"),
                format!("/ip4/127.0.0.1/tcp/4040/p2p/{me}"),
            ]
        );
    }
}
