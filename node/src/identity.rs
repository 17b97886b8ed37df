//! The node's own libp2p identity, kept in its data directory across restarts.
//!
//! This key names the *node* on the network. It signs nothing a teacher wrote: entries carry
//! their author's key, so content stays attributable whichever node relays it.

use std::path::Path;

use libp2p::identity::Keypair;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read or write node key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("node key {path} is not a valid libp2p key; move it aside to make a new identity")]
    Invalid { path: String },
}

/// Loads the node key from `path`, or creates and saves a new ed25519 key if there is none.
pub fn load_or_create(path: &Path) -> Result<Keypair, IdentityError> {
    let shown = path.display().to_string();
    match crate::secret_file::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|_| IdentityError::Invalid { path: shown }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .expect("ed25519 keys always encode");
            crate::secret_file::write(path, &bytes).map_err(|source| IdentityError::Io {
                path: shown,
                source,
            })?;
            Ok(key)
        }
        Err(source) => Err(IdentityError::Io {
            path: shown,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Invalid { .. })
        ));
    }
}
