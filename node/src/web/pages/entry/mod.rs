//! `GET /e/{id}`: an entry with its thread — comments nested under what they answer, an
//! enquiry's notes by stage —, a resource with its details and files, and schema.org data
//! about it (`jsonld.rs`).

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};
use staffroom_protocol::{Body, EntryId, Relation, Resource, Stage};

use super::search::percent_encode;
use super::{blocking, kind_label, text_of, title_of};
use crate::thread::{shown, CommentNode, Thread};
use crate::web::layout::{page, Head};
use crate::web::markdown::{excerpt, render};
use crate::web::names::{time, Names};
use crate::web::{Viewer, WebError, WebState};

mod jsonld;
mod sources;
pub use jsonld::licence_url;

pub async fn entry(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: EntryId = id.parse().map_err(|_| WebError::not_found())?;
    let (ingest, v, origin) = (s.ingest.clone(), viewer.clone(), s.shared.origin.clone());
    let (head, main) = blocking(move || {
        let thread = thread_for(&ingest, &v, id)?;
        let mut names = Names::new(&ingest, &v);
        let writes = v.teacher().is_some();
        let stored = &thread.view.stored;
        let based_on = sources::BasedOn::of(&ingest, &v, stored)?;
        let main = article(&thread, &mut names, writes, &based_on);
        let url = format!("{origin}/e/{id}");
        let author = names.author(&stored.entry.network, &stored.entry.author);
        let head = Head {
            title: title_of(shown(stored)),
            description: excerpt(text_of(shown(stored)), 200),
            json_ld: Some(jsonld::about(
                stored,
                &author,
                jsonld::Place {
                    origin: &origin,
                    url: &url,
                    based_on: &based_on.urls(&origin),
                },
            )),
            url,
            og_type: "article",
            feed: None,
            writes,
        };
        Ok((head, main))
    })
    .await?;
    Ok(page(&viewer, head, main))
}

/// The thread of `id`, if `viewer` may read it.
fn thread_for(
    ingest: &crate::ingest::Ingest,
    viewer: &Viewer,
    id: EntryId,
) -> Result<Thread, WebError> {
    let reader = viewer.reader();
    // Whatever the API would say of an entry this viewer may not read (its kind unknown
    // here, say) is a 404 here, like one that does not exist.
    let view = crate::api::server::entry_view(ingest, &reader, id).map_err(|e| match e.0 {
        s if s.is_client_error() => WebError::not_found(),
        _ => WebError::from(e),
    })?;
    if !viewer.reads(ingest, &view.stored)? || ingest.store().is_hidden(&view.stored)? {
        return Err(WebError::not_found());
    }
    let thread = crate::thread::assemble(view, |filter| {
        let mut listed = crate::private::seal::list_for(ingest, &reader, filter)?;
        listed.retain(|e| !matches!(shown(e), Body::Sealed(_)));
        Ok::<_, crate::store::StoreError>(listed)
    })?;
    Ok(thread)
}

fn article(
    thread: &Thread,
    names: &mut Names<'_>,
    writes: bool,
    based_on: &sources::BasedOn,
) -> Markup {
    let stored = &thread.view.stored;
    let body = shown(stored);
    let network = stored.entry.network;
    let text = render(text_of(body));
    let mut budget = Budget::after(text.0.len());
    // Notes first: they are an enquiry's substance; comments get what they leave.
    let notes_shown = (!thread.notes.is_empty()).then(|| notes(thread, names, &mut budget));
    let notes_cut = budget.cut;
    let rendered = comments(&thread.comments, names, &mut budget);
    html! {
        article.entry {
            p.meta { span.kind { (kind_label(body.kind())) } "in " a href={ "/n/" (network) } { (names.network(&network)) } }
            h1 { (title_of(body)) }
            p.meta { "By " (names.author_link(&network, &stored.entry.author)) " · " (time(stored.entry.created_at_ms)) }
            @if let Some(current) = thread.view.edited_by {
                p.notice { "This version has been edited since. " a href={ "/e/" (current) } { "Read the current version" } "." }
            }
            @if let Some(target) = stored.entry.reference(Relation::ReplyTo) {
                p { "A comment on " a href={ "/e/" (target) } { "this entry" } "." }
            }
            @if let Some(enquiry) = stored.entry.reference(Relation::InEnquiry) {
                p { "A note in " a href={ "/e/" (enquiry) } { "this enquiry" } "." }
            }
            @if let Body::BlogPost(p) = body { @if !p.tags.is_empty() {
                p.meta { "Tags: " @for (i, tag) in p.tags.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/search?tag=" (percent_encode(tag)) } { (tag) }
                } }
            } }
            @if let Body::Resource(r) = body { (resource_facts(r, stored.id, based_on)) }
            div.body { (text) }
        }
        @if let Some(shown_notes) = notes_shown { (shown_notes) }
        @if notes_cut { p.muted { "There are more notes than this page shows: open one, or use " code { "staffroom show" } "." } }
        section aria-labelledby="comments" {
            h2 #comments { "Comments (" (thread.comment_count()) ")" }
            @if thread.comments.is_empty() { p.muted { "No comments yet." } }
            @else { (rendered) }
            @if thread.cut_short || budget.cut { p.muted { "There are more comments than this page shows: open one to read its replies, or use " code { "staffroom show" } "." } }
        }
        @if writes { (super::compose::forms(network, stored.id, matches!(body, Body::Enquiry(_)))) }
    }
}

