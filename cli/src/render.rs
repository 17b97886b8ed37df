//! Human-readable output: dates, one-line rows for listings, and full entries.

use std::fmt::Write;

use staffroom_node::api::types::EntryView;
use staffroom_node::net::ExplicitPeerInfo;
use staffroom_node::store::StoredEntry;
use staffroom_node::sync::SyncNowReport;
use staffroom_protocol::{AuthorId, Body, Relation};

/// A Unix time in milliseconds in this computer's time zone, with its offset.
pub fn date(ms: u64) -> String {
    date_in(ms, &jiff::tz::TimeZone::system())
}

/// A time as `date` shows it, in `zone`: `2026-01-01 09:30 +01:00`.
pub fn date_in(ms: u64, zone: &jiff::tz::TimeZone) -> String {
    let at = i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    match at {
        Some(at) => at
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %:z")
            .to_string(),
        // Past what a calendar can show (year 9999): the number itself.
        None => format!("{ms} ms"),
    }
}

/// Authors' names from their profiles: "Name (School)".
pub type Names = std::collections::HashMap<AuthorId, String>;

/// An author as people know them: their profile's name and school, else 8 hex digits.
pub fn author(names: &Names, key: &AuthorId) -> String {
    names.get(key).cloned().unwrap_or_else(|| key.short())
}

/// What a reader sees of an entry: a sealed entry's opened content, where the node opened
/// it, else the entry's own body.
fn shown_body(e: &StoredEntry) -> &Body {
    e.opened.as_ref().unwrap_or(&e.entry.body)
}

/// The kind a reader sees: an opened sealed entry is of its content's kind.
fn shown_kind(e: &StoredEntry) -> String {
    match &e.opened {
        Some(body) => format!("{} (private)", body.kind().name()),
        None => e.entry.kind().name().to_owned(),
    }
}

/// An entry with its thread, for `staffroom show`: the entry in full, an enquiry's notes,
/// then the comments, replies indented under what they answer.
pub fn thread(
    thread: &crate::commands::Thread,
    signature_ok: bool,
    names: &Names,
    styled: bool,
) -> String {
    let mut out = full(&thread.view, signature_ok, names, styled);
    if !thread.notes.is_empty() {
        let _ = writeln!(out, "\nNotes ({}):", thread.notes.len());
        for note in &thread.notes {
            let stage = match shown_body(note) {
                Body::EnquiryNote(n) => n.stage.name(),
                _ => "",
            };
            let _ = writeln!(out, "\n  [{stage}] {}", byline(note, names));
            indented(&mut out, &md(body_text(note), styled), 4);
        }
    }
    let count = count_comments(&thread.comments);
    if count > 0 {
        let _ = writeln!(out, "\nComments ({count}):");
        comments(&mut out, &thread.comments, 1, names, styled);
    }
    if thread.cut_short {
        let _ = writeln!(out, "\n(more than shown: the thread was cut short)");
    }
    out
}

/// Who wrote a note or comment, when, and its short id.
fn byline(e: &StoredEntry, names: &Names) -> String {
    format!(
        "{} · {} · {}",
        author(names, &e.entry.author),
        date(e.entry.created_at_ms),
        e.id.short()
    )
}

fn count_comments(nodes: &[crate::commands::CommentNode]) -> usize {
    nodes.iter().map(|n| 1 + count_comments(&n.replies)).sum()
}

fn comments(
    out: &mut String,
    nodes: &[crate::commands::CommentNode],
    depth: usize,
    names: &Names,
    styled: bool,
) {
    for node in nodes {
        let c = &node.comment;
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "\n{pad}{}", byline(c, names));
        indented(out, &md(body_text(c), styled), depth * 2 + 2);
        comments(out, &node.replies, depth + 1, names, styled);
    }
}

fn md(text: &str, styled: bool) -> String {
    crate::markdown::render(text, styled)
}

/// The text of a note or comment.
fn body_text(e: &StoredEntry) -> &str {
    match shown_body(e) {
        Body::EnquiryNote(n) => &n.body_md,
        Body::Comment(c) => &c.body_md,
        _ => "",
    }
}

fn indented(out: &mut String, text: &str, spaces: usize) {
    for line in text.lines() {
        let _ = writeln!(out, "{}{line}", " ".repeat(spaces));
    }
}

/// One line: id, date, kind, author, headline.
pub fn row(e: &StoredEntry, names: &Names) -> String {
    format!(
        "{}  {}  {:<12}  {}  {}",
        e.id.short(),
        date(e.entry.created_at_ms),
        shown_kind(e),
        author(names, &e.entry.author),
        shown_body(e).headline()
    )
}

