//! Taking entries back: `delete` (the author's own, or a facilitator's removal of another's),
//! `hide` (facilitators), both signed erasure entries that reach every node; and
//! `node purge`, the school's admin deleting an entry from this node alone.

use anyhow::Context;
use staffroom_node::ingest::now_ms;
use staffroom_protocol::*;

use super::Ctx;
use crate::args::Reason;
use crate::teacher;

impl From<Reason> for ErasureReason {
    fn from(r: Reason) -> ErasureReason {
        match r {
            Reason::Mistake => ErasureReason::Mistake,
            Reason::PersonalData => ErasureReason::PersonalData,
            Reason::Copyright => ErasureReason::Copyright,
            Reason::Other => ErasureReason::Other,
        }
    }
}

/// Deletes the teacher's own entry, or (as a facilitator) removes another's: every version.
pub async fn delete(ctx: &Ctx, id: &str, reason: Reason) -> anyhow::Result<()> {
    let me = teacher::author_id(&teacher::load(&ctx.data)?);
    let api = ctx.api()?;
    let target = super::ids::entry(&api, id, "entry").await?;
    let view = api.get(&target).await?;
    let action = match view.stored.entry.author == me {
        true => ErasureAction::Delete,
        false => ErasureAction::Remove,
    };
    erase(ctx, target, action, reason.into()).await
}

/// Hides an entry (every version) from listings on every node: facilitators only.
pub async fn hide(ctx: &Ctx, id: &str, reason: Reason) -> anyhow::Result<()> {
    let target = super::ids::entry(&ctx.api()?, id, "entry").await?;
    erase(ctx, target, ErasureAction::Hide, reason.into()).await
}

/// The sources statements (kind 13) `resource`'s author made about any of `versions`.
async fn sources_about(
    api: &staffroom_node::api::ApiClient,
    resource: &Entry,
    versions: &[EntryId],
) -> anyhow::Result<Vec<EntryId>> {
    let filter = staffroom_node::store::ListFilter {
        network: Some(resource.network),
        kind: Some(EntryKind::Sources),
        author: Some(resource.author),
        limit: Some(staffroom_node::store::LIST_LIMIT_MAX),
        ..Default::default()
    };
    let listed = api.list(&filter).await?;
    Ok(listed
        .into_iter()
        .filter(|s| matches!(&s.entry.body, Body::Sources(b) if versions.contains(&b.resource)))
        .map(|s| s.id)
        .collect())
}

/// Signs and submits one erasure per version of `target`, the original first (and, for a
/// resource deleted or removed, per sources statement about it).
async fn erase(
    ctx: &Ctx,
    target: EntryId,
    action: ErasureAction,
    reason: ErasureReason,
) -> anyhow::Result<()> {
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let view = api.get(&target).await?;
    let mut versions = match view.versions.is_empty() {
        true => vec![target],
        false => view.versions.clone(),
    };
    // A resource's sources statements name it and carry its author's links: they go with it.
    if action.purges() && view.stored.entry.kind().family() == EntryKind::Resource {
        let statements = sources_about(&api, &view.stored.entry, &versions).await?;
        versions.extend(statements);
    }
    let mut erased = Vec::new();
    for version in versions {
        let entry = api.get(&version).await?.stored.entry;
        let erasure = Erasure::of(&entry, action, reason);
        let draft = Draft {
            network: entry.network,
            // Never dated before its target, even when the target's author's clock ran ahead.
            created_at_ms: now_ms().max(entry.created_at_ms),
            refs: Vec::new(),
            body: Body::Erasure(erasure),
        };
        let signed = draft.sign(&key);
        api.submit(signed.encode())
            .await
            .with_context(|| format!("cannot {} {}", action.name(), version.short()))?;
        erased.push(version);
    }
    ctx.print(
        &serde_json::json!({ "action": action.name(), "entries": erased }),
        || {
            let what = match action {
                ErasureAction::Delete => "Deleted",
                ErasureAction::Remove => "Removed",
                ErasureAction::Hide => "Hidden",
            };
            let reach = match action {
                ErasureAction::Hide => "it stays stored, but no node lists it",
                _ => "every node purges it and its files, and refuses it from now on",
            };
            format!(
                "{what} {} ({} version(s)): {reach}.\n",
                target.short(),
                erased.len()
            )
        },
    )
}

/// The school's admin purges an entry from this node only.
pub async fn purge(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let id = super::ids::entry(&api, id, "entry").await?;
    api.purge_entry(&id).await?;
    ctx.print(&serde_json::json!({ "purged": id }), || {
        format!(
            "Purged {} and its files from this node; it will not be stored here again. \
             Other nodes keep it.\n",
            id.short()
        )
    })
}
