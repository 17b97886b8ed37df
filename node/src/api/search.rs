//! `GET /v1/search`: full-text search and faceted listing of the entries on this node, for
//! the teacher asking. Sealed entries come opened where they may read them. Documents the
//! index opened from sealed entries match only for members of their private network (their
//! words and tags would say what they hold): denied unless the teacher is a member now.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use staffroom_protocol::{AuthorId, EntryKind, NetworkId};

use super::server::{bad_request, ApiError, ApiState};
use crate::search::{Facets, SearchError, SearchRequest};
use crate::store::{StoredEntry, TeacherRecord};

/// What a client asks (a query string: every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
    pub network: Option<NetworkId>,
    pub kind: Option<EntryKind>,
    pub author: Option<AuthorId>,
    /// Authors whose name (in any network's profiles, or as registered here) contains this,
    /// ignoring case.
    pub author_name: Option<String>,
    pub tag: Option<String>,
    pub subject: Option<String>,
    pub key_stage: Option<String>,
    pub licence: Option<String>,
    pub language: Option<String>,
    pub resource_type: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    #[serde(default)]
    pub offset: usize,
    pub limit: Option<usize>,
}

/// One page of results, with facet counts over every match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchView {
    /// Matches in all.
    pub total: u64,
    pub offset: usize,
    /// Matches after this page.
    pub more: u64,
    pub entries: Vec<StoredEntry>,
    pub facets: Facets,
    /// The index had not caught up with the store (it is being rebuilt, say): results may
    /// miss the newest entries.
    #[serde(default)]
    pub behind: bool,
}

/// Names an author-name filter may match at most before it is refused as too broad.
const NAME_MATCHES_MAX: usize = crate::search::query::AUTHORS_MAX;

pub async fn search(
    State(s): State<ApiState>,
    axum::Extension(teacher): axum::Extension<TeacherRecord>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchView>, ApiError> {
    let Query(query) = query.map_err(|e| bad_request(e.body_text()))?;
    let (ingest, index) = (s.ingest.clone(), s.search.clone());
    tokio::task::spawn_blocking(move || run(&ingest, &index, &teacher.key, query).map(Json))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "worker", e.to_string()))?
}

/// One page of `query`'s results as `reader` may see them (blocking: reads the store).
pub(crate) fn run(
    ingest: &crate::ingest::Ingest,
    index: &crate::search::SearchIndex,
    reader: &AuthorId,
    query: SearchQuery,
) -> Result<SearchView, ApiError> {
    let request = request_for(ingest, query)?;
    request.check().map_err(bad_request)?;
    let readable = readable_networks(ingest, reader)?;
    let hits = index.search(&request, &readable).map_err(search_error)?;
    let store = ingest.store();
    let mut entries = Vec::with_capacity(hits.ids.len());
    for (id, _score) in &hits.ids {
        // Gone since the index's last commit: left out.
        if let Some(stored) = store.get(id)? {
            entries.push(stored);
        }
    }
    crate::private::seal::open_for(ingest, reader, &mut entries)?;
    let shown = (request.offset as u64).saturating_add(hits.ids.len() as u64);
    Ok(SearchView {
        total: hits.total,
        offset: request.offset,
        more: hits.total.saturating_sub(shown),
        entries,
        facets: hits.facets,
        behind: hits.behind,
    })
}

fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Store(e) => e.into(),
        other => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "search_unavailable",
            other.to_string(),
        ),
    }
}

/// The index's request for `query`, with an author-name filter turned into authors.
fn request_for(
    ingest: &crate::ingest::Ingest,
    query: SearchQuery,
) -> Result<SearchRequest, ApiError> {
    let mut authors: Vec<AuthorId> = query.author.into_iter().collect();
    if let Some(name) = query.author_name.as_deref().map(str::trim) {
        let named = authors_named(ingest, name)?;
        if named.is_empty() {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "no_such_author",
                format!("no author here is called anything like '{name}'"),
            ));
        }
        if named.len() > NAME_MATCHES_MAX {
            return Err(bad_request(format!(
                "{} authors are called something like '{name}'; give more of the name",
                named.len()
            )));
        }
        match query.author {
            // Every filter narrows: with an author's key as well, the name must be theirs.
            Some(key) if !named.contains(&key) => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    "no_such_author",
                    format!(
                        "author {} is not called anything like '{name}'",
                        key.short()
                    ),
                ))
            }
            Some(_) => {}
            None => authors.extend(named),
        }
    }
    Ok(SearchRequest {
        q: query.q,
        network: query.network,
        kind: query.kind,
        authors,
        tag: query.tag,
        subject: query.subject,
        key_stage: query.key_stage,
        licence: query.licence,
        language: query.language,
        resource_type: query.resource_type,
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        offset: query.offset,
        limit: query.limit,
    })
}

/// Authors whose profile name in a joined network, or whose name registered on this node,
/// contains `name`, ignoring case.
fn authors_named(ingest: &crate::ingest::Ingest, name: &str) -> Result<Vec<AuthorId>, ApiError> {
    if name.is_empty() {
        return Err(bad_request("an author's name to look for is empty"));
    }
    let wanted = name.to_lowercase();
    let matches = |text: &str| text.to_lowercase().contains(&wanted);
    let mut found = std::collections::BTreeSet::new();
    let store = ingest.store();
    for record in store.networks()? {
        let roster = ingest.rosters().get(&record.id)?;
        for (author, profile) in &roster.profiles {
            if matches(&profile.display_name) {
                found.insert(*author);
            }
        }
    }
    for teacher in store.teachers()? {
        if matches(&teacher.name) {
            found.insert(teacher.key);
        }
    }
    Ok(found.into_iter().collect())
}

/// The private networks joined here that `reader` is a member of now: the only ones whose
/// opened words they may search.
fn readable_networks(
    ingest: &crate::ingest::Ingest,
    reader: &AuthorId,
) -> Result<Vec<NetworkId>, ApiError> {
    let mut readable = Vec::new();
    for record in ingest.store().networks()? {
        let roster = ingest.rosters().get(&record.id)?;
        if roster.policy.is_some_and(|p| p.is_private()) && roster.is_member(reader) {
            readable.push(record.id);
        }
    }
    Ok(readable)
}
