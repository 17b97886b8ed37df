//! Search, and listings by the filters only the node's search index applies (tags, subjects,
//! key stages, licences, author names, dates): results a page at a time with a clear "N more",
//! facet counts under `--json`.

use anyhow::Context;
use staffroom_node::api::search::{SearchQuery, SearchView};
use staffroom_node::api::ApiClient;
use staffroom_protocol::EntryKind;

use super::{ids, resolve_network, Ctx};
use crate::args::{Filters, SearchArgs};
use crate::{render, teacher};

pub async fn search(ctx: &Ctx, args: SearchArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let mut query = query_for(&args.filters)?;
    query.q = args.words.join(" ");
    query.network = match &args.scope.network {
        Some(n) => Some(resolve_network(&api, Some(n)).await?),
        None => None,
    };
    query.kind = args.scope.kind;
    query.author = author(ctx, &api, args.scope.author.as_deref()).await?;
    query.limit = Some(args.limit.into());
    query.offset = args.offset.into();
    let view = api.search(&query).await?;
    let names = super::read::names(&api, view.entries.iter().map(|e| e.entry.network)).await;
    ctx.print(&view, || page_text(&view, &names, "No entries match."))
}

/// The query for `filters`, the rest left for the caller.
pub fn query_for(filters: &Filters) -> anyhow::Result<SearchQuery> {
    let zone = jiff::tz::TimeZone::system();
    let since_ms = match &filters.since {
        Some(text) => Some(date_arg(text, &zone, Edge::Start).context("--since")?),
        None => None,
    };
    let until_ms = match &filters.until {
        Some(text) => Some(date_arg(text, &zone, Edge::End).context("--until")?),
        None => None,
    };
    Ok(SearchQuery {
        tag: filters.tag.clone(),
        subject: filters.subject.clone(),
        key_stage: filters.key_stage.clone(),
        licence: filters.licence.clone(),
        author_name: filters.author_name.clone(),
        since_ms,
        until_ms,
        ..SearchQuery::default()
    })
}

/// An author as typed: "me", or a key or its first characters.
pub async fn author(
    ctx: &Ctx,
    api: &ApiClient,
    text: Option<&str>,
) -> anyhow::Result<Option<staffroom_protocol::AuthorId>> {
    Ok(match text {
        Some("me") => Some(teacher::author_id(&teacher::load(&ctx.data)?)),
        Some(text) => Some(ids::author(api, text).await?),
        None => None,
    })
}

/// Whether `list` with this kind goes through the search index (which holds content only).
pub fn indexed_kind(kind: Option<EntryKind>) -> bool {
    kind.is_none_or(|k| k.is_content() && k != EntryKind::Sealed)
}

/// A page of results as text: one row each, then how many more there are and how to see them.
pub fn page_text(view: &SearchView, names: &render::Names, empty: &str) -> String {
    let mut out = String::new();
    if view.behind {
        out.push_str(
            "(This node's search index is still catching up: the newest entries may be missing.)\n",
        );
    }
    if view.entries.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    for e in &view.entries {
        out.push_str(&render::row(e, names));
        out.push('\n');
    }
    if view.more > 0 {
        let next = view.offset + view.entries.len();
        out.push_str(&format!(
            "… {} more (of {}): add --offset {next} for the next page\n",
            view.more, view.total
        ));
    }
    out
}

#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

/// A date as typed, in ms since the Unix epoch: a day (`2026-03-01`, in `zone`) starts at its
/// first moment, or, as an end, includes the whole day; an RFC 3339 time is taken as it is.
fn date_arg(text: &str, zone: &jiff::tz::TimeZone, edge: Edge) -> anyhow::Result<u64> {
    let text = text.trim();
    let at = if let Ok(day) = text.parse::<jiff::civil::Date>() {
        let day = match edge {
            Edge::Start => day,
            Edge::End => day.tomorrow()?,
        };
        day.to_zoned(zone.clone())?.timestamp()
    } else {
        text.parse::<jiff::Timestamp>().with_context(|| {
            format!("{text:?} is not a date: give a day as 2026-03-01, or a time as 2026-03-01T09:00:00Z")
        })?
    };
    u64::try_from(at.as_millisecond())
        .with_context(|| format!("{text:?} is before 1970, when no entry was written"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_run_from_their_first_moment_to_the_next_day_in_the_local_zone() {
        let zone = jiff::tz::TimeZone::get("Europe/London").unwrap();
        // 1 July is in British Summer Time: midnight is 23:00 UTC the day before.
        let start = date_arg("2026-07-01", &zone, Edge::Start).unwrap();
        let end = date_arg("2026-07-01", &zone, Edge::End).unwrap();
        assert_eq!(start, 1_782_860_400_000);
        assert_eq!(end - start, 86_400_000);
        let exact = date_arg("2026-07-01T00:00:00Z", &zone, Edge::End).unwrap();
        assert_eq!(exact, start + 3_600_000);
        let wrong = date_arg("1st July", &zone, Edge::Start).unwrap_err();
        assert!(format!("{wrong:#}").contains("is not a date"), "{wrong:#}");
        assert!(date_arg("1969-12-31", &jiff::tz::TimeZone::UTC, Edge::Start).is_err());
    }
}
