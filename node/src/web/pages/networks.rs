//! `GET /`: a signed-in teacher's networks — those this node follows —, or, for anyone
//! else, how a teacher of this school signs in.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use staffroom_protocol::membership::Policy;

use super::blocking;
use crate::web::layout::{page, Head};
use crate::web::{Viewer, WebError, WebState};

pub async fn home(State(s): State<WebState>, viewer: Viewer) -> Result<Response, WebError> {
    let head = Head {
        title: "Networks".into(),
        description: "The networks this school's Staffroom node follows.".into(),
        url: format!("{}/", s.shared.origin),
        og_type: "website",
        feed: None,
        writes: false,
        json_ld: None,
    };
    let ingest = s.ingest.clone();
    let v = viewer.clone();
    let rows = blocking(move || {
        let mut rows = Vec::new();
        for record in v.networks(&ingest)? {
            let roster = ingest.rosters().get(&record.id)?;
            rows.push((record, roster.policy, roster.members.len()));
        }
        Ok(rows)
    })
    .await?;
    let signed_in = viewer.teacher().is_some();
    let main = html! {
        @if signed_in { h1 { "Your school's networks" } } @else { h1 { "Staffroom" } }
        @if !signed_in {
            p { "This is a school's Staffroom node. Teachers of the school sign in with a link from their own computer:" }
            pre { code { "staffroom web login" } }
            p { "The command prints a link that works once, for a few minutes. Open it in this browser." }
            @if !rows.is_empty() { h2 { "Networks open to everyone" } }
        }
        @if rows.is_empty() {
            @if signed_in { p { "This node follows no network yet. Found one or join one with the " code { "staffroom network" } " commands." } }
        } @else {
            ul.entries {
                @for (record, policy, members) in &rows {
                    li {
                        h2 { a href={ "/n/" (record.id) } { (display_name(&record.name, &record.id)) } }
                        p.meta { (policy_label(*policy)) " · " (members) " member" @if *members != 1 { "s" } }
                    }
                }
            }
        }
    };
    Ok(page(&viewer, head, main))
}

pub fn display_name(name: &str, id: &staffroom_protocol::NetworkId) -> String {
    match name.trim() {
        "" => format!("network {}", id.short()),
        name => name.to_owned(),
    }
}

pub fn policy_label(policy: Option<Policy>) -> &'static str {
    match policy {
        Some(Policy::Open) => "Open: anyone who knows it may join",
        Some(Policy::InviteOnly) => "Members only: joined by invitation",
        Some(Policy::Private | Policy::PrivateFromJoining) => {
            "Private: readable by members' nodes only"
        }
        None => "Not yet known here",
    }
}
