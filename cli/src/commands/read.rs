//! Reading: list, show, peers, status; and dialling a peer.

use anyhow::Context;
use staffroom_node::store::ListFilter;
use staffroom_protocol::{AuthorId, EntryId};

use super::{resolve_network, Ctx};
use crate::args::ListArgs;
use crate::{render, teacher};

pub async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = match &args.network {
        Some(n) => Some(resolve_network(&api, Some(n)).await?),
        None => None,
    };
    let author = match args.author.as_deref() {
        Some("me") => Some(teacher::author_id(&teacher::load(&ctx.data)?)),
        Some(text) => Some(text.parse::<AuthorId>()?),
        None => None,
    };
    let entry_id = |text: &Option<String>| -> anyhow::Result<Option<EntryId>> {
        text.as_deref()
            .map(|t| t.parse().context("give the full entry id"))
            .transpose()
    };
    let filter = ListFilter {
        network,
        kind: args.kind,
        author,
        enquiry: entry_id(&args.enquiry)?,
        reply_to: entry_id(&args.comments_on)?,
        all_versions: args.all_versions,
        limit: Some(args.limit.into()),
    };
    let entries = api.list(&filter).await?;
    ctx.print(&entries, || {
        if entries.is_empty() {
            return "No entries.\n".into();
        }
        entries.iter().map(|e| render::row(e) + "\n").collect()
    })
}

pub async fn show(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let id: EntryId = id
        .parse()
        .context("show takes an entry's full id (see `staffroom list --json`)")?;
    let view = ctx.api()?.get(&id).await?;
    // Check the author's signature here too: trust the author's key, not the node.
    let entry = &view.stored.entry;
    let signature_ok = entry.verify_signature().is_ok() && entry.id() == id;
    ctx.print(&view, || render::full(&view, signature_ok))
}

pub async fn peers(ctx: &Ctx) -> anyhow::Result<()> {
    let peers = ctx.api()?.peers().await?;
    ctx.print(&peers, || {
        if peers.is_empty() {
            return "No peers connected.\n".into();
        }
        peers
            .iter()
            .map(|p| {
                let addr = p.addresses.first().map(String::as_str).unwrap_or("?");
                let agent = p.agent.as_deref().unwrap_or("unknown");
                let blocked = if p.blocked { "  BLOCKED" } else { "" };
                format!(
                    "{}  {addr}  {agent}  networks: {}  invalid: {}{blocked}\n",
                    p.peer_id,
                    p.networks.len(),
                    p.invalid_messages
                )
            })
            .collect()
    })
}

pub async fn dial(ctx: &Ctx, addr: &str) -> anyhow::Result<()> {
    ctx.api()?.dial(addr).await?;
    ctx.print(&serde_json::json!({ "dialing": addr }), || {
        format!("Dialling {addr}.\n")
    })
}

pub async fn status(ctx: &Ctx) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let status = api.status().await?;
    ctx.print(&status, || {
        let mut text = format!(
            "Staffroom node {} (version {})\nAPI:      {}\nEntries:  {}\nNetworks: {}\nPeers:    {}\nListening:\n",
            status.peer_id, status.version, api.addr(), status.entries, status.networks, status.connected_peers
        );
        for a in &status.listen_addrs {
            text.push_str(&format!("  {a}/p2p/{}\n", status.peer_id));
        }
        text
    })
}

pub async fn sync(ctx: &Ctx, network: Option<&str>) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = match network {
        Some(n) => Some(resolve_network(&api, Some(n)).await?),
        None => None,
    };
    let reports = api.sync(network).await?;
    ctx.print(&reports, || {
        if reports.is_empty() {
            return "No connected peer shares a network with this node.\n".into();
        }
        reports
            .iter()
            .map(|r| {
                let net = r.network.map(|n| n.short()).unwrap_or_default();
                let outcome = match &r.error {
                    None => format!(
                        "received {}, sent {} entries in {} round(s); {} bytes out, {} in; {} ms",
                        r.entries_received,
                        r.entries_sent,
                        r.rounds,
                        r.bytes_sent,
                        r.bytes_received,
                        r.duration_ms
                    ),
                    Some(e) => format!("failed: {e}"),
                };
                format!("{}  network {net}  {outcome}\n", r.peer)
            })
            .collect()
    })
}
