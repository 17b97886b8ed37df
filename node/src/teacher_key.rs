//! A teacher's signing key file (`teacher.key`: 64 hex characters, mode 0600). The key in a
//! node's own data directory is that node's admin; a teacher's CLI keeps theirs in its own.

use std::path::Path;

use staffroom_protocol::SigningKey;

use crate::secret_file;

#[derive(Debug, thiserror::Error)]
pub enum TeacherKeyError {
    #[error("no teacher key at {0}: create one with `staffroom init`")]
    Missing(String),
    #[error("{0} is not a Staffroom teacher key")]
    Invalid(String),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Reads the key at `path`.
pub fn load(path: &Path) -> Result<SigningKey, TeacherKeyError> {
    let shown = path.display().to_string();
    let bytes = match secret_file::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TeacherKeyError::Missing(shown))
        }
        Err(source) => {
            return Err(TeacherKeyError::Io {
                path: shown,
                source,
            })
        }
    };
    let mut secret = [0u8; 32];
    hex::decode_to_slice(String::from_utf8_lossy(&bytes).trim(), &mut secret)
        .map_err(|_| TeacherKeyError::Invalid(shown))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Writes a new random key at `path`, which must not exist yet.
pub fn create(path: &Path) -> Result<SigningKey, TeacherKeyError> {
    let io = |source| TeacherKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let key = SigningKey::from_bytes(&secret_file::random_32().map_err(io)?);
    secret_file::write(path, hex::encode(key.to_bytes()).as_bytes()).map_err(io)?;
    Ok(key)
}

/// The key at `path`, created if there is none.
pub fn load_or_create(path: &Path) -> Result<SigningKey, TeacherKeyError> {
    match load(path) {
        Err(TeacherKeyError::Missing(_)) => create(path),
        other => other,
    }
}
