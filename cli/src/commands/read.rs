//! Reading: list, show, peers, status; and dialling a peer.

use anyhow::bail;
use staffroom_node::store::ListFilter;

use super::{ids, resolve_network, Ctx};
use crate::args::ListArgs;
use crate::render;

pub async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = match &args.scope.network {
        Some(n) => Some(resolve_network(&api, Some(n)).await?),
        None => None,
    };
    let author = super::search::author(ctx, &api, args.scope.author.as_deref()).await?;
    let threaded = args.enquiry.is_some() || args.comments_on.is_some() || args.all_versions;
    if !threaded && super::search::indexed_kind(args.scope.kind) {
        return list_indexed(ctx, &api, args, network, author).await;
    }
    if args.filters.any() {
        bail!(
            "--tag, --subject, --key-stage, --licence, --author-name, --since and --until \
             apply to content listed by itself, not with --enquiry, --comments-on, \
             --all-versions or --kind {}",
            args.scope.kind.map_or("", |k| k.name())
        );
    }
    if args.offset > 0 {
        bail!("--offset pages through content listed by itself, not threads or versions");
    }
    let enquiry = match &args.enquiry {
        Some(text) => Some(ids::entry(&api, text, "enquiry").await?),
        None => None,
    };
    let reply_to = match &args.comments_on {
        Some(text) => Some(ids::entry(&api, text, "entry").await?),
        None => None,
    };
    let filter = ListFilter {
        network,
        kind: args.scope.kind,
        author,
        enquiry,
        reply_to,
        all_versions: args.all_versions,
        limit: Some(args.limit.into()),
        before: None,
    };
    let entries = api.list(&filter).await?;
    let names = if ctx.json {
        render::Names::new()
    } else {
        names(&api, entries.iter().map(|e| e.entry.network)).await
    };
    ctx.print(&entries, || {
        if entries.is_empty() {
            return "No entries.\n".into();
        }
        entries
            .iter()
            .map(|e| render::row(e, &names) + "\n")
            .collect()
    })
}

/// `list` through the node's search index: newest first, every filter, and how many more.
/// `--json` prints the entries alone, as the other listings do.
async fn list_indexed(
    ctx: &Ctx,
    api: &staffroom_node::api::ApiClient,
    args: ListArgs,
    network: Option<staffroom_protocol::NetworkId>,
    author: Option<staffroom_protocol::AuthorId>,
) -> anyhow::Result<()> {
    let mut query = super::search::query_for(&args.filters)?;
    query.network = network;
    query.kind = args.scope.kind;
    query.author = author;
    query.limit = Some(args.limit.into());
    query.offset = args.offset.into();
    let view = api.search(&query).await?;
    let names = match ctx.json {
        true => render::Names::new(),
        false => names(api, view.entries.iter().map(|e| e.entry.network)).await,
    };
    ctx.print(&view.entries, || {
        super::search::page_text(&view, &names, "No entries.")
    })
}

pub async fn show(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let id = ids::entry(&api, id, "entry").await?;
    let thread = api.thread(&id).await?;
    // Check the author's signature here too: trust the author's key, not the node.
    let entry = &thread.view.stored.entry;
    let signature_ok = entry.verify_signature().is_ok() && entry.id() == id;
    let names = names(&api, std::iter::once(entry.network)).await;
    let styled = crate::markdown::styled_stdout();
    ctx.print(&thread, || {
        render::thread(&thread, signature_ok, &names, styled)
    })
}

/// The profile names of the authors in these networks (best effort: a network whose members
/// cannot be read just shows keys).
pub(super) async fn names(
    api: &staffroom_node::api::ApiClient,
    networks: impl Iterator<Item = staffroom_protocol::NetworkId>,
) -> render::Names {
    let networks: std::collections::BTreeSet<_> = networks.collect();
    let mut names = render::Names::new();
    for network in networks {
        let Ok(view) = api.members(&network).await else {
            continue;
        };
        for (author, profile) in view.profiles {
            let name = match profile.school.as_str() {
                "" => profile.display_name,
                school => format!("{} ({school})", profile.display_name),
            };
            names.insert(author, name);
        }
    }
    names
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
                let addr = p.addresses.first().map_or("?".into(), |a| a.to_string());
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

/// Dials a peer and reports how it went; the node keeps it in its peer book either way.
pub async fn dial(ctx: &Ctx, addr: &str) -> anyhow::Result<()> {
    let reply = ctx.api()?.dial(addr).await?;
    ctx.print(&reply, || {
        format!(
            "Connected to {} at {addr}; this node will keep reconnecting to it.\n",
            reply.peer_id
        )
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
        text.push_str(&render_health(&status.problems));
        text
    })
}

/// `Health: ok`, or `DEGRADED` with each problem and what to do about it.
fn render_health(problems: &[staffroom_node::store::Problem]) -> String {
    if problems.is_empty() {
        return "Health:   ok\n".into();
    }
    let mut text = "Health:   DEGRADED\n".to_owned();
    for problem in problems {
        text.push_str(&format!("  {} ({})\n", problem.message, problem.code));
    }
    text
}

/// Syncs now and says what happened: each session's outcome, or why there was none. Exits
/// with an error unless every session succeeded.
pub async fn sync(ctx: &Ctx, network: Option<&str>) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = match network {
        Some(n) => Some(resolve_network(&api, Some(n)).await?),
        None => None,
    };
    let report = api.sync(network).await?;
    let explicit = if report.sessions.is_empty() {
        api.status().await?.explicit_peers
    } else {
        Vec::new()
    };
    ctx.print(&report, || render::sync(&report, &explicit))?;
    let failed = report.sessions.iter().filter(|s| s.error.is_some()).count();
    if report.sessions.is_empty() {
        bail!("nothing was synced: no connected peer shares a network with this node");
    }
    if failed > 0 {
        bail!(
            "sync failed with {failed} of {} peers",
            report.sessions.len()
        );
    }
    Ok(())
}
