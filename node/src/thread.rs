//! An entry's thread: its comments as a tree (replies nested under what they answer, oldest
//! first) and an enquiry's notes in stage, then time, order. Built from listings, bounded in
//! count and depth; the API's `GET /v1/entries/{id}/thread` and the web pages both use it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use staffroom_protocol::{Body, EntryId};

use crate::api::types::EntryView;
use crate::store::{ListFilter, StoredEntry, LIST_LIMIT_MAX};

/// Comments fetched for one thread at most.
pub const THREAD_COMMENTS_MAX: usize = 1000;
/// Replies to replies followed this deep at most.
pub const THREAD_DEPTH_MAX: usize = 16;

/// An entry and its context.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    #[serde(flatten)]
    pub view: EntryView,
    /// Comments on the entry, oldest first, each with its replies.
    #[serde(default)]
    pub comments: Vec<CommentNode>,
    /// An enquiry's notes, by stage, then oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<StoredEntry>,
    /// Whether there was more than the bounds let this fetch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_short: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentNode {
    #[serde(flatten)]
    pub comment: StoredEntry,
    #[serde(default)]
    pub replies: Vec<CommentNode>,
}

impl Thread {
    /// Comments in the whole tree.
    pub fn comment_count(&self) -> usize {
        fn count(nodes: &[CommentNode]) -> usize {
            nodes.iter().map(|n| 1 + count(&n.replies)).sum()
        }
        count(&self.comments)
    }
}

/// The thread of the entry `view` shows, with `list` answering listings for the reader (so
/// sealed entries come opened where they may read them).
pub fn assemble<E>(
    view: EntryView,
    mut list: impl FnMut(&ListFilter) -> Result<Vec<StoredEntry>, E>,
) -> Result<Thread, E> {
    let (root, network) = (view.stored.id, view.stored.entry.network);
    // A reference may name an entry of another network; a thread is one network's talk.
    let mut list = |filter: &ListFilter| -> Result<Vec<StoredEntry>, E> {
        let mut found = list(filter)?;
        found.retain(|e| e.entry.network == network);
        Ok(found)
    };
    let mut cut_short = false;
    let notes = match shown(&view.stored) {
        Body::Enquiry(_) => {
            // By reference, not kind: a private network's notes are sealed until opened.
            let filter = ListFilter {
                enquiry: Some(root),
                limit: Some(LIST_LIMIT_MAX),
                ..ListFilter::default()
            };
            let mut notes = list(&filter)?;
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
            let mut found = list(&filter)?;
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
pub fn shown(e: &StoredEntry) -> &Body {
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

    fn comment_on(on: EntryId, t: u64) -> StoredEntry {
        stored(signed(
            &key(1),
            network(1),
            t,
            vec![reply_to(on)],
            comment_body("c"),
        ))
    }

    #[test]
    fn replies_nest_under_what_they_answer() {
        let post = EntryId([9; 32]);
        let (first, second) = (comment_on(post, 1), comment_on(post, 2));
        let reply = comment_on(first.id, 3);
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

    #[test]
    fn a_comment_from_another_network_is_not_in_the_thread() {
        let post = comment_on(EntryId([7; 32]), 0);
        let here = comment_on(post.id, 1);
        let elsewhere = stored(signed(
            &key(1),
            network(2),
            2,
            vec![reply_to(post.id)],
            comment_body("c"),
        ));
        let view = EntryView {
            stored: post.clone(),
            edited_by: None,
            versions: vec![post.id],
        };
        let thread = assemble::<()>(view, |f| {
            Ok(match f.reply_to {
                Some(p) if p == post.id => vec![here.clone(), elsewhere.clone()],
                _ => Vec::new(),
            })
        })
        .expect("listing never fails here");
        assert_eq!(thread.comment_count(), 1);
        assert_eq!(thread.comments[0].comment.id, here.id);
    }

    #[test]
    fn assemble_asks_level_by_level_and_orders_oldest_first() {
        let post = comment_on(EntryId([7; 32]), 0);
        let (late, early) = (comment_on(post.id, 5), comment_on(post.id, 1));
        let reply = comment_on(early.id, 6);
        let mut asked = Vec::new();
        let view = EntryView {
            stored: post.clone(),
            edited_by: None,
            versions: vec![post.id],
        };
        let thread = assemble::<()>(view, |f| {
            asked.push(f.reply_to);
            Ok(match f.reply_to {
                Some(p) if p == post.id => vec![late.clone(), early.clone()],
                Some(p) if p == early.id => vec![reply.clone()],
                _ => Vec::new(),
            })
        })
        .expect("listing never fails here");
        assert_eq!(thread.comments[0].comment.id, early.id);
        assert_eq!(thread.comments[0].replies[0].comment.id, reply.id);
        assert_eq!(thread.comment_count(), 3);
        assert_eq!(asked.len(), 4, "root, two comments, one reply: {asked:?}");
    }
}
