//! Ids as teachers type them, like git's: a full id, or its first few hex characters (at
//! least 4) when only one entry, author or network here starts with them. An ambiguous start
//! lists the candidates; an unknown one says so.

use anyhow::{bail, Context};
use staffroom_node::api::resolve::RESOLVE_CANDIDATES_MAX;
use staffroom_node::api::ApiClient;
use staffroom_protocol::{AuthorId, EntryId, IdPrefix, ID_PREFIX_CHARS_MIN};

use crate::render;

/// The entry `given` names (`what` says which, for the messages: "entry", "enquiry"…).
pub async fn entry(api: &ApiClient, given: &str, what: &str) -> anyhow::Result<EntryId> {
    if let Ok(id) = given.parse::<EntryId>() {
        return Ok(id);
    }
    let prefix = prefix(given, what)?;
    let found = api.resolve(&prefix).await?.entries;
    let mut described = Vec::new();
    for id in found.iter().take(RESOLVE_CANDIDATES_MAX) {
        let line = match api.get(id).await {
            Ok(view) => render::row(&view.stored, &render::Names::new()),
            // One this node keeps but does not show (a kind it does not know, say).
            Err(_) => id.short(),
        };
        described.push(format!(
            "{id}  {}",
            line.split_once("  ").map_or("", |(_, rest)| rest)
        ));
    }
    pick(&prefix, what, &found, &described)
}

/// The author `given` names: a full key, or the start of one that only one teacher known
/// here (registered, or the author of an entry stored here) has.
pub async fn author(api: &ApiClient, given: &str) -> anyhow::Result<AuthorId> {
    if let Ok(id) = given.parse::<AuthorId>() {
        return Ok(id);
    }
    let prefix = prefix(given, "author")?;
    let found = api.resolve(&prefix).await?.authors;
    let described: Vec<String> = found.iter().map(|a| a.to_hex()).collect();
    pick(&prefix, "author", &found, &described)
}

fn prefix(given: &str, what: &str) -> anyhow::Result<IdPrefix> {
    given.parse().with_context(|| {
        format!(
            "give the {what}'s id, or at least its first {ID_PREFIX_CHARS_MIN} characters \
             (as `staffroom list` shows them)"
        )
    })
}

/// The one candidate, or an error that lists them (`described` in the same order).
pub fn pick<T: Copy>(
    prefix: &IdPrefix,
    what: &str,
    found: &[T],
    described: &[String],
) -> anyhow::Result<T> {
    match found {
        [one] => Ok(*one),
        [] => bail!("no {what} known to this node has an id starting with {prefix}"),
        many => {
            let count = if many.len() > RESOLVE_CANDIDATES_MAX {
                format!("more than {RESOLVE_CANDIDATES_MAX}")
            } else {
                many.len().to_string()
            };
            let listed: String = described.iter().map(|d| format!("\n  {d}")).collect();
            bail!("{prefix} is ambiguous: {count} ids start with it:{listed}\ngive more of the {what}'s id")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_candidate_is_picked_and_others_are_listed_or_refused() {
        let prefix: IdPrefix = "abcd".parse().unwrap();
        assert_eq!(pick(&prefix, "entry", &[7], &["x".into()]).unwrap(), 7);
        let none = pick::<u8>(&prefix, "entry", &[], &[]).unwrap_err();
        assert!(
            none.to_string().contains("no entry known to this node"),
            "{none}"
        );
        let two = pick(
            &prefix,
            "entry",
            &[1, 2],
            &["first".into(), "second".into()],
        );
        let message = two.unwrap_err().to_string();
        assert!(message.contains("abcd is ambiguous: 2 ids"), "{message}");
        assert!(message.contains("\n  first\n  second"), "{message}");
        let many: Vec<u8> = (0..=RESOLVE_CANDIDATES_MAX as u8).collect();
        let message = pick(&prefix, "entry", &many, &[]).unwrap_err().to_string();
        assert!(message.contains("more than 10"), "{message}");
        let err = prefix_err("ab");
        assert!(err.contains("at least its first 4 characters"), "{err}");
    }

    fn prefix_err(given: &str) -> String {
        format!("{:#}", super::prefix(given, "entry").unwrap_err())
    }
}
