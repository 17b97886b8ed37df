//! A resource's sources on its page (`docs/protocol.md`, "Sources"): the entries it is based
//! on that this viewer may read, by title, and the web pages its author named.

use maud::{html, Markup};
use staffroom_protocol::Body;

use super::super::title_of;
use crate::store::StoredEntry;
use crate::thread::shown;
use crate::web::{Viewer, WebError};

/// What a resource is based on, as this viewer may see it.
#[derive(Debug, Default)]
pub struct BasedOn {
    /// Entries this viewer may read: id and title.
    pub entries: Vec<(staffroom_protocol::EntryId, String)>,
    /// Web pages, as their author gave them (`http://` or `https://`, no spaces).
    pub links: Vec<String>,
    /// Entries named that this node does not hold or this viewer may not read.
    pub unseen: usize,
}

impl BasedOn {
    /// `resource`'s sources as `viewer` may see them (nothing for other kinds).
    pub fn of(
        ingest: &crate::ingest::Ingest,
        viewer: &Viewer,
        resource: &StoredEntry,
    ) -> Result<BasedOn, WebError> {
        if !matches!(shown(resource), Body::Resource(_)) {
            return Ok(BasedOn::default());
        }
        let Some(sources) = ingest.store().sources_of(resource)? else {
            return Ok(BasedOn::default());
        };
        let mut out = BasedOn {
            links: sources.links,
            ..BasedOn::default()
        };
        for id in sources.entries {
            match readable(ingest, viewer, id)? {
                Some(source) => out.entries.push((id, title_of(shown(&source)))),
                None => out.unseen += 1,
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.links.is_empty() && self.unseen == 0
    }

    /// schema.org `isBasedOn`: the pages of the entries and the links, as absolute URLs.
    pub fn urls(&self, origin: &str) -> Vec<String> {
        let entries = self
            .entries
            .iter()
            .map(|(id, _)| format!("{origin}/e/{id}"));
        entries.chain(self.links.iter().cloned()).collect()
    }

    /// The "Based on" row of a resource's facts.
    pub fn row(&self) -> Markup {
        html! {
            @if !self.is_empty() {
                tr { th scope="row" { "Based on" } td { ul.sources {
                    @for (id, title) in &self.entries { li { a href={ "/e/" (id) } { (title) } } }
                    @for link in &self.links {
                        li { a href=(link) rel="nofollow noopener noreferrer external" { (link) } }
                    }
                    @if self.unseen > 0 {
                        li.muted { (self.unseen) " more on this node's networks you cannot read here, or not on this node" }
                    }
                } } }
            }
        }
    }
}

/// The source `id`, opened for `viewer`, if they may read it here.
fn readable(
    ingest: &crate::ingest::Ingest,
    viewer: &Viewer,
    id: staffroom_protocol::EntryId,
) -> Result<Option<StoredEntry>, WebError> {
    let view = match crate::api::server::entry_view(ingest, &viewer.reader(), id) {
        Ok(view) => view,
        // Not held, not understood, erased: not shown, whoever asks.
        Err(e) if e.0.is_client_error() => return Ok(None),
        Err(e) => return Err(WebError::from(e)),
    };
    let store = ingest.store();
    let shown_here = viewer.reads(ingest, &view.stored)? && !store.is_hidden(&view.stored)?;
    Ok(shown_here.then_some(view.stored))
}
