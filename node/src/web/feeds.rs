//! Atom feeds (RFC 4287) of what a viewer may read: per network, author, tag and subject,
//! newest first, the newest `FEED_ENTRIES_MAX`. Each entry links to its page, carries its
//! text as sanitised HTML and, for a resource, a `rel="license"` link (RFC 4946) to its
//! licence. Built from the node's search (newest first without words), so a feed is what a
//! search with that filter shows.

use atom_syndication::{Content, Entry as AtomEntry, Feed, Link, Person, Text};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset};
use staffroom_protocol::{AuthorId, Body, NetworkId};

use super::markdown::render;
use super::names::Names;
use super::pages::{blocking, text_of, title_of};
use super::{Viewer, WebError, WebState};
use crate::api::search::SearchQuery;
use crate::store::StoredEntry;
use crate::thread::shown;

/// Entries in a feed at most.
pub const FEED_ENTRIES_MAX: usize = 50;

pub async fn network(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(network): Path<String>,
) -> Result<Response, WebError> {
    let network: NetworkId = network.parse().map_err(|_| WebError::not_found())?;
    let query = SearchQuery {
        network: Some(network),
        ..SearchQuery::default()
    };
    feed(s, viewer, query, format!("/n/{network}"), move |names| {
        names.network(&network)
    })
    .await
}

pub async fn author(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(author): Path<String>,
) -> Result<Response, WebError> {
    let author: AuthorId = author.parse().map_err(|_| WebError::not_found())?;
    let query = SearchQuery {
        author: Some(author),
        ..SearchQuery::default()
    };
    feed(s, viewer, query, format!("/a/{author}"), move |names| {
        names.any_author(&author)
    })
    .await
}

pub async fn tag(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(tag): Path<String>,
) -> Result<Response, WebError> {
    let title = format!("Tagged {tag}");
    let here = format!("/search?tag={}", super::pages::search::percent_encode(&tag));
    let query = SearchQuery {
        tag: Some(tag),
        ..SearchQuery::default()
    };
    feed(s, viewer, query, here, move |_| title).await
}

pub async fn subject(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(subject): Path<String>,
) -> Result<Response, WebError> {
    let title = format!("Resources in {subject}");
    let here = format!(
        "/search?subject={}",
        super::pages::search::percent_encode(&subject)
    );
    let query = SearchQuery {
        subject: Some(subject),
        ..SearchQuery::default()
    };
    feed(s, viewer, query, here, move |_| title).await
}

/// The feed of `query`'s newest matches that `viewer` may read; `page` is the page it
/// follows, `title` names it.
async fn feed(
    s: WebState,
    viewer: Viewer,
    mut query: SearchQuery,
    page: String,
    title: impl FnOnce(&mut Names<'_>) -> String + Send + 'static,
) -> Result<Response, WebError> {
    query.limit = Some(FEED_ENTRIES_MAX);
    let (ingest, index, origin) = (s.ingest.clone(), s.search.clone(), s.shared.origin.clone());
    let (view_network, by_author) = (query.network, query.author.is_some());
    let xml = blocking(move || {
        let found = newest(&ingest, &index, &viewer, query)?;
        if let Some(network) = view_network {
            if !viewer.sees(&ingest, &network)? {
                return Err(WebError::not_found());
            }
        }
        let mut names = Names::new(&ingest, &viewer);
        let mut entries = Vec::new();
        for stored in &found {
            if top_level(stored) && viewer.reads(&ingest, stored)? {
                entries.push(atom_entry(stored, &mut names, &origin));
            }
        }
        // An author's feed names them: only to a viewer who may read something of theirs.
        if by_author && entries.is_empty() {
            return Err(WebError::not_found());
        }
        let updated = entries.first().map(|e| e.updated).unwrap_or_else(|| at(0));
        let self_url = format!("{origin}{page}");
        let feed = Feed {
            title: Text::plain(title(&mut names)),
            id: self_url.clone(),
            updated,
            links: vec![
                link(
                    &format!("{origin}{}", feed_path_of(&page)),
                    "self",
                    Some("application/atom+xml"),
                ),
                link(&self_url, "alternate", Some("text/html")),
            ],
            generator: Some(atom_syndication::Generator {
                value: "Staffroom".into(),
                ..Default::default()
            }),
            entries,
            ..Default::default()
        };
        Ok(feed.to_string())
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    )
        .into_response())
}

/// `query`'s newest matches for `viewer`. A visitor's, when no network is named, come from
/// each public network in turn, merged: one search over all would let busy members-only
/// networks crowd the public entries out of the newest `FEED_ENTRIES_MAX`.
fn newest(
    ingest: &crate::ingest::Ingest,
    index: &crate::search::SearchIndex,
    viewer: &Viewer,
    query: SearchQuery,
) -> Result<Vec<StoredEntry>, WebError> {
    let reader = viewer.reader();
    let public = match viewer {
        Viewer::Visitor(public) if query.network.is_none() => public.clone(),
        _ => return Ok(crate::api::search::run(ingest, index, &reader, query)?.entries),
    };
    let mut found = Vec::new();
    for network in public.iter() {
        let scoped = SearchQuery {
            network: Some(*network),
            ..query.clone()
        };
        found.extend(crate::api::search::run(ingest, index, &reader, scoped)?.entries);
    }
    found.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
    found.truncate(FEED_ENTRIES_MAX);
    Ok(found)
}

/// The feed's own path, from the page it follows (`/n/x` → `/n/x/feed.atom`).
fn feed_path_of(page: &str) -> String {
    match page.strip_prefix("/search?") {
        Some(filter) => match filter.split_once('=') {
            Some(("tag", v)) => format!("/tags/{v}/feed.atom"),
            Some((_, v)) => format!("/subjects/{v}/feed.atom"),
            None => "/".into(),
        },
        None => format!("{page}/feed.atom"),
    }
}

fn atom_entry(stored: &StoredEntry, names: &mut Names<'_>, origin: &str) -> AtomEntry {
    let body = shown(stored);
    let url = format!("{origin}/e/{}", stored.id);
    let author = names.author(&stored.entry.network, &stored.entry.author);
    let mut links = vec![link(&url, "alternate", Some("text/html"))];
    if let Body::Resource(r) = body {
        links.push(link(
            &super::pages::entry::licence_url(&r.licence),
            "license",
            None,
        ));
    }
    let published = at(stored.entry.created_at_ms);
    AtomEntry {
        title: Text::plain(title_of(body)),
        id: format!("urn:staffroom:entry:{}", stored.id),
        updated: published,
        published: Some(published),
        authors: vec![Person {
            name: author,
            uri: Some(format!("{origin}/a/{}", stored.entry.author)),
            ..Default::default()
        }],
        links,
        content: Some(Content {
            value: Some(render(text_of(body)).into_string()),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn link(href: &str, rel: &str, media_type: Option<&str>) -> Link {
    Link {
        href: href.into(),
        rel: rel.into(),
        mime_type: media_type.map(Into::into),
        ..Default::default()
    }
}

fn top_level(stored: &StoredEntry) -> bool {
    matches!(
        shown(stored),
        Body::BlogPost(_) | Body::Resource(_) | Body::Enquiry(_)
    )
}

/// `ms` since the epoch as Atom's date (UTC); out-of-range times as the epoch.
fn at(ms: u64) -> DateTime<FixedOffset> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_default()
        .fixed_offset()
}
