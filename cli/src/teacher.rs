//! The teacher's signing key: created by `staffroom init`, kept in the data dir (mode 0600).

use anyhow::bail;
use staffroom_node::config::DataDir;
use staffroom_node::teacher_key;
use staffroom_protocol::{AuthorId, SigningKey};

/// Creates a new key. Refuses to replace an existing one: a lost key is a lost identity.
pub fn create(data: &DataDir) -> anyhow::Result<SigningKey> {
    let path = data.teacher_key();
    if path.exists() {
        bail!(
            "a teacher key already exists at {}; it was kept",
            path.display()
        );
    }
    Ok(teacher_key::create(&path)?)
}

/// Loads the teacher's key, with a clear error when there is none.
pub fn load(data: &DataDir) -> anyhow::Result<SigningKey> {
    Ok(teacher_key::load(&data.teacher_key())?)
}

pub fn author_id(key: &SigningKey) -> AuthorId {
    AuthorId(key.verifying_key().to_bytes())
}
