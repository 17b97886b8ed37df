//! The writing forms: `GET /n/{network}/write` (a blog post, a resource with files, an
//! enquiry), the comment and note forms under an entry (`forms`), and `GET /key`, where a
//! teacher keeps their signing key in this browser. The forms are plain HTML; `/write.js`
//! signs and sends them. Without JavaScript they post to `/w/no-script`, which says why
//! writing needs it.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};
use staffroom_protocol::{EntryId, NetworkId, Stage};

use super::blocking;
use crate::web::layout::{bare, page, Head};
use crate::web::names::Names;
use crate::web::{Viewer, WebError, WebState};

pub async fn write(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(network): Path<String>,
) -> Result<Response, WebError> {
    let network: NetworkId = network.parse().map_err(|_| WebError::not_found())?;
    let (ingest, v) = (s.ingest.clone(), viewer.clone());
    let (name, private) = blocking(move || {
        if v.teacher().is_none() || !v.sees(&ingest, &network)? {
            return Err(WebError::not_found());
        }
        let policy = ingest.rosters().get(&network)?.policy;
        let private = policy.is_some_and(|p| p.is_private());
        Ok((Names::new(&ingest, &v).network(&network), private))
    })
    .await?;
    let main = html! {
        h1 { "Write in " (name) }
        (needs_key())
        section aria-labelledby="blog" {
            h2 #blog { "A blog post" }
            form.write method="post" action="/w/no-script" data-kind="blog_post" data-network=(network) {
                (field("blog-title", "title", "Title", html! { input #blog-title name="title" required maxlength="200"; }))
                (field("blog-body", "body_md", "Text (markdown)", html! { textarea #blog-body name="body_md" rows="10" required {} }))
                (field("blog-tags", "tags", "Tags, separated by commas", html! { input #blog-tags name="tags"; }))
                (send())
            }
        }
        section aria-labelledby="resource" {
            h2 #resource { "A resource" }
            form.write method="post" action="/w/no-script" data-kind="resource" data-network=(network) {
                (field("res-title", "title", "Title", html! { input #res-title name="title" required maxlength="200"; }))
                (field("res-body", "description_md", "Description (markdown)", html! { textarea #res-body name="description_md" rows="6" {} }))
                (field("res-subjects", "subjects", "Subjects, separated by commas", html! { input #res-subjects name="subjects"; }))
                (field("res-stage", "key_stage", "Key stage or phase", html! { input #res-stage name="key_stage" placeholder="KS3"; }))
                (field("res-min", "age_min_years", "Youngest learners (years)", html! { input #res-min name="age_min_years" type="number" min="0" max="99" value="11"; }))
                (field("res-max", "age_max_years", "Oldest learners (years)", html! { input #res-max name="age_max_years" type="number" min="0" max="99" value="14"; }))
                (field("res-licence", "licence", "Licence (SPDX)", html! { input #res-licence name="licence" value="CC-BY-4.0" required; }))
                (field("res-lang", "language", "Language", html! { input #res-lang name="language" value="en-GB" required; }))
                div.field {
                    label for="res-files" { "Files (or drop them below)" }
                    input #res-files type="file" name="files" multiple;
                    div.drop tabindex="0" { "Drop files here" }
                    ul.uploads aria-label="Files to share" {}
                }
                // Sources travel in the clear (kind 13): not in a private network.
                @if !private {
                    (field("res-sources", "based_on", "Based on: entries' addresses or web pages, one a line (optional)", html! { textarea #res-sources name="based_on" rows="3" placeholder="https://…" {} }))
                }
                (send())
            }
        }
        section aria-labelledby="enquiry" {
            h2 #enquiry { "An enquiry" }
            form.write method="post" action="/w/no-script" data-kind="enquiry" data-network=(network) {
                (field("enq-q", "question", "The question", html! { input #enq-q name="question" required maxlength="300"; }))
                (field("enq-body", "description_md", "What it is about (markdown)", html! { textarea #enq-body name="description_md" rows="6" {} }))
                (send())
            }
        }
    };
    let head = Head {
        title: format!("Write in {name}"),
        description: "Write a blog post, share a resource or start an enquiry.".into(),
        url: format!("{}/n/{network}/write", s.shared.origin),
        og_type: "website",
        json_ld: Some(
            serde_json::json!({"@context": "https://schema.org", "@type": "WebPage", "name": format!("Write in {name}")}),
        ),
        feed: None,
        writes: true,
    };
    Ok(page(&viewer, head, main))
}

/// The comment form under an entry, and the note form under an enquiry.
pub fn forms(network: NetworkId, entry: EntryId, is_enquiry: bool) -> Markup {
    html! {
        @if is_enquiry {
            section aria-labelledby="add-note" {
                h2 #add-note { "Add a note to this enquiry" }
                form.write method="post" action="/w/no-script" data-kind="enquiry_note" data-network=(network) data-enquiry=(entry) {
                    div.field {
                        label for="note-stage" { "Stage" }
                        select #note-stage name="stage" {
                            @for stage in Stage::ALL { option value=(stage.name()) { (stage.name()) } }
                        }
                    }
                    (field("note-body", "body_md", "The note (markdown)", html! { textarea #note-body name="body_md" rows="6" required {} }))
                    (send())
                }
            }
        }
        section aria-labelledby="add-comment" {
            h2 #add-comment { "Add a comment" }
            form.write method="post" action="/w/no-script" data-kind="comment" data-network=(network) data-reply-to=(entry) {
                (field("comment-body", "body_md", "Your comment (markdown)", html! { textarea #comment-body name="body_md" rows="5" required {} }))
                (send())
            }
        }
    }
}

fn field(id: &str, _name: &str, label: &str, input: Markup) -> Markup {
    html! { div.field { label for=(id) { (label) } (input) } }
}

fn send() -> Markup {
    html! {
        button type="submit" { "Sign and post" }
        p.status role="status" aria-live="polite" {}
    }
}

/// Said on every page with writing forms: the key signs in this browser.
fn needs_key() -> Markup {
    html! {
        p.notice.key-missing {
            "What you write is signed with your own key, in this browser. "
            a href="/key" { "Keep your key in this browser" } " once before you post."
        }
    }
}

pub async fn key(State(s): State<WebState>, viewer: Viewer) -> Result<Response, WebError> {
    let Some(teacher) = viewer.teacher() else {
        return Err(WebError::not_found());
    };
    let main = html! {
        h1 { "Your signing key" }
        p { "Everything you write is signed with your teacher key, so every school can check it is yours. The node never holds it: your browser keeps it, unreadable even to this site's own pages, and signs what you post." }
        p { "Your key is the file " code { "teacher.key" } " in your staffroom data directory (for example " code { "~/.local/share/staffroom/teacher.key" } "). Choose it below, or paste its 64 characters." }
        p.meta { "Signed in as the author " code { (teacher.key) } }
        form.key-import method="post" action="/w/no-script" {
            div.field { label for="key-file" { "Key file" } input #key-file type="file" name="key_file"; }
            div.field { label for="key-hex" { "Or the key itself" } input #key-hex name="key_hex" autocomplete="off" spellcheck="false"; }
            button type="submit" { "Keep it in this browser" }
            p.status role="status" aria-live="polite" {}
        }
        form.key-forget method="post" action="/w/no-script" {
            button type="submit" { "Forget it in this browser" }
        }
    };
    let head = Head {
        title: "Your signing key".into(),
        description: "Keep your signing key in this browser.".into(),
        url: format!("{}/key", s.shared.origin),
        og_type: "website",
        json_ld: Some(
            serde_json::json!({"@context": "https://schema.org", "@type": "WebPage", "name": "Your signing key"}),
        ),
        feed: None,
        writes: true,
    };
    Ok(page(&viewer, head, main))
}

/// Where the writing forms post when no script runs.
pub async fn no_script() -> Response {
    let body = html! {
        h1 { "Writing needs JavaScript" }
        p { "What you write is signed with your own key in your browser, which takes the page's script. Turn JavaScript on for this site, or write with the staffroom command." }
        p { a href="/" { "Back to the start" } }
    };
    axum::response::IntoResponse::into_response(bare("Writing needs JavaScript", body))
}