/// The whole entry, for `staffroom show`.
pub fn full(view: &EntryView, signature_ok: bool, names: &Names, styled: bool) -> String {
    let e = &view.stored;
    let entry = &e.entry;
    let mut out = String::new();
    let _ = writeln!(out, "id:        {}", e.id);
    let _ = writeln!(out, "kind:      {}", shown_kind(e));
    let _ = writeln!(out, "network:   {}", entry.network);
    match names.get(&entry.author) {
        Some(name) => writeln!(out, "author:    {name}  {}", entry.author),
        None => writeln!(out, "author:    {}", entry.author),
    }
    .ok();
    let _ = writeln!(out, "created:   {}", date(entry.created_at_ms));
    let verdict = if signature_ok {
        "valid (ed25519, checked here)"
    } else {
        "INVALID"
    };
    let _ = writeln!(out, "signature: {verdict}");
    for r in &entry.refs {
        let relation = match r.relation {
            Relation::Supersedes => "edits",
            Relation::InEnquiry => "enquiry",
            Relation::ReplyTo => "reply to",
            Relation::Related => "related",
            Relation::After => "after",
        };
        let _ = writeln!(out, "{relation:<10} {}", r.id);
    }
    if let Some(edit) = view.edited_by {
        let _ = writeln!(out, "edited:    a newer version is {edit}");
    }
    out.push('\n');
    match shown_body(e) {
        Body::BlogPost(b) => {
            let _ = writeln!(out, "# {}", b.title);
            if !b.tags.is_empty() {
                let _ = writeln!(out, "tags: {}", b.tags.join(", "));
            }
            let _ = writeln!(out, "\n{}", md(&b.body_md, styled));
        }
        Body::Resource(r) => {
            let _ = writeln!(out, "# {}", r.title);
            let _ = writeln!(out, "subjects: {}", r.subjects.join(", "));
            let stage = if r.key_stage.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.key_stage)
            };
            let _ = writeln!(
                out,
                "ages:     {}–{}{stage}",
                r.age_min_years, r.age_max_years
            );
            let _ = writeln!(out, "licence:  {}", r.licence);
            let _ = writeln!(out, "language: {}", r.language);
            for f in &r.files {
                let size = crate::commands::size(f.size_bytes);
                let _ = writeln!(out, "file:     {}  {size}  {}", f.name, f.media_type);
            }
            let _ = writeln!(out, "\n{}", md(&r.description_md, styled));
        }
        Body::Enquiry(q) => {
            let _ = writeln!(out, "? {}", q.question);
            let _ = writeln!(out, "\n{}", md(&q.description_md, styled));
        }
        Body::EnquiryNote(n) => {
            let _ = writeln!(
                out,
                "stage: {}\n\n{}",
                n.stage.name(),
                md(&n.body_md, styled)
            );
        }
        Body::Comment(c) => {
            let _ = writeln!(out, "{}", md(&c.body_md, styled));
        }
        Body::Network(g) => {
            let _ = writeln!(
                out,
                "# Network {:?} founded ({:?}, invites by {:?})",
                g.name, g.policy, g.invite_by
            );
            let _ = writeln!(out, "\n{}", g.description_md);
        }
        Body::Erasure(e) => {
            let _ = writeln!(
                out,
                "{} {} by {} (reason: {})",
                e.action.name(),
                e.target,
                e.target_author,
                e.reason.name()
            );
        }
        Body::Sealed(_) => {
            let _ = writeln!(
                out,
                "(sealed: only members of this private network read it, on a node that holds \
                 its key)"
            );
        }
        Body::KeyGrants(g) => {
            let _ = writeln!(
                out,
                "content key {} sealed to {} member node(s)",
                g.key_id.to_hex(),
                g.grants.len()
            );
        }
        Body::Publication(_) => {
            let _ = writeln!(out, "{}", entry.body.headline());
        }
        Body::Sources(s) => {
            let _ = writeln!(out, "sources of {}", s.resource);
            for id in &s.entries {
                let _ = writeln!(out, "based on: {id}");
            }
            for link in &s.links {
                let _ = writeln!(out, "based on: {link}");
            }
        }
        Body::Membership(action) => {
            let _ = writeln!(out, "membership: {}", entry.body.headline());
            if let Ok(json) = serde_json::to_string_pretty(action) {
                let _ = writeln!(out, "{json}");
            }
        }
    }
    out
}

