//! Sealing and opening: what members' nodes can read, what no one else can, and that every
//! node still verifies a sealed entry the same way.

use super::crypto::{key_id, open_body, open_grant, seal_body, seal_key, SealError};
use super::{Grant, KeyGrants};
use crate::fixtures::{blog_body, key, network, signed};
use crate::{verify_entry, Body, Draft, NodeKey};

const NOW: u64 = 1_767_225_600_000;
const CONTENT_KEY: [u8; 32] = [42; 32];

fn node_key(seed: u8) -> NodeKey {
    NodeKey(key(seed).verifying_key().to_bytes())
}

fn sealed_post(title: &str) -> crate::Entry {
    let author = key(1);
    let at = (
        &network(1),
        &crate::AuthorId(author.verifying_key().to_bytes()),
        NOW,
    );
    let sealed = seal_body(at, &CONTENT_KEY, [7; 24], &blog_body(title)).expect("sealed");
    signed(&author, network(1), NOW, vec![], Body::Sealed(sealed))
}

#[test]
fn a_sealed_entry_verifies_anywhere_and_opens_only_with_its_key() {
    let entry = sealed_post("Our reading trial");
    let bytes = entry.encode();
    // Any node verifies it; the plaintext is nowhere in the bytes.
    verify_entry(&bytes, NOW).expect("verifies without the key");
    let needle = b"Our reading trial";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    assert_eq!(
        open_body(&entry, &CONTENT_KEY),
        Ok(blog_body("Our reading trial"))
    );
    assert_eq!(
        open_body(&entry, &[43; 32]),
        Err(SealError::KeyIdMismatch),
        "another key does not even match the id"
    );
}

#[test]
fn a_ciphertext_passed_off_under_another_author_does_not_open() {
    let entry = sealed_post("Mine");
    let copied = Draft {
        network: entry.network,
        created_at_ms: entry.created_at_ms,
        refs: vec![],
        body: entry.body.clone(),
    }
    .sign(&key(2));
    verify_entry(&copied.encode(), NOW).expect("a valid entry of its own");
    assert_eq!(open_body(&copied, &CONTENT_KEY), Err(SealError::CannotOpen));
}

#[test]
fn a_key_grant_opens_only_on_its_node_and_commits_to_its_key() {
    let grant = seal_key(&network(1), &CONTENT_KEY, &node_key(9), [5; 32]).expect("sealed");
    let id = key_id(&CONTENT_KEY);
    assert_eq!(
        open_grant(&network(1), &id, &grant, &key(9)),
        Ok(CONTENT_KEY)
    );
    assert_eq!(
        open_grant(&network(1), &id, &grant, &key(8)),
        Err(SealError::CannotOpen),
        "another node cannot"
    );
    assert_eq!(
        open_grant(&network(2), &id, &grant, &key(9)),
        Err(SealError::CannotOpen),
        "bound to its network"
    );
    let forged = Grant {
        sealed_key: {
            let mut s = grant.sealed_key;
            s[0] ^= 1;
            s
        },
        ..grant.clone()
    };
    assert_eq!(
        open_grant(&network(1), &id, &forged, &key(9)),
        Err(SealError::CannotOpen)
    );
}

#[test]
fn key_grants_are_checked_like_any_entry() {
    let id = key_id(&CONTENT_KEY);
    let grant = |seed| seal_key(&network(1), &CONTENT_KEY, &node_key(seed), [5; 32]).unwrap();
    let mut grants = vec![grant(9), grant(10)];
    grants.sort_by_key(|g| g.node.0);
    let ok = KeyGrants {
        key_id: id,
        grants: grants.clone(),
    };
    let entry = signed(&key(9), network(1), NOW, vec![], Body::KeyGrants(ok));
    verify_entry(&entry.encode(), NOW).expect("ascending grants");
    let reversed = KeyGrants {
        key_id: id,
        grants: grants.into_iter().rev().collect(),
    };
    let entry = signed(&key(9), network(1), NOW, vec![], Body::KeyGrants(reversed));
    let error = verify_entry(&entry.encode(), NOW).unwrap_err();
    assert_eq!(error.code(), "invalid_field");
    assert!(!error.blames_sender(), "a later kind: refused, not blamed");
    let empty = KeyGrants {
        key_id: id,
        grants: vec![],
    };
    let entry = signed(&key(9), network(1), NOW, vec![], Body::KeyGrants(empty));
    assert!(verify_entry(&entry.encode(), NOW).is_err());
}

#[test]
fn only_content_is_sealed_and_opened_content_obeys_its_kinds_rules() {
    let author = crate::AuthorId(key(1).verifying_key().to_bytes());
    let at = (&network(1), &author, NOW);
    let membership = Body::Membership(crate::membership::Action::Leave);
    assert!(matches!(
        seal_body(at, &CONTENT_KEY, [7; 24], &membership),
        Err(SealError::NotSealable(_))
    ));
    // A sealed comment without the reply it needs: relays accept it, members cannot read it.
    let comment = Body::Comment(crate::Comment {
        body_md: "Agreed.".into(),
    });
    let sealed = seal_body(at, &CONTENT_KEY, [7; 24], &comment).unwrap();
    let entry = signed(&key(1), network(1), NOW, vec![], Body::Sealed(sealed));
    verify_entry(&entry.encode(), NOW).expect("relays cannot tell");
    assert!(matches!(
        open_body(&entry, &CONTENT_KEY),
        Err(SealError::BadContent(_))
    ));
}

#[test]
fn a_sealed_resource_lists_its_sealed_files_in_the_clear_and_members_check_them() {
    let author = key(1);
    let at = (
        &network(1),
        &crate::AuthorId(author.verifying_key().to_bytes()),
        NOW,
    );
    let mut body = crate::fixtures::resource_body("Worksheets");
    let file = crate::FileRef {
        name: "sheet.pdf".into(),
        media_type: "application/pdf".into(),
        size_bytes: 1000,
        root: crate::FileRoot([6; 32]),
    };
    if let Body::Resource(r) = &mut body {
        r.files = vec![file.clone()];
    }
    let sealed = seal_body(at, &CONTENT_KEY, [7; 24], &body).unwrap();
    assert_eq!(sealed.files.len(), 1);
    assert_eq!(
        (sealed.files[0].root, sealed.files[0].size_bytes),
        (file.root, 1000)
    );
    let entry = signed(
        &author,
        network(1),
        NOW,
        vec![],
        Body::Sealed(sealed.clone()),
    );
    verify_entry(&entry.encode(), NOW).expect("valid");
    assert_eq!(open_body(&entry, &CONTENT_KEY), Ok(body));
    // A clear list that lies about the sealed content: relays cannot tell, members refuse.
    let mut lying = sealed;
    lying.files[0].size_bytes = 999;
    let entry = signed(&author, network(1), NOW, vec![], Body::Sealed(lying));
    verify_entry(&entry.encode(), NOW).expect("valid to relays");
    assert!(matches!(
        open_body(&entry, &CONTENT_KEY),
        Err(SealError::BadContent(_))
    ));
}
