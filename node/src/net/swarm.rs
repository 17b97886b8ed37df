//! Building the swarm: TCP with Noise and Yamux, the behaviour, and listeners that have
//! reported their addresses before the node says it is up.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};

use super::behaviour::{Behaviour, BehaviourConfig};
use super::client::NetError;

/// Connections stay open this long without traffic: school networks are quiet.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long start-up waits for listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

pub fn build(keypair: Keypair, config: &BehaviourConfig) -> Result<Swarm<Behaviour>, NetError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Listen {
            addr: "tcp".into(),
            reason: e.to_string(),
        })?
        // Relayed connections are authenticated and multiplexed end to end like direct ones.
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Listen {
            addr: "relay".into(),
            reason: e.to_string(),
        })?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, config))
        .map_err(|e| NetError::Listen {
            addr: "behaviour".into(),
            reason: e.to_string(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

/// Starts every listener and waits until each has reported at least one address, so callers
/// (and tests using port 0) learn the real ports.
pub async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addrs: &[Multiaddr],
) -> Result<Vec<Multiaddr>, NetError> {
    let mut waiting = HashSet::new();
    for addr in addrs {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        waiting.insert(id);
    }
    let mut found = Vec::new();
    let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
    tokio::pin!(deadline);
    while !waiting.is_empty() {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    waiting.remove(&listener_id);
                    found.push(address);
                }
                SwarmEvent::ListenerClosed { reason: Err(e), .. }
                | SwarmEvent::ListenerError { error: e, .. } => {
                    return Err(NetError::Listen { addr: format!("{addrs:?}"), reason: e.to_string() });
                }
                _ => {}
            },
            _ = &mut deadline => {
                return Err(NetError::Listen { addr: format!("{addrs:?}"), reason: "timed out".into() });
            }
        }
    }
    Ok(found)
}
