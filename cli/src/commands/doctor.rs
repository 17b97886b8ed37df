//! `staffroom node doctor`: what stands between this node and other schools, and what to do
//! about each problem — from what the node reports (its addresses, the peers it keeps dialling
//! and why they fail, the peers connected and the networks they share). The checks are a pure
//! function of those reports, so they are tested without a node.

use serde::Serialize;
use staffroom_node::api::types::StatusResponse;
use staffroom_node::net::PeerInfo;
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
    out.push(finding(
        "listening",
        listening,
        format!("listening on {}", addrs.join(", ")),
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
    let blocked = peers.iter().filter(|p| p.blocked).count();
    out.push(finding(
        "misbehaving peers",
        blocked == 0,
        format!("{blocked} peer(s) blocked for sending invalid data"),
        Some("a blocked peer sent entries that break the rules; its school should upgrade or check its node".into()),
    ));
    out
}

pub async fn doctor(ctx: &Ctx) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let status = api.status().await?;
    let peers = api.peers().await?;
    let networks = api.networks().await?;
    let findings = diagnose(&status, &peers, &networks);
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
    fn a_connected_node_sharing_its_networks_is_fine() {
        let found = diagnose(
            &status("/ip4/0.0.0.0/tcp/4040", vec![]),
            &[peer(vec![NetworkId([1; 32])])],
            &[network(1)],
        );
        assert!(found.iter().all(|f| f.ok), "{found:?}");
        assert!(found.iter().all(|f| f.advice.is_none()));
    }
}
