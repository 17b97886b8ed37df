//! The pages, one file each, and what several share: an entry as one item of a list, kind
//! labels, and the blocking work every page does against the store.

pub mod author;
pub mod compose;
pub mod entry;
pub mod networks;
pub mod search;
pub mod sign_in;
pub mod stream;

use maud::{html, Markup};
use staffroom_protocol::{Body, EntryKind};

use super::markdown::excerpt;
use super::names::{time, Names};
use super::WebError;
use crate::store::StoredEntry;
use crate::thread::shown;

/// Characters of an entry's text shown in a list.
const EXCERPT_CHARS_MAX: usize = 240;

/// Any path no route knows.
pub async fn not_found() -> WebError {
    WebError::not_found()
}

/// Runs `work` (which reads the store) on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(work).await?
}

/// What a reader calls an entry's kind.
pub fn kind_label(kind: EntryKind) -> &'static str {
    match kind.family() {
        EntryKind::BlogPost => "Blog",
        EntryKind::Resource => "Resource",
        EntryKind::Enquiry => "Enquiry",
        EntryKind::EnquiryNote => "Enquiry note",
        EntryKind::Comment => "Comment",
        _ => "Entry",
    }
}

/// An entry's title as a reader sees it.
pub fn title_of(body: &Body) -> String {
    match body {
        Body::BlogPost(p) => p.title.clone(),
        Body::Resource(r) => r.title.clone(),
        Body::Enquiry(q) => q.question.clone(),
        Body::EnquiryNote(n) => format!("Note: {}", n.stage.name()),
        Body::Comment(c) => excerpt(&c.body_md, 60),
        _ => "Entry".into(),
    }
}

/// An entry's text in markdown.
pub fn text_of(body: &Body) -> &str {
    match body {
        Body::BlogPost(p) => &p.body_md,
        Body::Resource(r) => &r.description_md,
        Body::Enquiry(q) => &q.description_md,
        Body::EnquiryNote(n) => &n.body_md,
        Body::Comment(c) => &c.body_md,
        _ => "",
    }
}

/// One entry in a list: kind, title linked to its page, author, date, excerpt.
pub fn entry_item(stored: &StoredEntry, names: &mut Names<'_>, show_network: bool) -> Markup {
    let body = shown(stored);
    let network = stored.entry.network;
    html! {
        li {
            h2 {
                span.kind { (kind_label(body.kind())) }
                a href={ "/e/" (stored.id) } { (title_of(body)) }
            }
            p.meta {
                (names.author_link(&network, &stored.entry.author)) " · " (time(stored.entry.created_at_ms))
                @if show_network {
                    " · in " a href={ "/n/" (network) } { (names.network(&network)) }
                }
            }
            p { (excerpt(text_of(body), EXCERPT_CHARS_MAX)) }
        }
    }
}
