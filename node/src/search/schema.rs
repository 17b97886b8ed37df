//! What the search index holds for each entry: its text to rank, the facets to filter and
//! count by, and its time to sort by. One document per shown entry: the current version of
//! each, never one a facilitator hid. Only the id is stored; the entry itself is read from
//! the store, which stays the one source of truth.

use staffroom_protocol::{Body, EntryId, EntryKind};
use tantivy::schema::{
    FacetOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
    STORED, STRING,
};
use tantivy::{Index, TantivyDocument};

use crate::store::StoredEntry;

/// Bumped whenever what a document holds changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 2;

/// The facets, by the name each has in requests, responses and facet paths.
pub const FACETS: [&str; 9] = [
    "kind",
    "network",
    "author",
    "tag",
    "subject",
    "key_stage",
    "licence",
    "language",
    "resource_type",
];

/// The tokenizer for text: words lowercased and stemmed (English), so "fractions" finds
/// "fraction".
const TOKENIZER: &str = "en_stem";

#[derive(Clone, Copy)]
pub struct Fields {
    /// The entry's id, hex (stored, to find the entry; indexed, to delete it).
    pub id: Field,
    /// The id of the entry's original (its first version), hex: an edit replaces it.
    pub original: Field,
    /// The network's id, hex: a network is reindexed as one.
    pub network: Field,
    pub title: Field,
    pub body: Field,
    /// Tags, subjects and key stage as words.
    pub labels: Field,
    /// Every facet, as `/name/value` (and `/opened/network` for sealed entries opened here).
    pub facet: Field,
    /// Milliseconds since the Unix epoch, when the entry was written.
    pub time: Field,
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            id: b.add_text_field("id", STRING | STORED),
            original: b.add_text_field("original", STRING),
            network: b.add_text_field("network", STRING),
            title: b.add_text_field("title", text.clone()),
            body: b.add_text_field("body", text.clone()),
            labels: b.add_text_field("labels", text),
            facet: b.add_facet_field("facet", FacetOptions::default()),
            time: b.add_u64_field("time", INDEXED | FAST),
        };
        (b.build(), fields)
    }

    /// The fields of an index opened from disk, if it has this schema.
    pub fn of(index: &Index) -> Option<Fields> {
        let (expected, fields) = Fields::schema();
        (index.schema() == expected).then_some(fields)
    }

    /// The document for `stored`, whose readable content is `body` (the opened body of a
    /// sealed entry, or none when this node cannot open it).
    pub fn document(
        &self,
        stored: &StoredEntry,
        body: Option<&Body>,
        original: &EntryId,
    ) -> TantivyDocument {
        let e = &stored.entry;
        let mut doc = TantivyDocument::new();
        doc.add_text(self.id, stored.id.to_string());
        doc.add_text(self.original, original.to_string());
        doc.add_text(self.network, e.network.to_string());
        doc.add_u64(self.time, e.created_at_ms);
        let mut facet = |name: &str, value: &str| {
            let value = value.trim().to_lowercase();
            if !value.is_empty() {
                doc.add_facet(
                    self.facet,
                    tantivy::schema::Facet::from_path([name, &value]),
                );
            }
        };
        facet("network", &e.network.to_string());
        facet("author", &e.author.to_string());
        // Words opened from a sealed entry are for its network's members only: searches by
        // anyone else leave such documents out.
        if e.kind() == EntryKind::Sealed && body.is_some() {
            facet("opened", &e.network.to_string());
        }
        let kind = body.map_or(e.kind(), Body::kind).family();
        facet("kind", kind.name());
        let Some(body) = body else {
            return doc;
        };
        let mut labels = Vec::new();
        let (title, text) = match body {
            Body::BlogPost(p) => {
                for tag in &p.tags {
                    facet("tag", tag);
                    labels.push(tag.as_str());
                }
                (p.title.as_str(), p.body_md.as_str())
            }
            Body::Resource(r) => {
                for subject in &r.subjects {
                    facet("subject", subject);
                    labels.push(subject.as_str());
                }
                facet("key_stage", &r.key_stage);
                facet("licence", &r.licence);
                facet("language", &r.language);
                for file in &r.files {
                    facet("resource_type", resource_type(&file.media_type));
                }
                labels.push(r.key_stage.as_str());
                (r.title.as_str(), r.description_md.as_str())
            }
            Body::Enquiry(q) => (q.question.as_str(), q.description_md.as_str()),
            Body::EnquiryNote(n) => ("", n.body_md.as_str()),
            Body::Comment(c) => ("", c.body_md.as_str()),
            _ => ("", ""),
        };
        doc.add_text(self.title, title);
        doc.add_text(self.body, text);
        doc.add_text(self.labels, labels.join(" "));
        doc
    }
}

/// What sort of resource a file makes, from its media type: the `resource_type` facet and
/// schema.org's `learningResourceType`. The protocol has no such field; the media type its
/// author signed is the one fact every node agrees on.
pub fn resource_type(media_type: &str) -> &'static str {
    let (kind, sub) = media_type.split_once('/').unwrap_or((media_type, ""));
    let has = |words: &[&str]| words.iter().any(|w| sub.contains(w));
    match kind {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ if has(&["presentation", "powerpoint"]) => "slides",
        _ if has(&["spreadsheet", "excel", "csv"]) => "spreadsheet",
        "application"
            if has(&[
                "pdf",
                "msword",
                "wordprocessing",
                "opendocument.text",
                "rtf",
                "epub",
            ]) =>
        {
            "document"
        }
        "text" => "text",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::resource_type;

    #[test]
    fn media_types_sort_into_resource_types() {
        for (media, sort) in [
            ("application/pdf", "document"),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "document",
            ),
            (
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "slides",
            ),
            (
                "application/vnd.oasis.opendocument.spreadsheet",
                "spreadsheet",
            ),
            ("text/csv", "spreadsheet"),
            ("text/plain", "text"),
            ("image/png", "image"),
            ("video/mp4", "video"),
            ("application/octet-stream", "other"),
        ] {
            assert_eq!(resource_type(media), sort, "{media}");
        }
    }
}
