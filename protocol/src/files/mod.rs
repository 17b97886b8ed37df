//! The files a resource carries: how each is named in a signed entry, and the fixed unit in
//! which file bytes are verified as they travel.
//!
//! An entry lists its files (name, media type, size, BLAKE3 root) but never carries their
//! bytes: those travel separately (see `docs/protocol.md`, "Files") and are checked against
//! the root, one chunk group at a time, before anything is kept.

pub mod groups;
pub mod plan;
pub mod wire;

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::error::EntryError;
use crate::text;

/// Files one resource lists at most.
pub const FILES_COUNT_MAX: usize = 32;
/// A file's name, in bytes of UTF-8.
pub const FILE_NAME_BYTES_MAX: usize = 255;
/// A media type such as `application/pdf`.
pub const MEDIA_TYPE_BYTES_MAX: usize = 127;
/// The largest file the protocol can describe (1 TiB). Each node sets its own, much lower,
/// limit on what it fetches; that limit is local and never part of a verdict.
pub const FILE_BYTES_MAX: u64 = 1 << 40;
/// BLAKE3 works on 1 KiB chunks; verified streaming groups 2^4 = 16 of them.
pub const CHUNK_GROUP_LOG: u8 = 4;
/// Bytes of one chunk group (16 KiB): the unit in which file bytes are requested, verified,
/// stored and counted as present. Part of the protocol: outboards and range encodings
/// depend on it.
pub const CHUNK_GROUP_BYTES: u64 = 1024 << CHUNK_GROUP_LOG;

/// The BLAKE3 hash of a file's bytes (its "root"), the file's content address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRoot(#[serde(with = "hex_32")] pub [u8; 32]);

impl FileRoot {
    /// The root of `bytes`, hashed in memory.
    pub fn of(bytes: &[u8]) -> FileRoot {
        FileRoot(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for logs and listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl std::fmt::Debug for FileRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileRoot({})", self.short())
    }
}

impl std::fmt::Display for FileRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for FileRoot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| format!("{s:?} is not a hex file root"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("a file root is 64 hex digits, not {}", s.len()))?;
        Ok(FileRoot(array))
    }
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// One file of a resource, as its author signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The file's name, without any directory: `fractions-worksheet.pdf`.
    pub name: String,
    /// Its media type, lower case: `application/pdf`.
    pub media_type: String,
    pub size_bytes: u64,
    pub root: FileRoot,
}

