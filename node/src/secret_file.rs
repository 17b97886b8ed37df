//! Small secret files (keys, the API token): written atomically with mode 0600, read bounded,
//! and tightened to 0600 when found laxer; the data directory that holds them kept at 0700,
//! whatever the umask.

use std::io::Write;
use std::path::Path;

/// No secret file of ours is larger than this; a larger one is not ours.
const SECRET_BYTES_MAX: u64 = 4096;

/// Writes `bytes` to `path` readable by the owner only. Written to a temporary file first and
/// renamed, so a crash never leaves a half-written key.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        // The mode above applies only on creation; a leftover temp file may be laxer.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Creates `dir` if needed and makes it the owner's only (0700): it holds the node's keys.
/// The umask cannot loosen it, and a directory found looser is tightened, with a warning.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    // Created private, so only a directory someone else made loose earns the warning.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    tighten(dir, 0o700)
}

/// Sets `path` to `mode` if group or others have any access to it, saying so.
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let was = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if was & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{was:o}"),
                now = format!("{mode:o}"),
                "tightened the permissions of a file holding keys: others could read it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Reads a secret file, refusing anything implausibly large; a file others could read is
/// first made the owner's only (0600).
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    tighten(path, 0o600)?;
    let len = std::fs::metadata(path)?.len();
    if len > SECRET_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is {len} bytes: too large to be a key or token",
                path.display()
            ),
        ));
    }
    std::fs::read(path)
}

/// 32 random bytes from the operating system.
pub fn random_32() -> std::io::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_private_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        write(&path, b"abc").unwrap();
        assert_eq!(read(&path).unwrap(), b"abc");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, vec![0u8; 5000]).unwrap();
        assert!(read(&path).is_err());
        assert_ne!(random_32().unwrap(), random_32().unwrap());
    }

    /// A key file or data directory left readable by others (an old copy, `umask 000`) is
    /// tightened when the node next reads it.
    #[cfg(unix)]
    #[test]
    fn lax_key_files_and_directories_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
        let key = data.join("teacher.key");
        std::fs::write(&key, b"secret").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&key).unwrap(), b"secret");
        assert_eq!(mode(&key), 0o600);
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        let fresh = dir.path().join("fresh/inner");
        write(&fresh.join("node.key"), b"k").unwrap();
        assert_eq!(mode(&fresh), 0o700);
        // Already private: left as it is.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        read(&key).unwrap();
        assert_eq!(mode(&key), 0o400);
    }
}
