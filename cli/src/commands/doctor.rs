//! `staffroom node doctor`: what stands between this node and other schools, and what to do
//! about each problem — from what the node reports (its addresses, whether peers can reach
//! it, its relays, the peers it keeps dialling and why they fail, the peers connected, how,
//! and how far their clocks are, and the networks they share). The checks are a pure function
//! of those reports, so they are tested without a node. With no node running, the doctor
//! checks that its p2p port is free.

use serde::Serialize;
use staffroom_node::api::types::StatusResponse;
use staffroom_node::api::ClientError;
use staffroom_node::net::reach::Nat;
use staffroom_node::net::{ConnKind, PeerInfo};
use staffroom_node::store::NetworkRecord;

use super::Ctx;

/// One check: what was looked at, whether it is fine, and what to do if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    pub advice: Option<String>,
}

fn finding(check: &'static str, ok: bool, detail: String, advice: Option<String>) -> Finding {
    Finding {
        check,
        ok,
        detail,
        advice: advice.filter(|_| !ok),
    }
}

/// Whether other machines can ever reach this address (an IP address, not loopback).
fn reachable_from_elsewhere(addr: &staffroom_node::Multiaddr) -> bool {
    let text = addr.to_string();
    let ip = text
        .strip_prefix("/ip4/")
        .or_else(|| text.strip_prefix("/ip6/"))
        .and_then(|rest| rest.split('/').next())
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
    ip.is_some_and(|ip| !ip.is_loopback())
}

/// Every check, in the order they are shown.
pub fn diagnose(
    status: &StatusResponse,
    peers: &[PeerInfo],
    networks: &[NetworkRecord],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let listening = status.listen_addrs.iter().any(reachable_from_elsewhere);
    let addrs: Vec<String> = status.listen_addrs.iter().map(|a| a.to_string()).collect();
    let external: Vec<String> = status
        .external_addrs
        .iter()
        .map(|a| a.to_string())
        .collect();
    let detail = match external.is_empty() {
        true => format!("listening on {}", addrs.join(", ")),
        false => format!(
            "listening on {}; other nodes reach it at {}",
            addrs.join(", "),
            external.join(", ")
        ),
    };
    out.push(finding(
        "listening",
        listening,
        detail,
        Some(
            "only this machine can reach the node: listen on all interfaces \
             (--listen /ip4/0.0.0.0/tcp/4040) and open TCP port 4040 in the firewall"
                .into(),
        ),
    ));
    out.push(finding(
        "peers",
        !peers.is_empty(),
        format!("{} peer node(s) connected", peers.len()),
        Some(
            "not connected to any school: join a network with an invite token \
             (staffroom network join TOKEN), or dial a node you know (staffroom dial ADDR)"
                .into(),
        ),
    ));
    for p in &status.explicit_peers {
        let detail = match (&p.last_error, p.connected) {
            (_, true) => format!("{}: connected", p.addr),
            (Some(e), false) => format!("{}: {e}", p.addr),
            (None, false) => format!("{}: not connected yet", p.addr),
        };
        let advice = match &p.last_error {
            Some(e) if e.contains("not the peer") => {
                "that address now answers as another node: ask its school for its current address"
            }
            _ => {
                "check that the node runs, that the address is right, and that its firewall \
                 lets TCP in; this node keeps retrying, less and less often"
            }
        };
        out.push(finding(
            "known peer",
            p.connected,
            detail,
            Some(advice.into()),
        ));
    }
    for n in networks {
        let sharing = peers.iter().filter(|p| p.networks.contains(&n.id)).count();
        out.push(finding(
            "network",
            sharing > 0,
            format!("{:?}: {sharing} connected member node(s)", n.name),
            Some(
                "no connected node shares this network: what is written here waits until one \
                 connects (ask a member school for their node's address, or check `known peer` \
                 above)"
                    .into(),
            ),
        ));
    }
    out.push(storage(&status.problems));
    out.push(reachability(status));
    out.push(connections(peers, &listen_port(status)));
    out.extend(clock(peers));
    let blocked = peers.iter().filter(|p| p.blocked).count();
    out.push(finding(
        "misbehaving peers",
        blocked == 0,
        format!("{blocked} peer(s) blocked for sending invalid data"),
        Some("a blocked peer sent entries that break the rules; its school should upgrade or check its node".into()),
    ));
    out
}