impl FileRef {
    /// Chunk groups the file is made of (0 for an empty file).
    pub fn group_count(&self) -> u64 {
        group_count(self.size_bytes)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.str(&self.name);
        w.str(&self.media_type);
        w.u64(self.size_bytes);
        w.bytes(&self.root.0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<FileRef, EntryError> {
        Ok(FileRef {
            name: r.str("file name", FILE_NAME_BYTES_MAX)?,
            media_type: r.str("media type", MEDIA_TYPE_BYTES_MAX)?,
            size_bytes: r.u64("file size")?,
            root: FileRoot(r.array("file root")?),
        })
    }

    fn check(&self) -> Result<(), EntryError> {
        check_file_name(&self.name)?;
        check_media_type(&self.media_type)?;
        if self.size_bytes > FILE_BYTES_MAX {
            return Err(invalid("file size", "must be at most 1 TiB"));
        }
        if self.size_bytes == 0 && self.root != FileRoot::of(&[]) {
            return Err(invalid(
                "file root",
                "an empty file's root must be the BLAKE3 hash of no bytes",
            ));
        }
        Ok(())
    }
}

/// Chunk groups in a file of `size_bytes`.
pub fn group_count(size_bytes: u64) -> u64 {
    size_bytes.div_ceil(CHUNK_GROUP_BYTES)
}

/// Encodes a resource's file list: a `u8` count, then each file.
pub(crate) fn encode_list(files: &[FileRef], w: &mut Writer) {
    w.u8(crate::codec::saturating_count(files.len()));
    for file in files {
        file.encode(w);
    }
}

pub(crate) fn decode_list(r: &mut Reader<'_>) -> Result<Vec<FileRef>, EntryError> {
    let count = usize::from(r.u8("files")?);
    if count > FILES_COUNT_MAX {
        return Err(EntryError::TooMany {
            field: "files",
            count,
            max: FILES_COUNT_MAX,
        });
    }
    (0..count).map(|_| FileRef::decode(r)).collect()
}

/// The rules of a resource's file list: 1 to [`FILES_COUNT_MAX`] files, each valid, no two
/// with the same name.
pub(crate) fn check_list(files: &[FileRef]) -> Result<(), EntryError> {
    if files.is_empty() {
        return Err(invalid("files", "must list at least one file"));
    }
    if files.len() > FILES_COUNT_MAX {
        return Err(EntryError::TooMany {
            field: "files",
            count: files.len(),
            max: FILES_COUNT_MAX,
        });
    }
    for (i, file) in files.iter().enumerate() {
        file.check()?;
        if files[..i].iter().any(|f| f.name == file.name) {
            return Err(invalid("files", "two files have the same name"));
        }
    }
    Ok(())
}

/// A name a file can be saved under on any common system: one line, no directory, not a
/// special name, no trailing dot or space (which Windows drops).
fn check_file_name(name: &str) -> Result<(), EntryError> {
    text::single_line("file name", name, FILE_NAME_BYTES_MAX)?;
    if name.contains(['/', '\\']) {
        return Err(invalid("file name", "must not contain / or \\"));
    }
    if name == "." || name == ".." {
        return Err(invalid("file name", "must not be . or .."));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with([' ', '.']) {
        return Err(invalid(
            "file name",
            "must not start with a space or end with a space or dot",
        ));
    }
    Ok(())
}

/// `type/subtype` as RFC 6838 names them (restricted-name characters), in lower case so
/// each media type has one encoding. Parameters such as `; charset=` are not part of it.
fn check_media_type(media_type: &str) -> Result<(), EntryError> {
    const REASON: &str = "must be a lower-case type/subtype such as application/pdf";
    let restricted_name = |part: &str| {
        (1..=63).contains(&part.len())
            && part.as_bytes()[0].is_ascii_alphanumeric()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            })
    };
    match media_type.split_once('/') {
        Some((kind, sub)) if restricted_name(kind) && restricted_name(sub) => Ok(()),
        _ => Err(invalid("media type", REASON)),
    }
}

fn invalid(field: &'static str, reason: &'static str) -> EntryError {
    EntryError::InvalidField { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, media_type: &str) -> FileRef {
        FileRef {
            name: name.into(),
            media_type: media_type.into(),
            size_bytes: 5,
            root: FileRoot::of(b"hello"),
        }
    }

    #[test]
    fn names_that_every_system_can_save_are_accepted() {
        for name in [
            "worksheet.pdf",
            "Fractions – Y7 (v2).docx",
            "ワークシート.pdf",
            ".hidden",
        ] {
            assert_eq!(
                check_list(&[file(name, "application/pdf")]),
                Ok(()),
                "{name}"
            );
        }
        for name in [
            "",
            "a/b.pdf",
            "a\\b",
            "..",
            ".",
            "trailing.",
            "trailing ",
            " lead",
            "a\nb",
        ] {
            assert!(
                check_list(&[file(name, "application/pdf")]).is_err(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn media_types_are_lower_case_type_and_subtype() {
        for ok in [
            "application/pdf",
            "image/svg+xml",
            "application/vnd.ms-excel",
            "text/x-c",
        ] {
            assert_eq!(check_media_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "Application/PDF",
            "pdf",
            "text/",
            "/plain",
            "text/plain; charset=utf-8",
            "a/b/c",
        ] {
            assert!(check_media_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_rules() {
        assert!(check_list(&[]).is_err());
        let same = [
            file("a.pdf", "application/pdf"),
            file("a.pdf", "text/plain"),
        ];
        assert!(check_list(&same).is_err());
        let many: Vec<FileRef> = (0..=FILES_COUNT_MAX)
            .map(|i| file(&format!("{i}.txt"), "text/plain"))
            .collect();
        assert!(matches!(check_list(&many), Err(EntryError::TooMany { .. })));
        let mut empty = file("empty.txt", "text/plain");
        empty.size_bytes = 0;
        assert!(
            check_list(&[empty.clone()]).is_err(),
            "root of hello for no bytes"
        );
        empty.root = FileRoot::of(&[]);
        assert_eq!(check_list(&[empty]), Ok(()));
        let mut huge = file("huge.bin", "application/octet-stream");
        huge.size_bytes = FILE_BYTES_MAX + 1;
        assert!(check_list(&[huge]).is_err());
    }

    #[test]
    fn group_counts() {
        assert_eq!(group_count(0), 0);
        assert_eq!(group_count(1), 1);
        assert_eq!(group_count(CHUNK_GROUP_BYTES), 1);
        assert_eq!(group_count(CHUNK_GROUP_BYTES + 1), 2);
        assert_eq!(
            group_count(FILE_BYTES_MAX),
            FILE_BYTES_MAX / CHUNK_GROUP_BYTES
        );
    }
}
