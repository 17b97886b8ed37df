//! Publication entries (kind 12): a facilitator says whether their network's content may be
//! read by anyone on the member schools' web pages (`public`) or by its members only. Every
//! member node holds the same publication entries, so every one serves the same pages.
//!
//! The network's visibility is that of its newest publication entry by (time, id) that its
//! node admitted (only facilitators' are; see the node's admission); with none, members only.
//! A private network's content is sealed, so it is never public: such an entry is refused
//! there by admission, and this body carries nothing that could change that.

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::error::EntryError;

/// The body of a kind-12 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Anyone may read the network's pages and feeds on its member nodes.
    pub public: bool,
}

/// The encoded visibility: 1 members only, 2 public. Anything else is `invalid_field`.
const MEMBERS_ONLY: u8 = 1;
const PUBLIC: u8 = 2;

impl Publication {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(if self.public { PUBLIC } else { MEMBERS_ONLY });
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Publication, EntryError> {
        match r.u8("visibility")? {
            MEMBERS_ONLY => Ok(Publication { public: false }),
            PUBLIC => Ok(Publication { public: true }),
            _ => Err(EntryError::InvalidField {
                field: "visibility",
                reason: "must be 1 (members only) or 2 (public)",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_round_trips_and_nothing_else_decodes() {
        for public in [false, true] {
            let mut w = Writer::with_capacity(1);
            Publication { public }.encode(&mut w);
            let bytes = w.finish();
            assert_eq!(
                Publication::decode(&mut Reader::new(&bytes))
                    .unwrap()
                    .public,
                public
            );
        }
        for bad in [0u8, 3, 255] {
            assert!(
                Publication::decode(&mut Reader::new(&[bad])).is_err(),
                "{bad}"
            );
        }
    }
}
