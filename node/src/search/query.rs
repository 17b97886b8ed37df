//! A search request, turned into a tantivy query: text ranked by BM25 (titles weigh most),
//! or every entry newest first when there is no text; each filter narrows; facet counts are
//! taken over everything that matched, not just the page returned.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use staffroom_protocol::{AuthorId, EntryId, EntryKind, NetworkId};
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Facet, IndexRecordOption, Term, Value};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument};

use super::schema::{Fields, FACETS};
use super::SearchError;

/// Results a page holds at most.
pub const PAGE_MAX: usize = 1_000;
/// How deep paging may go (offset plus page): beyond it, narrow the search.
pub const DEPTH_MAX: usize = 10_000;
/// Values listed per facet at most (the most frequent).
pub const FACET_VALUES_MAX: usize = 20;
/// Query text in bytes at most.
pub const QUERY_BYTES_MAX: usize = 1_024;
/// Authors a request may name at most (an author-name filter matching more is refused).
pub const AUTHORS_MAX: usize = 256;
/// Title matches weigh this much more than body matches; tags and subjects in between.
const TITLE_BOOST: f32 = 3.0;
const LABELS_BOOST: f32 = 2.0;

/// What to search for. Every field narrows; none set lists everything, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Words to find in titles, bodies, tags and subjects (all of them, stemmed; `"…"` for a
    /// phrase, `-word` to exclude). Empty: no ranking, newest first.
    #[serde(default)]
    pub q: String,
    pub network: Option<NetworkId>,
    /// A content kind (a resource includes resources with files).
    pub kind: Option<EntryKind>,
    /// Only these authors (an author-name filter, resolved by the caller).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<AuthorId>,
    pub tag: Option<String>,
    pub subject: Option<String>,
    pub key_stage: Option<String>,
    pub licence: Option<String>,
    /// A resource's language tag, such as `en-gb` (any case).
    #[serde(default)]
    pub language: Option<String>,
    /// A sort of resource its files make (`document`, `slides`, …: `schema::resource_type`).
    #[serde(default)]
    pub resource_type: Option<String>,
    /// Written at or after this time (ms since the Unix epoch).
    pub since_ms: Option<u64>,
    /// Written before this time (ms since the Unix epoch).
    pub until_ms: Option<u64>,
    #[serde(default)]
    pub offset: usize,
    pub limit: Option<usize>,
}

/// How many matching entries have one value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// Facet counts over all matches, most frequent first, by facet name.
pub type Facets = std::collections::BTreeMap<String, Vec<FacetCount>>;

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHits {
    /// Every match, not only this page.
    pub total: u64,
    /// The page, best first (or newest first with no text), with each one's score.
    pub ids: Vec<(EntryId, f32)>,
    pub facets: Facets,
    /// The index had not caught up with the store when this was answered.
    pub behind: bool,
}

impl SearchRequest {
    /// The page size asked for, within bounds.
    pub fn page(&self) -> usize {
        self.limit.unwrap_or(20).clamp(1, PAGE_MAX)
    }

    /// Checks what a client sent.
    pub fn check(&self) -> Result<(), String> {
        if self.q.len() > QUERY_BYTES_MAX {
            return Err(format!(
                "the search text is {} bytes; at most {QUERY_BYTES_MAX}",
                self.q.len()
            ));
        }
        if self.offset.saturating_add(self.page()) > DEPTH_MAX {
            return Err(format!(
                "results beyond the first {DEPTH_MAX} are not paged through; narrow the search"
            ));
        }
        if self.authors.len() > AUTHORS_MAX {
            return Err(format!(
                "{} authors match; name at most {AUTHORS_MAX}",
                self.authors.len()
            ));
        }
        if let (Some(since), Some(until)) = (self.since_ms, self.until_ms) {
            if since > until {
                return Err("the date range ends before it starts".into());
            }
        }
        Ok(())
    }
}

fn facet_term(fields: &Fields, name: &str, value: &str) -> Box<dyn Query> {
    let facet = Facet::from_path([name, value.trim().to_lowercase().as_str()]);
    Box::new(TermQuery::new(
        Term::from_facet(fields.facet, &facet),
        IndexRecordOption::Basic,
    ))
}

