//! Listing: which entries a [`ListFilter`] selects, newest first, walking a network's time
//! order and keeping what the items' listing tags match (`listing_index.rs`), with only shown
//! versions (current, not hidden) unless asked otherwise.

use serde::{Deserialize, Serialize};
use staffroom_protocol::{AuthorId, Entry, EntryId, EntryKind, NetworkId, Relation};

use super::listing_index::Want;
use super::time_order::Direction;
use super::{keys, Store, StoreError, StoredEntry, ABOUT_SCAN_MAX, LIST_LIMIT_MAX};

/// Which entries to list. Every field narrows the result; `limit` is capped at
/// [`LIST_LIMIT_MAX`]. Results are newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilter {
    pub network: Option<NetworkId>,
    pub kind: Option<EntryKind>,
    pub author: Option<AuthorId>,
    /// Only notes that belong to this enquiry.
    pub enquiry: Option<EntryId>,
    /// Only comments on this entry.
    pub reply_to: Option<EntryId>,
    /// Include entries that their author has since edited (by default only the latest
    /// version of each entry is listed).
    #[serde(default)]
    pub all_versions: bool,
    pub limit: Option<usize>,
    /// Only entries older than this (time, then id): the last one of the page before, for
    /// the next page. Ignored by listings of comments or notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<(u64, EntryId)>,
}

impl ListFilter {
    fn matches(&self, e: &Entry) -> bool {
        self.matches_besides_target(e)
            && self
                .enquiry
                .is_none_or(|q| e.reference(Relation::InEnquiry) == Some(q))
            && self
                .reply_to
                .is_none_or(|t| e.reference(Relation::ReplyTo) == Some(t))
    }

    /// Every narrowing but the enquiry or entry the listing is about.
    fn matches_besides_target(&self, e: &Entry) -> bool {
        // Membership entries and erasures are listed only when asked for by kind: they are
        // not content.
        let shown_kind = match self.kind {
            Some(k) => k == e.kind(),
            None => e.kind().is_content(),
        };
        shown_kind
            && self.network.is_none_or(|n| n == e.network)
            && self.author.is_none_or(|a| a == e.author)
    }

    /// Every narrowing, the listing's target (`relation`) matched by any of its versions
    /// rather than by id.
    fn matches_about(&self, e: &Entry, relation: Relation) -> bool {
        let exact =
            |wanted: Option<EntryId>, rel| wanted.is_none_or(|w| e.reference(rel) == Some(w));
        self.matches_besides_target(e)
            && match relation {
                Relation::InEnquiry => exact(self.reply_to, Relation::ReplyTo),
                _ => exact(self.enquiry, Relation::InEnquiry),
            }
    }

    /// The entry this listing is about (an enquiry's notes, or comments on an entry).
    fn about(&self) -> Option<(EntryId, Relation)> {
        self.enquiry
            .map(|q| (q, Relation::InEnquiry))
            .or(self.reply_to.map(|t| (t, Relation::ReplyTo)))
    }
}