/// What `staffroom sync` did: one line per session, or why there was none.
pub fn sync(report: &SyncNowReport, explicit: &[ExplicitPeerInfo]) -> String {
    let mut out = String::new();
    for r in &report.sessions {
        let outcome = match &r.error {
            None => format!(
                "received {}, sent {} entries in {} round(s){}; {} bytes out, {} in; {} ms",
                r.entries_received,
                r.entries_sent,
                r.rounds,
                match r.entries_held {
                    0 => String::new(),
                    n => format!(" ({n} dated ahead of this node's clock, held)"),
                },
                r.bytes_sent,
                r.bytes_received,
                r.duration_ms
            ),
            Some(e) => format!("failed: {e}"),
        };
        let _ = writeln!(out, "{}  network {}  {outcome}", r.peer, r.network.short());
    }
    if !report.sessions.is_empty() {
        return out;
    }
    if report.connected_peers == 0 {
        out.push_str("No peers are connected to this node.\n");
    } else {
        let _ = writeln!(
            out,
            "{} peer(s) connected; none shares a network with this node{}.",
            report.connected_peers,
            match report.blocked_peers {
                0 => String::new(),
                n => format!(" ({n} blocked by this node)"),
            }
        );
    }
    for p in explicit.iter().filter(|p| !p.connected) {
        let why = p.last_error.as_deref().unwrap_or("not connected yet");
        let _ = writeln!(out, "Dialling {}: {why}", p.addr);
    }
    out
}

/// `staffroom network members`: one line per member, facilitators first.
pub fn members(view: &staffroom_node::api::types::MembersView) -> String {
    let mut out = format!("{} ({})\n", view.name, view.network);
    let mut members: Vec<_> = view.members.iter().collect();
    members.sort_by_key(|m| (m.rank.unwrap_or(u32::MAX), m.author));
    for m in members {
        let role = match m.rank {
            Some(0) => "founder".to_owned(),
            Some(_) => "facilitator".to_owned(),
            None => "member".to_owned(),
        };
        let who = match &m.profile {
            Some(p) if p.school.is_empty() => p.display_name.clone(),
            Some(p) => format!("{} ({})", p.display_name, p.school),
            None => "(no profile yet)".to_owned(),
        };
        let _ = writeln!(out, "  {}  {role:<11} {who}", m.author.short());
    }
    if !view.former.is_empty() {
        let _ = writeln!(out, "{} former member(s)", view.former.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_calendar_dates_in_a_zone_with_its_offset() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(date_in(0, &utc), "1970-01-01 00:00 +00:00");
        assert_eq!(date_in(1_767_225_600_000, &utc), "2026-01-01 00:00 +00:00");
        let leap_day = 951_782_400_000 + 3_600_000 * 13 + 60_000 * 7;
        assert_eq!(date_in(leap_day, &utc), "2000-02-29 13:07 +00:00");
        let paris = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            date_in(1_767_225_600_000, &paris),
            "2026-01-01 01:00 +01:00"
        );
        let posix = jiff::tz::TimeZone::posix("AAA-5:30").unwrap();
        assert_eq!(date_in(0, &posix), "1970-01-01 05:30 +05:30");
        assert_eq!(date_in(u64::MAX, &utc), format!("{} ms", u64::MAX));
    }

    /// The newcomer of issue 7 was told "No connected peer shares a network" while it was
    /// being cut off; the report now says what it can see.
    #[test]
    fn sync_says_why_nothing_was_synced() {
        let none = SyncNowReport {
            sessions: vec![],
            connected_peers: 0,
            sharing_peers: 0,
            blocked_peers: 0,
        };
        let explicit = [ExplicitPeerInfo {
            addr: "/ip4/127.0.0.1/tcp/4040".parse().unwrap(),
            peer_id: None,
            connected: false,
            last_error: Some("Connection refused".into()),
        }];
        let text = sync(&none, &explicit);
        assert!(text.contains("No peers are connected"), "{text}");
        assert!(
            text.contains("/ip4/127.0.0.1/tcp/4040: Connection refused"),
            "{text}"
        );
        let blocked = SyncNowReport {
            connected_peers: 2,
            blocked_peers: 1,
            ..none
        };
        let text = sync(&blocked, &[]);
        assert!(text.contains("2 peer(s) connected; none shares"), "{text}");
        assert!(text.contains("1 blocked by this node"), "{text}");
    }

    #[test]
    fn sync_reports_each_session_and_held_entries() {
        let peer = staffroom_node::PeerId::random();
        let mut session =
            staffroom_node::sync::SyncReport::new(peer, staffroom_protocol::NetworkId([1; 32]));
        session.entries_received = 7;
        session.entries_held = 2;
        let ok = SyncNowReport {
            sessions: vec![session.clone()],
            connected_peers: 1,
            sharing_peers: 1,
            blocked_peers: 0,
        };
        let text = sync(&ok, &[]);
        assert!(text.contains("received 7, sent 0 entries"), "{text}");
        assert!(
            text.contains("2 dated ahead of this node's clock, held"),
            "{text}"
        );
        session.error = Some("peer refused: busy".into());
        let failed = SyncNowReport {
            sessions: vec![session],
            ..ok
        };
        assert!(sync(&failed, &[]).contains("failed: peer refused: busy"));
    }
}
