//! The verdict vectors of resources with files (kind 8): accepted lists, and broken file
//! rules, refused without blaming the sender (first-release nodes relay kind 8 unchecked).

use super::generate::{accepted_one, refused_one, resigned, signed, NOW};
use super::{Accepted, Refused};
use staffroom_protocol::files::FILE_BYTES_MAX;
use staffroom_protocol::fixtures;
use staffroom_protocol::*;

fn file(name: &str, media_type: &str, bytes: &[u8]) -> FileRef {
    FileRef {
        name: name.into(),
        media_type: media_type.into(),
        size_bytes: bytes.len() as u64,
        root: FileRoot::of(bytes),
    }
}

fn with_files(files: Vec<FileRef>) -> Vec<u8> {
    let mut body = fixtures::resource_body("Fractions worksheet");
    if let Body::Resource(r) = &mut body {
        r.files = files;
    }
    signed(NOW, vec![], body)
}

fn pdf() -> FileRef {
    file("fractions.pdf", "application/pdf", b"%PDF-1.7 fractions")
}

pub fn accepted() -> Vec<Accepted> {
    vec![
        accepted_one(
            "resource_with_files",
            "kind 8: a resource's fields, then a u8 count and each file's name, media type, \
             u64 size and 32-byte BLAKE3 root",
            with_files(vec![
                pdf(),
                file("notes.md", "text/markdown", b"# Teacher notes"),
            ]),
            true,
        ),
        accepted_one(
            "resource_empty_file",
            "an empty file's root is BLAKE3 of no bytes",
            with_files(vec![file("blank.txt", "text/plain", b"")]),
            true,
        ),
    ]
}

pub fn refused() -> Vec<Refused> {
    // A kind-2 resource relabelled kind 8 with a file count of 0: a value with two encodings.
    let kind2 = signed(NOW, vec![], fixtures::resource_body("No files"));
    let mut no_files = kind2[..kind2.len() - 64].to_vec();
    no_files[73] = 8;
    no_files.push(0);
    let mut wrong_empty_root = file("blank.txt", "text/plain", b"");
    wrong_empty_root.root = FileRoot([0; 32]);
    let mut huge = pdf();
    huge.size_bytes = FILE_BYTES_MAX + 1;
    vec![
        refused_one(
            "resource_with_no_files",
            "kind 8 listing no file (it would be a kind-2 resource)",
            resigned(&no_files),
            "invalid_field",
        ),
        refused_one(
            "file_name_with_directory",
            "a file name may not contain / or \\",
            with_files(vec![file("../notes.md", "text/markdown", b"x")]),
            "invalid_field",
        ),
        refused_one(
            "media_type_upper_case",
            "media types are written in lower case, so each has one encoding",
            with_files(vec![file("a.pdf", "Application/PDF", b"x")]),
            "invalid_field",
        ),
        refused_one(
            "files_with_same_name",
            "two files of one resource share a name",
            with_files(vec![pdf(), pdf()]),
            "invalid_field",
        ),
        refused_one(
            "empty_file_wrong_root",
            "a file of 0 bytes whose root is not BLAKE3 of no bytes",
            with_files(vec![wrong_empty_root]),
            "invalid_field",
        ),
        refused_one(
            "file_over_one_tebibyte",
            "a file size over 2^40 bytes",
            with_files(vec![huge]),
            "invalid_field",
        ),
    ]
}
