//! How pages name things: authors by the profile they gave the network (else, for the
//! school's own teachers, the name the school registered them under; else the start of their
//! key), networks by the name this node gave them, times as dates. A visitor's names come
//! from public networks only: never a profile from another network, nor the school's register.

use std::collections::HashMap;

use maud::{html, Markup};
use staffroom_protocol::{AuthorId, NetworkId};

use crate::ingest::Ingest;

pub struct Names<'a> {
    ingest: &'a Ingest,
    authors: HashMap<(NetworkId, AuthorId), String>,
    /// For a visitor, the networks whose names they may learn; none for a teacher (all).
    visible: Option<super::PublicNetworks>,
}

impl<'a> Names<'a> {
    pub fn new(ingest: &'a Ingest, viewer: &super::Viewer) -> Self {
        Names {
            ingest,
            authors: HashMap::new(),
            visible: match viewer {
                super::Viewer::Visitor(public) => Some(public.clone()),
                super::Viewer::Teacher { .. } => None,
            },
        }
    }

    fn may_name_from(&self, network: &NetworkId) -> bool {
        self.visible.as_ref().is_none_or(|v| v.contains(network))
    }

    /// `author`'s name as `network` knows them.
    pub fn author(&mut self, network: &NetworkId, author: &AuthorId) -> String {
        if let Some(name) = self.authors.get(&(*network, *author)) {
            return name.clone();
        }
        let profile = self
            .may_name_from(network)
            .then(|| self.ingest.rosters().get(network).ok())
            .flatten()
            .and_then(|r| r.profiles.get(author).map(|p| p.display_name.clone()))
            .filter(|n| !n.trim().is_empty());
        let registered = || {
            if self.visible.is_some() {
                return None;
            }
            self.ingest
                .store()
                .teacher(author)
                .ok()
                .flatten()
                .map(|t| t.name)
        };
        let name = profile
            .or_else(registered)
            .unwrap_or_else(|| format!("author {}", author.short()));
        self.authors.insert((*network, *author), name.clone());
        name
    }

    /// `author`'s name in the first network here that knows them.
    pub fn any_author(&mut self, author: &AuthorId) -> String {
        let networks = self.ingest.store().networks().unwrap_or_default();
        let known = networks.iter().find(|n| {
            self.may_name_from(&n.id)
                && self
                    .ingest
                    .rosters()
                    .get(&n.id)
                    .is_ok_and(|r| r.profiles.contains_key(author))
        });
        match known {
            Some(n) => self.author(&n.id, author),
            None => self.author(&NetworkId([0; 32]), author),
        }
    }

    /// A link to `author`'s page.
    pub fn author_link(&mut self, network: &NetworkId, author: &AuthorId) -> Markup {
        let name = self.author(network, author);
        html! { a href={ "/a/" (author) } { (name) } }
    }

    /// `network`'s name on this node.
    pub fn network(&self, network: &NetworkId) -> String {
        match self.ingest.store().network(network) {
            Ok(Some(record)) if !record.name.trim().is_empty() => record.name,
            _ => format!("network {}", network.short()),
        }
    }
}

/// `ms` since the epoch as a `<time>` element: the date, with the instant in full for
/// machines.
pub fn time(ms: u64) -> Markup {
    html! { time datetime=(iso(ms)) { (date(ms)) } }
}

/// `ms` as an RFC 3339 instant (UTC).
pub fn iso(ms: u64) -> String {
    timestamp(ms).to_string()
}

/// `ms` as a day: `27 Nov 2026`.
pub fn date(ms: u64) -> String {
    timestamp(ms).strftime("%-d %b %Y").to_string()
}

fn timestamp(ms: u64) -> jiff::Timestamp {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates() {
        assert_eq!(date(1_795_000_000_000), "18 Nov 2026");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert!(!date(u64::MAX).is_empty(), "no panic past jiff's range");
    }
}