/// The TCP port the node listens on, for advice ("4040" when it cannot tell).
/// The store's problems (a full disk, failing writes, damage found at start), each with what
/// to do.
fn storage(problems: &[staffroom_node::store::Problem]) -> Finding {
    let detail = match problems.is_empty() {
        true => "the store is healthy".to_owned(),
        false => problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let advice = problems.iter().find_map(|p| match p.code.as_str() {
        "disk_full" => Some("free space on the disk that holds the node's data directory: new entries are taken again at once"),
        "write_failed" => Some("check the disk (dmesg, smartctl), then restart the node"),
        "store_repaired" | "entries_lost" | "state_restored" => Some(
            "nothing to do if catch-up sync runs (see `network` above); if this happens again, \
             check the disk",
        ),
        _ => None,
    });
    finding(
        "storage",
        problems.is_empty(),
        detail,
        Some(advice.unwrap_or("see the node's log").into()),
    )
}

fn listen_port(status: &StatusResponse) -> String {
    let port = status.listen_addrs.iter().find_map(|a| {
        a.iter().find_map(|p| match p {
            staffroom_node::multiaddr::Protocol::Tcp(port) => Some(port.to_string()),
            _ => None,
        })
    });
    port.unwrap_or_else(|| "4040".into())
}

/// Whether other nodes can reach this one: directly, through relays, or not at all.
fn reachability(status: &StatusResponse) -> Finding {
    let reach = &status.reach;
    let list = |addrs: &[staffroom_node::Multiaddr]| {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reserved: Vec<String> = reach
        .relays
        .iter()
        .filter(|r| r.state == "reserved")
        .map(|r| r.peer_id.to_string())
        .collect();
    let (ok, detail) = match reach.nat {
        Nat::Public => (
            true,
            format!(
                "reachable from outside at {}{}",
                list(&reach.public_addrs),
                if reach.serving_relay {
                    "; relaying for member nodes"
                } else {
                    ""
                }
            ),
        ),
        Nat::Private if !reserved.is_empty() => (
            true,
            format!(
                "behind NAT; reachable through relay(s) {}",
                reserved.join(", ")
            ),
        ),
        Nat::Private => (
            false,
            "behind NAT or a firewall, and no relay reserved: peers cannot dial this node".into(),
        ),
        Nat::Unknown if !reserved.is_empty() => (
            true,
            format!(
                "not tested yet; reachable through relay(s) {}",
                reserved.join(", ")
            ),
        ),
        Nat::Unknown => (
            true,
            "not tested yet: a connected peer tests this node's addresses (AutoNAT)".into(),
        ),
    };
    let tests: Vec<String> = reach
        .tests
        .iter()
        .filter(|t| !t.reachable)
        .map(|t| t.addr.to_string())
        .collect();
    let detail = match tests.is_empty() || ok && reach.nat == Nat::Public {
        true => detail,
        false => format!("{detail} (peers could not dial {})", tests.join(", ")),
    };
    finding(
        "reachability",
        ok,
        detail,
        Some(format!(
            "forward TCP port {} on the school's router to this machine, or make sure \
                 a member node that is reachable from the internet is connected: it relays \
                 for you",
            listen_port(status)
        )),
    )
}

/// Peers by connection type: direct, punched through NAT, or relayed (limited and slower).
fn connections(peers: &[PeerInfo], port: &str) -> Finding {
    let count = |kind| peers.iter().filter(|p| p.connection == Some(kind)).count();
    let (direct, punched, relayed) = (
        count(ConnKind::Direct),
        count(ConnKind::Punched),
        count(ConnKind::Relayed),
    );
    finding(
        "connections",
        relayed == 0,
        format!("{direct} direct, {punched} hole-punched, {relayed} relayed"),
        Some(format!(
            "relayed connections are slower and end after the relay's limits (an hour, a \
                 GiB by default); hole punching fails when a router changes ports (symmetric \
                 NAT): forwarding TCP port {port} to this machine makes connections direct"
        )),
    )
}

/// This node's clock against its peers' (the median of their offsets, so one wrong peer
/// does not decide).
fn clock(peers: &[PeerInfo]) -> Option<Finding> {
    /// Beyond this, the difference is worth fixing (entries over ten minutes ahead are held).
    const OFFSET_WARN_MS: i64 = 60_000;
    let mut offsets: Vec<i64> = peers.iter().filter_map(|p| p.clock_offset_ms).collect();
    if offsets.is_empty() {
        return None;
    }
    offsets.sort_unstable();
    let median = offsets[offsets.len() / 2];
    let secs = median.unsigned_abs() as f64 / 1000.0;
    // Peers ahead of this node mean this node's clock is behind.
    let detail = match median {
        m if m > 0 => format!(
            "this node's clock is {secs:.1} s behind its peers' (median of {})",
            offsets.len()
        ),
        m if m < 0 => format!(
            "this node's clock is {secs:.1} s ahead of its peers' (median of {})",
            offsets.len()
        ),
        _ => format!(
            "this node's clock agrees with its peers' (median of {})",
            offsets.len()
        ),
    };
    Some(finding(
        "clock",
        median.abs() <= OFFSET_WARN_MS,
        detail,
        Some(
            "set the clock right and keep it so (timedatectl set-ntp true): entries dated \
             over 10 minutes ahead of a node's clock wait there, and a clock behind makes \
             this node's posts look old"
                .into(),
        ),
    ))
}

/// With no node running: whether its p2p ports are free for it.
fn offline(ctx: &Ctx, error: &anyhow::Error) -> Vec<Finding> {
    let mut out = vec![finding(
        "node",
        false,
        format!("cannot reach the node: {error:#}"),
        Some("start it with `staffroom node run` (the other checks need it running)".into()),
    )];
    if let Ok(config) = staffroom_node::config::NodeConfig::load(ctx.data.path(), None) {
        let held = staffroom_node::ports_in_use(&config.listen);
        let addrs: Vec<String> = config.listen.iter().map(|a| a.to_string()).collect();
        out.push(finding(
            "p2p port",
            held.is_empty(),
            match held.first() {
                None => format!("free: {}", addrs.join(", ")),
                Some(a) => format!("{a} is held by another program"),
            },
            Some(
                "another node or program holds the port: stop it, or give this node another \
                 port with --listen (and open that one in the firewall)"
                    .into(),
            ),
        ));
    }
    out
}

pub async fn doctor(ctx: &Ctx) -> anyhow::Result<()> {
    let checked = async {
        let api = ctx.api()?;
        let status = api.status().await?;
        let peers = api.peers().await?;
        let networks = api.networks().await?;
        anyhow::Ok(diagnose(&status, &peers, &networks))
    };
    // Only a node that is not there sends the doctor to the offline checks; any other
    // failure is the node's answer, and is reported as the error it is.
    let findings = match checked.await {
        Ok(findings) => findings,
        Err(e) => match e.downcast_ref::<ClientError>() {
            Some(ClientError::NotRunning { .. } | ClientError::NoNode { .. }) => offline(ctx, &e),
            _ => return Err(e),
        },
    };
    ctx.print(&findings, || {
        let mut text = String::new();
        for f in &findings {
            let mark = if f.ok { "ok  " } else { "FIX " };
            text.push_str(&format!("{mark} {:<18} {}\n", f.check, f.detail));
            if let Some(advice) = &f.advice {
                text.push_str(&format!("     {:<18} → {advice}\n", ""));
            }
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_node::net::ExplicitPeerInfo;
    use staffroom_protocol::NetworkId;

    fn status(listen: &str, explicit: Vec<ExplicitPeerInfo>) -> StatusResponse {
        StatusResponse {
            version: "0".into(),
            peer_id: staffroom_node::PeerId::random(),
            node_key: None,
            listen_addrs: vec![listen.parse().unwrap()],
            connected_peers: 0,
            explicit_peers: explicit,
            networks: 1,
            entries: 0,
            held_entries: 0,
            clock_ms: 0,
            file_bytes_max: 0,
            external_addrs: vec![],
            reach: Default::default(),
            problems: vec![],
            runtime_tasks: 0,
            gossip_copies_received: 0,
        }
    }

    fn peer(networks: Vec<NetworkId>) -> PeerInfo {
        PeerInfo {
            peer_id: staffroom_node::PeerId::random(),
            addresses: vec![],
            agent: None,
            protocols: vec![],
            networks,
            invalid_messages: 0,
            blocked: false,
            score: None,
            connection: Some(ConnKind::Direct),
            clock_offset_ms: None,
        }
    }

    fn network(n: u8) -> NetworkRecord {
        NetworkRecord {
            id: NetworkId([n; 32]),
            name: format!("Net {n}"),
            joined_at_ms: 0,
        }
    }

    #[test]
    fn an_isolated_loopback_node_is_told_what_to_fix() {
        let failing = ExplicitPeerInfo {
            addr: "/ip4/192.0.2.1/tcp/4040".parse().unwrap(),
            peer_id: None,
            connected: false,
            last_error: Some("unreachable: connection refused".into()),
        };
        let found = diagnose(
            &status("/ip4/127.0.0.1/tcp/4040", vec![failing]),
            &[],
            &[network(1)],
        );
        let failed: Vec<&str> = found.iter().filter(|f| !f.ok).map(|f| f.check).collect();
        assert_eq!(failed, ["listening", "peers", "known peer", "network"]);
        assert!(found.iter().filter(|f| !f.ok).all(|f| f.advice.is_some()));
        assert!(found[2].detail.contains("connection refused"));
    }

    #[test]
    fn nat_relays_connection_types_and_clocks_are_diagnosed() {
        use staffroom_node::net::reach::{AddressTest, RelayInfo};
        let mut s = status("/ip4/0.0.0.0/tcp/4040", vec![]);
        s.reach.nat = Nat::Private;
        s.reach.tests = vec![AddressTest {
            addr: "/ip4/198.51.100.7/tcp/4040".parse().unwrap(),
            tested_by: staffroom_node::PeerId::random(),
            reachable: false,
        }];
        let mut relayed = peer(vec![NetworkId([1; 32])]);
        relayed.connection = Some(ConnKind::Relayed);
        let mut fast = peer(vec![]);
        fast.clock_offset_ms = Some(300_000);
        let mut slow = peer(vec![]);
        slow.clock_offset_ms = Some(290_000);
        let peers = [relayed, fast, slow];
        let found = diagnose(&s, &peers, &[network(1)]);
        let failed: Vec<&str> = found.iter().filter(|f| !f.ok).map(|f| f.check).collect();
        assert_eq!(failed, ["reachability", "connections", "clock"]);
        let by = |check| found.iter().find(|f| f.check == check).unwrap();
        assert!(by("reachability").detail.contains("198.51.100.7"));
        assert_eq!(
            by("connections").detail,
            "2 direct, 0 hole-punched, 1 relayed"
        );
        assert!(
            by("clock").detail.contains("300.0 s behind"),
            "{}",
            by("clock").detail
        );
        // With a relay reserved, a node behind NAT is reachable.
        s.reach.relays = vec![RelayInfo {
            peer_id: staffroom_node::PeerId::random(),
            addr: "/ip4/198.51.100.1/tcp/4040".parse().unwrap(),
            state: "reserved".into(),
        }];
        assert!(reachability(&s).ok);
        assert!(reachability(&s).detail.contains("through relay"));
    }

    #[test]
    fn a_connected_node_sharing_its_networks_is_fine() {
        let found = diagnose(
            &status("/ip4/0.0.0.0/tcp/4040", vec![]),
            &[peer(vec![NetworkId([1; 32])])],
            &[network(1)],
        );
        assert!(found.iter().all(|f| f.ok), "{found:?}");
        assert!(found.iter().all(|f| f.advice.is_none()));
    }

    #[test]
    fn a_full_disk_is_diagnosed_with_what_to_do() {
        let mut s = status("/ip4/0.0.0.0/tcp/4040", vec![]);
        s.problems.push(staffroom_node::store::Problem {
            code: "disk_full".into(),
            message: "the store's disk is full: 3 MiB free, 64 MiB kept in reserve".into(),
            since_ms: 1,
        });
        let found = diagnose(&s, &[peer(vec![NetworkId([1; 32])])], &[network(1)]);
        let storage = found.iter().find(|f| f.check == "storage").unwrap();
        assert!(!storage.ok);
        assert!(storage.detail.contains("3 MiB free"));
        assert!(storage.advice.as_deref().unwrap().contains("free space"));
    }
}