impl Store {
    /// Lists entries matching `filter`, newest first.
    /// Unless `all_versions`, only the current version of each edited entry is listed, and
    /// comments or notes on an entry include those made on any of its versions.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<StoredEntry>, StoreError> {
        if filter.kind != Some(EntryKind::Resource) {
            return self.list_exact(filter);
        }
        // Resources with files are resources to a reader: list both kinds, merged.
        let mut out = self.list_exact(filter)?;
        let with_files = ListFilter {
            kind: Some(EntryKind::ResourceWithFiles),
            ..filter.clone()
        };
        out.extend(self.list_exact(&with_files)?);
        out.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
        out.truncate(filter.limit.unwrap_or(100).min(LIST_LIMIT_MAX));
        Ok(out)
    }

    /// [`Store::list`] of exactly the kind asked for.
    fn list_exact(&self, filter: &ListFilter) -> Result<Vec<StoredEntry>, StoreError> {
        let limit = filter.limit.unwrap_or(100).min(LIST_LIMIT_MAX);
        if let Some((target, relation)) = filter.about() {
            return self.list_about(filter, target, relation, limit);
        }
        if filter.network.is_none() {
            // Time orders (and the listings, their tags) are per network: merge each
            // network's newest entries — every network with entries stored for an author's
            // (a network left keeps its entries), the joined ones otherwise.
            let networks: Vec<NetworkId> = match filter.author {
                Some(_) => self.stored_networks(),
                None => self.networks()?.into_iter().map(|n| n.id).collect(),
            };
            let mut out = Vec::new();
            for network in networks {
                let scoped = ListFilter {
                    network: Some(network),
                    ..filter.clone()
                };
                out.extend(self.list_exact(&scoped)?);
            }
            out.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
            out.truncate(limit);
            return Ok(out);
        }
        let mut out = Vec::new();
        for id in self.newest_first(filter) {
            if out.len() >= limit {
                break;
            }
            // An index key without its entry is a write a crash cut short: not committed.
            // Entries this node does not understand are never listed.
            let Some(stored) = self.get(&id?)? else {
                continue;
            };
            let older = filter
                .before
                .is_none_or(|cursor| (stored.entry.created_at_ms, stored.id) < cursor);
            if older && filter.matches(&stored.entry) && self.shown(filter, &stored)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    /// Comments on, or notes in, any version of `target`.
    fn list_about(
        &self,
        filter: &ListFilter,
        target: EntryId,
        relation: Relation,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let mut out: Vec<StoredEntry> = Vec::new();
        for version in self.version_ids(&target)? {
            let prefix = keys::ref_prefix(&version, relation);
            for item in self.trees.by_ref.scan_prefix(prefix).take(ABOUT_SCAN_MAX) {
                let (key, _) = item?;
                let Some(stored) = self.get(&keys::id_suffix(&key))? else {
                    continue;
                };
                let duplicate = out.iter().any(|o| o.id == stored.id);
                let matches = filter.matches_about(&stored.entry, relation);
                if !duplicate && matches && self.shown(filter, &stored)? {
                    out.push(stored);
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Listed: the current version (unless all are asked for), and not hidden by a facilitator.
    fn shown(&self, filter: &ListFilter, stored: &StoredEntry) -> Result<bool, StoreError> {
        let current = filter.all_versions || self.is_current(stored)?;
        Ok(current && !self.is_hidden(stored)?)
    }

    /// The ids `f` may select, newest first: the network's time order, only the listed
    /// entries of the author and kind asked for (by their tags).
    fn newest_first<'a>(
        &'a self,
        f: &ListFilter,
    ) -> Box<dyn Iterator<Item = Result<EntryId, StoreError>> + 'a> {
        let network = f.network.expect("list() handles filters without a network");
        let author = match f.author {
            Some(author) => {
                let authors = self.trees.authors.read().unwrap_or_else(|e| e.into_inner());
                match authors.filter(&author) {
                    Some(number) => Some(number),
                    // No entry of theirs is stored here.
                    None => return Box::new(std::iter::empty()),
                }
            }
            None => None,
        };
        let want = Want {
            kind: f.kind.map(EntryKind::tag),
            author,
        };
        let ids = match f.before {
            Some((ms, id)) => self.trees.listed_before(&network, (ms, id.0), want),
            None => self.trees.listed(&network, Direction::NewestFirst, want),
        };
        Box::new(ids.map(|id| Ok(EntryId(id))))
    }
}

impl Store {
    /// Whether `network`'s pages are public: its newest publication (kind 12) by time, then
    /// id, says so (admission took in only facilitators'); members only without one.
    pub fn is_public(&self, network: &NetworkId) -> Result<bool, StoreError> {
        let newest = self.list(&ListFilter {
            network: Some(*network),
            kind: Some(EntryKind::Publication),
            limit: Some(1),
            ..ListFilter::default()
        })?;
        Ok(matches!(
            newest.first().map(|e| &e.entry.body),
            Some(staffroom_protocol::Body::Publication(p)) if p.public
        ))
    }
}
