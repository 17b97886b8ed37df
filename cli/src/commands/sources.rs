//! A resource's sources (kind 13, `docs/protocol.md` "Sources"): `resource add --based-on`
//! and `resource sources`. Each statement replaces the one before; its author must be the
//! resource's, or no node shows it.

use anyhow::{bail, Context};
use staffroom_node::api::ApiClient;
use staffroom_node::ingest::now_ms;
use staffroom_protocol::limits::{SOURCE_ENTRIES_COUNT_MAX, SOURCE_LINKS_COUNT_MAX};
use staffroom_protocol::{verify_entry, Body, Draft, Entry, EntryId, EntryKind, Sources};

use super::Ctx;
use crate::teacher;

/// Sources as given on the command line: entry ids (or their first characters) and web
/// addresses, sorted and each once as the protocol wants them.
pub struct Given {
    entries: Vec<EntryId>,
    links: Vec<String>,
}

/// Reads `given` (ids or prefixes, and http(s) addresses), asking the node to resolve prefixes.
pub async fn parse(api: &ApiClient, given: &[String]) -> anyhow::Result<Given> {
    let mut out = Given {
        entries: Vec::new(),
        links: Vec::new(),
    };
    for source in given {
        if source.starts_with("http://") || source.starts_with("https://") {
            staffroom_protocol::sources::check_link(source)
                .with_context(|| format!("source {source:?} is not a usable web address"))?;
            if !out.links.contains(source) {
                out.links.push(source.clone());
            }
        } else {
            out.entries
                .push(super::ids::entry(api, source, "source").await?);
        }
    }
    out.entries.sort();
    out.entries.dedup();
    if out.entries.len() > SOURCE_ENTRIES_COUNT_MAX || out.links.len() > SOURCE_LINKS_COUNT_MAX {
        bail!(
            "a resource names at most {SOURCE_ENTRIES_COUNT_MAX} entries and \
             {SOURCE_LINKS_COUNT_MAX} web addresses as its sources"
        );
    }
    Ok(out)
}

/// `resource sources ID [--based-on SOURCE]...`: states what one of the teacher's resources
/// is based on (nothing, when no source is given).
pub async fn command(ctx: &Ctx, id: &str, based_on: &[String]) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let id = super::ids::entry(&api, id, "resource").await?;
    let view = api.get(&id).await?;
    let stored = view.stored;
    let key = teacher::load(&ctx.data)?;
    if stored.entry.author != teacher::author_id(&key) {
        bail!(
            "only a resource's author states its sources ({} was written by {})",
            stored.id.short(),
            stored.entry.author.short()
        );
    }
    match stored.entry.kind() {
        EntryKind::Resource | EntryKind::ResourceWithFiles => {}
        EntryKind::Sealed => bail!(
            "a private network's resources cannot name sources: they would travel in the clear"
        ),
        other => bail!(
            "{} is a {}, not a resource",
            stored.id.short(),
            other.name()
        ),
    }
    let given = parse(&api, based_on).await?;
    state(ctx, &stored.entry, given).await
}

/// Signs and submits the statement that `resource` is based on `given`.
pub async fn state(ctx: &Ctx, resource: &Entry, given: Given) -> anyhow::Result<()> {
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let named = given.entries.len() + given.links.len();
    let body = Body::Sources(Sources {
        resource: resource.id(),
        entries: given.entries,
        links: given.links,
    });
    let entry = Draft {
        network: resource.network,
        created_at_ms: now_ms(),
        refs: Vec::new(),
        body,
    }
    .sign(&key);
    verify_entry(&entry.encode(), now_ms())?;
    let reply = api.submit(entry.encode()).await?;
    ctx.print(&reply, || match named {
        0 => format!("{}: now based on nothing\n", resource.id().short()),
        n => format!(
            "{}: based on {n} source(s), stated in {}\n",
            resource.id().short(),
            reply.id.short()
        ),
    })
}
