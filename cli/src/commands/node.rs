//! `staffroom init` and `staffroom node run`.

use std::io::IsTerminal;

use anyhow::Context;
use staffroom_node::config::NodeConfig;

use super::Ctx;
use crate::args::NodeRunArgs;
use crate::teacher;

const CONFIG_TEMPLATE: &str = r#"# Staffroom node configuration. Every setting is optional; flags override it.

# libp2p addresses to listen on.
# listen = ["/ip4/0.0.0.0/tcp/4040"]

# Peer nodes to dial and keep connected, e.g. another school's node.
# peers = ["/ip4/192.0.2.10/tcp/4040/p2p/12D3KooW..."]

# The local client API used by the `staffroom` command. Keep it on loopback.
# api_listen = "127.0.0.1:4041"

# Find other schools' nodes on the local network.
# mdns = true

# Find your networks' other member nodes through the Staffroom DHT, from any node you know.
# dht = true

# Catch-up sync: as soon as a peer shares a network, and every interval_secs (0: never).
# [sync]
# on_connect = true
# interval_secs = 60
# request_timeout_secs = 30   # a peer that stalls this long fails its session

# Relays for schools behind NAT (see docs/nat-traversal.md).
# [relay]
# serve = true                # relay for member nodes once peers confirm this node reachable
# reserve = true              # hold relay reservations while this node is not reachable
# circuit_secs = 3600         # one relayed connection's lifetime
# circuit_mib = 1024          # bytes per relayed connection, both ways together
# circuits_max = 16
# circuits_per_peer_max = 4
# reservations_max = 128
# private_wan = false         # count private addresses (a private WAN between schools)

# The web pages teachers read in a browser (sign in with `staffroom web login`). Loopback by
# default; to serve the school's network, put them behind a reverse proxy that does TLS and
# give the address browsers use as public_url (session cookies are then Secure).
# [web]
# enabled = true
# listen = "127.0.0.1:4042"
# public_url = "https://staffroom.school.example"
# sign_in_link_seconds = 600  # a sign-in link works once, within this
# session_minutes = 480       # then the browser stays signed in this long

# The store. Below reserve_mib free on its disk, new entries are refused (and the node says
# it is degraded) until space is freed; nothing already stored is touched.
# [store]
# reserve_mib = 64
"#;

pub fn init(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = ctx.data.path();
    staffroom_node::secret_file::private_dir(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let key = teacher::create(&ctx.data)?;
    let config = ctx.data.config_file();
    if !config.exists() {
        std::fs::write(&config, CONFIG_TEMPLATE)
            .with_context(|| format!("cannot write {}", config.display()))?;
    }
    let author = teacher::author_id(&key);
    let value = serde_json::json!({ "author": author, "data_dir": dir, "config": config });
    ctx.print(&value, || {
        format!(
            "Created your teacher key in {}.\nYour author id: {author}\nNext: `staffroom node run`, then `staffroom network create NAME`.\n",
            dir.display()
        )
    })
}

pub async fn run(ctx: &Ctx, args: NodeRunArgs) -> anyhow::Result<()> {
    init_tracing(ctx.json);
    let mut config = NodeConfig::load(ctx.data.path(), args.config.as_deref())?;
    if !args.listen.is_empty() {
        config.listen = parse_addrs(&args.listen, "--listen")?;
    }
    config.peers.extend(parse_addrs(&args.peer, "--peer")?);
    if let Some(api) = args.api {
        config.api_listen = api;
    }
    if let Some(web) = args.web {
        config.web.listen = web;
    }
    if args.no_mdns {
        config.mdns = false;
    }
    config.check()?;
    staffroom_node::run(config, shutdown_signal()).await?;
    Ok(())
}

fn parse_addrs(texts: &[String], flag: &str) -> anyhow::Result<Vec<staffroom_node::Multiaddr>> {
    texts
        .iter()
        .map(|t| {
            t.parse()
                .with_context(|| format!("{flag} {t:?} is not a multiaddr"))
        })
        .collect()
}

/// Logs to stderr, one JSON object a line under `--json` (for journald or a log shipper);
/// `RUST_LOG` chooses what (default: info for Staffroom, warnings for libp2p).
fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match json {
        true => logs.json().with_current_span(true).try_init(),
        false => logs.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
