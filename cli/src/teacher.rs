//! The teacher's signing key: created by `staffroom init`, kept in the data dir (mode 0600).

use std::path::Path;

use anyhow::{bail, Context};
use staffroom_node::config::DataDir;
use staffroom_node::secret_file;
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
    let key = SigningKey::from_bytes(&secret_file::random_32()?);
    secret_file::write(&path, hex::encode(key.to_bytes()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

/// Loads the teacher's key, with a clear error when there is none.
pub fn load(data: &DataDir) -> anyhow::Result<SigningKey> {
    let path = data.teacher_key();
    let bytes = match secret_file::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no teacher key in {}: create one with `staffroom init`",
                dir(&path)
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut secret = [0u8; 32];
    hex::decode_to_slice(String::from_utf8_lossy(&bytes).trim(), &mut secret)
        .ok()
        .with_context(|| format!("{} is not a Staffroom teacher key", path.display()))?;
    Ok(SigningKey::from_bytes(&secret))
}

pub fn author_id(key: &SigningKey) -> AuthorId {
    AuthorId(key.verifying_key().to_bytes())
}

fn dir(path: &Path) -> String {
    path.parent().unwrap_or(path).display().to_string()
}
