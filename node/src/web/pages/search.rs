//! `GET /search`: the node's search for a signed-in teacher — words, and facets to narrow by
//! kind, network, author, tag, subject, key stage and licence, each value with its count;
//! a page at a time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{html, Markup};

use super::{blocking, entry_item};
use crate::api::search::{SearchQuery, SearchView};
use crate::search::FacetCount;
use crate::web::layout::{page, Head};
use crate::web::names::Names;
use crate::web::{Viewer, WebError, WebState};

/// Results on one page.
const PAGE_RESULTS: usize = 20;

pub async fn search(
    State(s): State<WebState>,
    viewer: Viewer,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(mut query) = query
        .map_err(|_| WebError::bad_request("That search address is not one this site makes."))?;
    // A visitor searches one public network at a time: the facets count everything the
    // index holds, which must not tell them of anything else.
    if let (Viewer::Visitor(public), network) = (&viewer, query.network) {
        if !network.is_some_and(|n| public.contains(&n)) {
            return Err(WebError::not_found());
        }
    }
    query.limit = Some(PAGE_RESULTS);
    query.author_name = None;
    let (ingest, index, v, asked) = (
        s.ingest.clone(),
        s.search.clone(),
        viewer.clone(),
        query.clone(),
    );
    let (view, items, facets) = blocking(move || {
        let mut view = crate::api::search::run(&ingest, &index, &v.reader(), asked.clone())?;
        let mut kept = Vec::with_capacity(view.entries.len());
        for e in view.entries.drain(..) {
            if v.reads(&ingest, &e)? {
                kept.push(e);
            }
        }
        let mut names = Names::new(&ingest, &v);
        let items: Vec<_> = kept
            .iter()
            .map(|e| entry_item(e, &mut names, true))
            .collect();
        let facets = facet_lists(&view, &asked, &mut names);
        Ok((view, items, facets))
    })
    .await?;
    let main = html! {
        h1 { "Search" }
        form.search method="get" action="/search" role="search" {
            label for="q" class="skip" { "Words to look for" }
            input #q type="search" name="q" value=(query.q) placeholder="Words to look for";
            @for (name, value) in filters(&query) { input type="hidden" name=(name) value=(value); }
            button type="submit" { "Search" }
        }
        p.meta { (view.total) " found" @if view.behind { " (the index is catching up: the newest entries may be missing)" } }
        @if !facets.is_empty() { section.facets aria-label="Narrow the results" { @for f in &facets { (f) } } }
        ul.entries { @for item in &items { (item) } }
        @if view.more > 0 {
            nav.pager aria-label="Pages" { ul { li {
                a rel="next" href=(search_url(&query, &[("offset", (view.offset + PAGE_RESULTS).to_string())])) { "More results" }
            } } }
        }
    };
    let head = Head {
        title: "Search".into(),
        description: "Search what this school's networks share.".into(),
        url: format!("{}/search", s.shared.origin),
        og_type: "website",
        feed: None,
        writes: false,
        json_ld: Some(
            serde_json::json!({"@context": "https://schema.org", "@type": "SearchResultsPage"}),
        ),
    };
    Ok(page(&viewer, head, main))
}

/// The filters in force, as query pairs (not the words, not the page).
fn filters(q: &SearchQuery) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    let mut add = |name, value: Option<String>| {
        if let Some(v) = value {
            pairs.push((name, v));
        }
    };
    add("network", q.network.map(|n| n.to_string()));
    add("kind", q.kind.map(|k| k.family().name().to_owned()));
    add("author", q.author.map(|a| a.to_string()));
    add("tag", q.tag.clone());
    add("subject", q.subject.clone());
    add("key_stage", q.key_stage.clone());
    add("licence", q.licence.clone());
    add("language", q.language.clone());
    add("resource_type", q.resource_type.clone());
    pairs
}

/// `/search` with `q`'s words and filters, `changes` replacing (or, with an empty value,
/// removing) filters.
fn search_url(q: &SearchQuery, changes: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("q", q.q.clone())];
    pairs.extend(
        filters(q)
            .into_iter()
            .filter(|(n, _)| !changes.iter().any(|(c, _)| c == n)),
    );
    pairs.extend(changes.iter().map(|(n, v)| (*n, v.clone())));
    let encoded: Vec<String> = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| format!("{n}={}", percent_encode(&v)))
        .collect();
    format!("/search?{}", encoded.join("&"))
}

pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Each facet's values as links that narrow the search, the value in force marked with a
/// link that removes it.
fn facet_lists(view: &SearchView, q: &SearchQuery, names: &mut Names<'_>) -> Vec<Markup> {
    let active: Vec<(&str, String)> = filters(q);
    let mut lists = Vec::new();
    for (facet, values) in &view.facets {
        let Some(title) = facet_title(facet) else {
            continue;
        };
        if values.is_empty() {
            continue;
        }
        let current = active
            .iter()
            .find(|(n, _)| n == facet)
            .map(|(_, v)| v.clone());
        let label = |fc: &FacetCount, names: &mut Names<'_>| value_label(facet, &fc.value, names);
        let items: Vec<Markup> = values.iter().map(|fc| {
            let text = label(fc, names);
            html! { li {
                @if current.as_deref() == Some(fc.value.as_str()) {
                    strong { (text) " (" (fc.count) ")" } " " a href=(search_url(q, &[(facet_key(facet), String::new())])) { "remove" }
                } @else {
                    a href=(search_url(q, &[(facet_key(facet), fc.value.clone()), ("offset", String::new())])) { (text) } " (" (fc.count) ")"
                }
            } }
        }).collect();
        lists.push(html! { div { h2 { (title) } ul.facet { @for i in &items { (i) } } } });
    }
    lists
}

fn facet_title(facet: &str) -> Option<&'static str> {
    Some(match facet {
        "kind" => "Kind",
        "network" => "Network",
        "author" => "Author",
        "tag" => "Tag",
        "subject" => "Subject",
        "key_stage" => "Key stage",
        "licence" => "Licence",
        "language" => "Language",
        "resource_type" => "Resource type",
        _ => return None,
    })
}

fn facet_key(facet: &str) -> &'static str {
    match facet {
        "kind" => "kind",
        "network" => "network",
        "author" => "author",
        "tag" => "tag",
        "subject" => "subject",
        "key_stage" => "key_stage",
        "language" => "language",
        "resource_type" => "resource_type",
        _ => "licence",
    }
}

fn value_label(facet: &str, value: &str, names: &mut Names<'_>) -> String {
    match facet {
        "network" => value
            .parse()
            .map(|n| names.network(&n))
            .unwrap_or_else(|_| value.to_owned()),
        "author" => value
            .parse::<staffroom_protocol::AuthorId>()
            .map(|a| names.any_author(&a))
            .unwrap_or_else(|_| value.to_owned()),
        "kind" => value
            .parse::<staffroom_protocol::EntryKind>()
            .map(|k| super::kind_label(k).to_owned())
            .unwrap_or_else(|_| value.to_owned()),
        _ => value.to_owned(),
    }
}
