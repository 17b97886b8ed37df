//! `GET /a/{author}`: an author as the networks this viewer sees know them — name, school,
//! role — and what they wrote there, newest first.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use staffroom_protocol::AuthorId;

use super::{blocking, entry_item};
use crate::store::ListFilter;
use crate::web::layout::{page, Head};
use crate::web::names::Names;
use crate::web::{Viewer, WebError, WebState};

/// Entries listed on an author's page.
const AUTHOR_ENTRIES_MAX: usize = 30;

pub async fn author(
    State(s): State<WebState>,
    viewer: Viewer,
    Path(author): Path<String>,
) -> Result<Response, WebError> {
    let author: AuthorId = author.parse().map_err(|_| WebError::not_found())?;
    let (ingest, v) = (s.ingest.clone(), viewer.clone());
    let (profiles, items) = blocking(move || {
        let mut profiles = Vec::new();
        for record in v.networks(&ingest)? {
            let roster = ingest.rosters().get(&record.id)?;
            if let Some(profile) = roster.profiles.get(&author) {
                profiles.push((record.id, profile.clone()));
            }
        }
        // Per network the viewer sees: one listing over all would let networks they may not
        // read crowd theirs out of the newest.
        let mut listed = Vec::new();
        for record in v.networks(&ingest)? {
            let filter = ListFilter {
                network: Some(record.id),
                author: Some(author),
                limit: Some(AUTHOR_ENTRIES_MAX),
                ..ListFilter::default()
            };
            listed.extend(crate::private::seal::list_for(
                &ingest,
                &v.reader(),
                &filter,
            )?);
        }
        listed.sort_by_key(|e| std::cmp::Reverse((e.entry.created_at_ms, e.id)));
        let mut kept = Vec::new();
        for stored in listed.drain(..) {
            if kept.len() < AUTHOR_ENTRIES_MAX && v.reads(&ingest, &stored)? {
                kept.push(stored);
            }
        }
        let mut names = Names::new(&ingest, &v);
        // Known to a network this viewer sees, or the author of something they may read.
        let known_in = profiles
            .first()
            .map(|(network, _)| *network)
            .or(kept.first().map(|e| e.entry.network))
            .ok_or_else(WebError::not_found)?;
        let name = names.author(&known_in, &author);
        let items: Vec<_> = kept
            .iter()
            .map(|e| entry_item(e, &mut names, true))
            .collect();
        Ok(((name, profiles), items))
    })
    .await?;
    let (name, profiles) = profiles;
    let url = format!("{}/a/{author}", s.shared.origin);
    let main = html! {
        h1 { (name) }
        @for (_, profile) in profiles.iter().filter(|(_, p)| !p.school.is_empty() || !p.role.is_empty()).take(1) {
            p.meta { (profile.role) @if !profile.role.is_empty() && !profile.school.is_empty() { ", " } (profile.school) }
        }
        h2 { "Writing" }
        @if items.is_empty() { p { "Nothing you can read here yet." } }
        @else { ul.entries { @for item in &items { (item) } } }
    };
    let head = Head {
        title: name.clone(),
        description: format!("What {name} has shared."),
        json_ld: Some(serde_json::json!({
            "@context": "https://schema.org",
            "@type": "ProfilePage",
            "mainEntity": { "@type": "Person", "name": name, "identifier": author.to_string() },
            "url": url,
        })),
        url,
        og_type: "profile",
        feed: Some(format!("/a/{author}/feed.atom")),
        writes: false,
    };
    Ok(page(&viewer, head, main))
}
