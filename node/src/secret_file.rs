//! Small secret files (keys, the API token): written atomically with mode 0600, read bounded.

use std::io::Write;
use std::path::Path;

/// No secret file of ours is larger than this; a larger one is not ours.
const SECRET_BYTES_MAX: u64 = 4096;

/// Writes `bytes` to `path` readable by the owner only. Written to a temporary file first and
/// renamed, so a crash never leaves a half-written key.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
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

/// Reads a secret file, refusing anything implausibly large.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
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
}