fn resource_facts(r: &Resource, id: EntryId, based_on: &sources::BasedOn) -> Markup {
    html! {
        table.facts {
            caption.muted { "About this resource" }
            tbody {
                @if !r.subjects.is_empty() { tr { th scope="row" { "Subjects" } td {
                    @for (i, subject) in r.subjects.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/search?subject=" (percent_encode(subject)) } { (subject) }
                    }
                } } }
                @if !r.key_stage.is_empty() { tr { th scope="row" { "Key stage" } td { (r.key_stage) } } }
                tr { th scope="row" { "Ages" } td { (r.age_min_years) "–" (r.age_max_years) } }
                tr { th scope="row" { "Licence" } td { a rel="license" href=(jsonld::licence_url(&r.licence)) { (r.licence) } } }
                tr { th scope="row" { "Language" } td { (r.language) } }
                (based_on.row())
            }
        }
        @if !r.files.is_empty() {
            h2 { "Files" }
            ul {
                @for (i, f) in r.files.iter().enumerate() {
                    li {
                        a href={ "/e/" (id) "/files/" (i) } download=(f.name) { (f.name) }
                        span.muted { " · " (f.media_type) " · " (crate::files::human_size(f.size_bytes)) }
                    }
                }
            }
        }
    }
}

fn notes(thread: &Thread, names: &mut Names<'_>, budget: &mut Budget) -> Markup {
    let stage_of = |e: &crate::store::StoredEntry| match shown(e) {
        Body::EnquiryNote(n) => Some(n.stage),
        _ => None,
    };
    let mut stages = Vec::new();
    for stage in Stage::ALL {
        let mut items = Vec::new();
        for note in thread.notes.iter().filter(|n| stage_of(n) == Some(stage)) {
            let body = render(text_of(shown(note)));
            if !budget.take(body.0.len()) {
                break;
            }
            let meta = html! { (names.author_link(&note.entry.network, &note.entry.author)) " · " (time(note.entry.created_at_ms)) " · " a href={ "/e/" (note.id) } { "link" } };
            items.push(html! { li { p.meta { (meta) } div.body { (body) } } });
        }
        if !items.is_empty() {
            stages.push(
                html! { h3 { (stage_title(stage)) } ol.comments { @for i in &items { (i) } } },
            );
        }
    }
    html! {
        section aria-labelledby="notes" {
            h2 #notes { "Notes by stage" }
            @for stage in &stages { (stage) }
        }
    }
}

/// What one page renders of a thread's notes and comments: what the page's 100 KB (the
/// issue's budget for a page before files) leaves after the entry's own text and the frame
/// around it, and 100 items at most. A thread may hold 1,000 comments and as many notes of
/// up to 48 KiB each; the rest is a link away (each has its own page) or in the CLI. An item
/// that would not fit is left out whole, and so is everything after it.
struct Budget {
    items: usize,
    bytes: usize,
    /// Something was left out.
    cut: bool,
}

impl Budget {
    const ITEMS_MAX: usize = 100;
    const PAGE_BYTES_MAX: usize = 100 * 1024;
    /// Head, site bar, a resource's facts, the writing forms (about 6 KB measured), and room.
    const FRAME_BYTES: usize = 16 * 1024;

    /// The budget of a page whose entry's text renders to `text_bytes`.
    fn after(text_bytes: usize) -> Self {
        Budget {
            items: Budget::ITEMS_MAX,
            bytes: (Budget::PAGE_BYTES_MAX - Budget::FRAME_BYTES).saturating_sub(text_bytes),
            cut: false,
        }
    }

    /// Whether an item rendering to `bytes` still fits (then it is counted).
    fn take(&mut self, bytes: usize) -> bool {
        if self.cut || self.items == 0 || bytes > self.bytes {
            self.cut = true;
            return false;
        }
        self.items -= 1;
        self.bytes -= bytes;
        true
    }
}

fn comments(nodes: &[CommentNode], names: &mut Names<'_>, budget: &mut Budget) -> Markup {
    let mut items = Vec::new();
    for node in nodes {
        let c = &node.comment;
        let body = render(text_of(shown(c)));
        if !budget.take(body.0.len()) {
            break;
        }
        let meta = html! { (names.author_link(&c.entry.network, &c.entry.author)) " · " (time(c.entry.created_at_ms)) " · " a href={ "/e/" (c.id) } { "link" } };
        let replies = (!node.replies.is_empty()).then(|| comments(&node.replies, names, budget));
        items.push(html! { li { p.meta { (meta) } div.body { (body) } @if let Some(r) = replies { (r) } } });
    }
    html! { ol.comments { @for item in &items { (item) } } }
}

fn stage_title(stage: Stage) -> &'static str {
    match stage {
        Stage::Question => "Question",
        Stage::Context => "Context",
        Stage::Action => "Action",
        Stage::Evidence => "Evidence",
        Stage::Reflection => "Reflection",
    }
}
