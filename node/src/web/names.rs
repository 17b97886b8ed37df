//! How pages name things: authors by the profile they gave the network (else the name the
//! school registered them under, else the start of their key), networks by the name this
//! node gave them, times as dates.

use std::collections::HashMap;

use maud::{html, Markup};
use staffroom_protocol::{AuthorId, NetworkId};

use crate::ingest::Ingest;

pub struct Names<'a> {
    ingest: &'a Ingest,
    authors: HashMap<(NetworkId, AuthorId), String>,
}

impl<'a> Names<'a> {
    pub fn new(ingest: &'a Ingest) -> Self {
        Names {
            ingest,
            authors: HashMap::new(),
        }
    }

    /// `author`'s name as `network` knows them.
    pub fn author(&mut self, network: &NetworkId, author: &AuthorId) -> String {
        if let Some(name) = self.authors.get(&(*network, *author)) {
            return name.clone();
        }
        let profile = self
            .ingest
            .rosters()
            .get(network)
            .ok()
            .and_then(|r| r.profiles.get(author).map(|p| p.display_name.clone()))
            .filter(|n| !n.trim().is_empty());
        let registered = || {
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
            self.ingest
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
