//! `GET /n/{network}`: a network's stream — blogs, resources and enquiries, newest first,
//! a page at a time (`?before=` the last one shown), optionally of one kind (`?kind=`).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use staffroom_protocol::{Body, EntryId, EntryKind, NetworkId};

use super::{blocking, entry_item};
use crate::store::{ListFilter, StoredEntry};
use crate::thread::shown;
use crate::web::layout::{page, Head};
use crate::web::names::Names;
use crate::web::{Viewer, WebError, WebState};

/// Entries on one page.
pub const PAGE_ENTRIES: usize = 20;

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    kind: Option<String>,
    before: Option<String>,
}

/// The stream's tabs: query value, label, kind.
const TABS: [(&str, &str, Option<EntryKind>); 4] = [
    ("", "Everything", None),
    ("blogs", "Blogs", Some(EntryKind::BlogPost)),
    ("resources", "Resources", Some(EntryKind::Resource)),
    ("enquiries", "Enquiries", Some(EntryKind::Enquiry)),
];

pub async fn stream(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(network): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Result<Response, WebError> {
    let network: NetworkId = network.parse().map_err(|_| WebError::not_found())?;
    let tab = TABS
        .iter()
        .find(|(value, _, _)| *value == q.kind.as_deref().unwrap_or(""))
        .ok_or_else(|| WebError::bad_request("There is no such kind of entry to show."))?;
    let before = q.before.as_deref().map(parse_cursor).transpose()?;
    let (ingest, v) = (s.ingest.clone(), viewer.clone());
    let kind = tab.2;
    let (entries, next, name, rendered) = blocking(move || {
        if !v.sees(&ingest, &network)? {
            return Err(WebError::not_found());
        }
        let (entries, next) = page_of(&ingest, &v, network, kind, before)?;
        let mut names = Names::new(&ingest, &v);
        let rendered: Vec<_> = entries
            .iter()
            .map(|e| entry_item(e, &mut names, false))
            .collect();
        Ok((entries.len(), next, names.network(&network), rendered))
    })
    .await?;
    let here = format!("/n/{network}");
    let main = html! {
        h1 { (name) }
        @if viewer.teacher().is_some() { p { a.button href={ (here) "/write" } { "Write something" } } }
        form.search method="get" action="/search" role="search" {
            input type="hidden" name="network" value=(network);
            label for="q" class="skip" { "Search this network" }
            input #q type="search" name="q" placeholder="Search this network";
            button type="submit" { "Search" }
        }
        nav.tabs aria-label="Kinds of entry" {
            ul {
                @for (value, label, _) in TABS {
                    li {
                        @let href = if value.is_empty() { here.clone() } else { format!("{here}?kind={value}") };
                        @if value == tab.0 { a href=(href) aria-current="page" { (label) } }
                        @else { a href=(href) { (label) } }
                    }
                }
            }
        }
        @if entries == 0 {
            p { "Nothing here yet." }
        } @else {
            ul.entries { @for item in &rendered { (item) } }
        }
        @if let Some((ms, id)) = next {
            nav.pager aria-label="Pages" {
                ul { li { a href={ (here) "?" @if !tab.0.is_empty() { "kind=" (tab.0) "&" } "before=" (ms) "-" (id) } rel="next" { "Older entries" } } }
            }
        }
    };
    let head = Head {
        title: name.clone(),
        description: format!("What teachers share in {name}: blogs, resources and enquiries."),
        url: format!("{}{here}", s.shared.origin),
        og_type: "website",
        feed: Some(format!("{here}/feed.atom")),
        writes: false,
        json_ld: Some(serde_json::json!({
            "@context": "https://schema.org",
            "@type": "CollectionPage",
            "name": name,
            "url": format!("{}{here}", s.shared.origin),
        })),
    };
    Ok(page(&viewer, head, main))
}

/// Where the next page starts: the last entry looked at, by time then id.
type Cursor = (u64, EntryId);

/// Entries read per listing while a page fills.
const BATCH_ENTRIES: usize = 2 * PAGE_ENTRIES;
/// Entries a page looks at most (comments and notes are skipped, not shown): past it, the
/// page ends early with a link on, so no request reads a whole network.
const LOOKED_MAX: usize = 20 * PAGE_ENTRIES;

/// One page of the stream, and the cursor of the next when there is more to show.
fn page_of(
    ingest: &crate::ingest::Ingest,
    viewer: &Viewer,
    network: NetworkId,
    kind: Option<EntryKind>,
    before: Option<Cursor>,
) -> Result<(Vec<StoredEntry>, Option<Cursor>), WebError> {
    // A private network's content is all sealed (kind 10) whatever it holds: a listing by
    // kind would look among the newest sealed entries only, so the kind is judged here, on
    // what each opens to, within the same bounds.
    let private = ingest
        .rosters()
        .get(&network)?
        .policy
        .is_some_and(|p| p.is_private());
    let listed_kind = kind.filter(|_| !private);
    let wanted =
        |stored: &StoredEntry| kind.is_none_or(|k| shown(stored).kind().family() == k.family());
    let (mut cursor, mut looked, mut kept) = (before, 0usize, Vec::new());
    loop {
        let filter = ListFilter {
            network: Some(network),
            kind: listed_kind,
            before: cursor,
            limit: Some(BATCH_ENTRIES),
            ..ListFilter::default()
        };
        let listed = crate::private::seal::list_for(ingest, &viewer.reader(), &filter)?;
        let full = listed.len() >= BATCH_ENTRIES;
        for stored in listed {
            looked += 1;
            cursor = Some((stored.entry.created_at_ms, stored.id));
            if top_level(&stored) && wanted(&stored) && viewer.reads(ingest, &stored)? {
                kept.push(stored);
                // One past the page shows there is a next one (none links to an empty page).
                if kept.len() > PAGE_ENTRIES {
                    kept.truncate(PAGE_ENTRIES);
                    let last = kept.last().map(|e| (e.entry.created_at_ms, e.id));
                    return Ok((kept, last));
                }
            }
        }
        match (full, looked >= LOOKED_MAX) {
            (false, _) => return Ok((kept, None)),
            (true, true) => return Ok((kept, cursor)),
            (true, false) => {}
        }
    }
}

/// What a stream shows: blogs, resources and enquiries, not the comments and notes on them.
fn top_level(stored: &StoredEntry) -> bool {
    matches!(
        shown(stored),
        Body::BlogPost(_) | Body::Resource(_) | Body::Enquiry(_)
    )
}

/// `<ms>-<id hex>`.
fn parse_cursor(text: &str) -> Result<Cursor, WebError> {
    let bad = || WebError::bad_request("That page address is not one this site makes.");
    let (ms, id) = text.split_once('-').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}