/// The query for `request`, before the reader's access is applied.
fn build(
    searcher: &Searcher,
    fields: &Fields,
    request: &SearchRequest,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if request.q.trim().is_empty() {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    } else {
        let mut parser = QueryParser::for_index(
            searcher.index(),
            vec![fields.title, fields.body, fields.labels],
        );
        parser.set_conjunction_by_default();
        parser.set_field_boost(fields.title, TITLE_BOOST);
        parser.set_field_boost(fields.labels, LABELS_BOOST);
        // Lenient: a stray quote in what a teacher typed is not an error. Syntax beyond
        // words, phrases and `-word` (fields, ranges, boosts, groups) is taken as spaces.
        let (query, _ignored) = parser.parse_query_lenient(&plain_words(&request.q));
        clauses.push((Occur::Must, query));
    }
    let exact = [
        ("network", request.network.map(|n| n.to_string())),
        ("kind", request.kind.map(|k| k.family().name().to_owned())),
        ("tag", request.tag.clone()),
        ("subject", request.subject.clone()),
        ("key_stage", request.key_stage.clone()),
        ("licence", request.licence.clone()),
        ("language", request.language.clone()),
        ("resource_type", request.resource_type.clone()),
    ];
    for (name, value) in exact {
        if let Some(value) = value {
            clauses.push((Occur::Must, facet_term(fields, name, &value)));
        }
    }
    if !request.authors.is_empty() {
        let any: Vec<(Occur, Box<dyn Query>)> = request
            .authors
            .iter()
            .map(|a| (Occur::Should, facet_term(fields, "author", &a.to_string())))
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    if request.since_ms.is_some() || request.until_ms.is_some() {
        let term = |ms| Term::from_field_u64(fields.time, ms);
        let lower = request
            .since_ms
            .map_or(Bound::Unbounded, |ms| Bound::Included(term(ms)));
        let upper = request
            .until_ms
            .map_or(Bound::Unbounded, |ms| Bound::Excluded(term(ms)));
        clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
    }
    clauses
}

/// `text` with only what the documented syntax uses: words, `"` for phrases, `-` and `+`.
fn plain_words(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '-' | '+' => c,
            c if c.is_alphanumeric() || c.is_whitespace() => c,
            _ => ' ',
        })
        .collect()
}

/// Runs `request`. Documents opened from sealed entries are left out unless of a network in
/// `readable`: denied by default, so a network left, or whose roster is not known yet, hides
/// its words too.
pub fn run(
    searcher: &Searcher,
    fields: &Fields,
    request: &SearchRequest,
    readable: &[NetworkId],
) -> Result<SearchHits, SearchError> {
    let mut clauses = build(searcher, fields, request);
    let any_opened: Box<dyn Query> = Box::new(TermQuery::new(
        Term::from_facet(fields.facet, &Facet::from_path(["opened"])),
        IndexRecordOption::Basic,
    ));
    let mut unreadable = vec![(Occur::Must, any_opened)];
    for network in readable {
        unreadable.push((
            Occur::MustNot,
            facet_term(fields, "opened", &network.to_string()),
        ));
    }
    clauses.push((Occur::MustNot, Box::new(BooleanQuery::new(unreadable))));
    let query = BooleanQuery::new(clauses);
    let mut facets = FacetCollector::for_field("facet");
    for name in FACETS {
        facets.add_facet(Facet::from_path([name]));
    }
    let page = TopDocs::with_limit(request.page()).and_offset(request.offset);
    let (total, addresses, counts) = if request.q.trim().is_empty() {
        let newest = page.order_by_fast_field::<u64>("time", Order::Desc);
        let (total, top, counts) = searcher.search(&query, &(Count, newest, facets))?;
        let top: Vec<(f32, DocAddress)> = top.into_iter().map(|(_, a)| (0.0, a)).collect();
        (total, top, counts)
    } else {
        searcher.search(&query, &(Count, page.order_by_score(), facets))?
    };
    let mut ids = Vec::with_capacity(addresses.len());
    for (score, address) in addresses {
        let doc: TantivyDocument = searcher.doc(address)?;
        let id = doc
            .get_first(fields.id)
            .and_then(|v| v.as_str())
            .and_then(|hex| hex.parse::<EntryId>().ok());
        if let Some(id) = id {
            ids.push((id, score));
        }
    }
    let facets = FACETS
        .iter()
        .map(|name| {
            let root = Facet::from_path([*name]);
            let values = counts
                .top_k(root, FACET_VALUES_MAX)
                .into_iter()
                .filter_map(|(facet, count)| {
                    let value = facet.to_path().last().map(|v| v.to_string())?;
                    Some(FacetCount { value, count })
                })
                .collect();
            (name.to_string(), values)
        })
        .collect();
    Ok(SearchHits {
        total: total as u64,
        ids,
        facets,
        behind: false,
    })
}
