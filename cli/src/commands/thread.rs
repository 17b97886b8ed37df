//! `staffroom show`'s thread: an entry with its context — every entry's comments as a tree
//! (replies nested under what they answer, oldest first) and an enquiry's notes in stage,
//! then time, order. Fetched through the API's listings, bounded in count and depth.

use std::collections::HashMap;

use serde::Serialize;
use staffroom_node::api::types::EntryView;
use staffroom_node::api::ApiClient;
use staffroom_node::store::{ListFilter, StoredEntry, LIST_LIMIT_MAX};
use staffroom_protocol::{Body, EntryId};

/// Comments fetched for one thread at most.
pub const THREAD_COMMENTS_MAX: usize = 1000;
/// Replies to replies followed this deep at most.
pub const THREAD_DEPTH_MAX: usize = 16;

/// An entry and its context, as `show` prints it (and as `--json` gives it).
#[derive(Debug, Serialize)]
pub struct Thread {
    #[serde(flatten)]
    pub view: EntryView,
    /// Comments on the entry, oldest first, each with its replies.
    pub comments: Vec<CommentNode>,
    /// An enquiry's notes, by stage, then oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<StoredEntry>,
    /// Whether there was more than the bounds let this fetch.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut_short: bool,
}

#[derive(Debug, Serialize)]
pub struct CommentNode {
    #[serde(flatten)]
    pub comment: StoredEntry,
    pub replies: Vec<CommentNode>,
}

/// The thread of the entry `view` shows.
pub async fn fetch(api: &ApiClient, view: EntryView) -> anyhow::Result<Thread> {
    let root = view.stored.id;
    let mut cut_short = false;
    let notes = match shown(&view.stored) {
        Body::Enquiry(_) => {
            // By reference, not kind: a private network's notes are sealed until opened.
            let filter = ListFilter {
                enquiry: Some(root),
                limit: Some(LIST_LIMIT_MAX),
                ..ListFilter::default()
            };
            let mut notes = api.list(&filter).await?;
            cut_short |= notes.len() >= LIST_LIMIT_MAX;
            notes.retain(|n| matches!(shown(n), Body::EnquiryNote(_)));
            notes.sort_by_key(|n| (stage_rank(n), n.entry.created_at_ms, n.id));
            notes
        }
        _ => Vec::new(),
    };
    // Level by level: the comments on each entry of the level before.
    let mut replies: HashMap<EntryId, Vec<StoredEntry>> = HashMap::new();
    let (mut level, mut fetched) = (vec![root], 0usize);
    for _ in 0..THREAD_DEPTH_MAX {
        let mut next = Vec::new();
        for parent in level {
            if fetched >= THREAD_COMMENTS_MAX {
                cut_short = true;
                break;
            }
            let filter = ListFilter {
                reply_to: Some(parent),
                limit: Some((THREAD_COMMENTS_MAX - fetched).min(LIST_LIMIT_MAX)),
                ..ListFilter::default()
            };
            let mut found = api.list(&filter).await?;
            fetched += found.len();
            found.retain(|c| matches!(shown(c), Body::Comment(_)));
            found.sort_by_key(|c| (c.entry.created_at_ms, c.id));
            next.extend(found.iter().map(|c| c.id));
            if !found.is_empty() {
                replies.insert(parent, found);
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    Ok(Thread {
        comments: tree(&root, &mut replies, 0),
        view,
        notes,
        cut_short,
    })
}

/// The comments under `parent`, each with its own, from the fetched levels.
fn tree(
    parent: &EntryId,
    replies: &mut HashMap<EntryId, Vec<StoredEntry>>,
    depth: usize,
) -> Vec<CommentNode> {
    let Some(children) = replies.remove(parent) else {
        return Vec::new();
    };
    children
        .into_iter()
        .map(|comment| CommentNode {
            replies: match depth < THREAD_DEPTH_MAX {
                true => tree(&comment.id, replies, depth + 1),
                false => Vec::new(),
            },
            comment,
        })
        .collect()
}

/// An entry's body as a reader sees it: opened, if it was sealed.
fn shown(e: &StoredEntry) -> &Body {
    e.opened.as_ref().unwrap_or(&e.entry.body)
}

fn stage_rank(note: &StoredEntry) -> u8 {
    match shown(note) {
        Body::EnquiryNote(n) => n.stage as u8,
        _ => u8::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staffroom_protocol::fixtures::{comment_body, key, network, reply_to, signed};

    fn stored(entry: staffroom_protocol::Entry) -> StoredEntry {
        StoredEntry {
            id: entry.id(),
            entry,
            opened: None,
        }
    }

    #[test]
    fn replies_nest_under_what_they_answer() {
        let post = EntryId([9; 32]);
        let c = |on: EntryId, t: u64| {
            stored(signed(
                &key(1),
                network(1),
                t,
                vec![reply_to(on)],
                comment_body("c"),
            ))
        };
        let (first, second) = (c(post, 1), c(post, 2));
        let reply = c(first.id, 3);
        let mut replies = HashMap::from([
            (post, vec![first.clone(), second.clone()]),
            (first.id, vec![reply.clone()]),
        ]);
        let built = tree(&post, &mut replies, 0);
        assert_eq!(built.len(), 2);
        assert_eq!(built[0].comment.id, first.id);
        assert_eq!(built[0].replies[0].comment.id, reply.id);
        assert!(built[1].replies.is_empty());
        assert!(replies.is_empty(), "every fetched comment is placed once");
    }
}
