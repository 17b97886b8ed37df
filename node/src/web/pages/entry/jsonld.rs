//! schema.org data about an entry, as JSON-LD: a blog post is a `BlogPosting`, a resource a
//! `LearningResource` (level, age range, licence, language, sources, its files as
//! `MediaObject`s), an
//! enquiry a `CreativeWork`, a note or comment a `Comment`.

use serde_json::{json, Value};
use staffroom_protocol::Body;

use crate::store::StoredEntry;
use crate::thread::shown;
use crate::web::names::iso as names_iso;

/// Where an entry's page is, and what it is based on (absolute URLs; resources only).
pub struct Place<'a> {
    pub origin: &'a str,
    pub url: &'a str,
    pub based_on: &'a [String],
}

/// The JSON-LD of `stored`, written by `author`, at `place`.
pub fn about(stored: &StoredEntry, author: &str, place: Place<'_>) -> Value {
    let Place {
        origin,
        url,
        based_on,
    } = place;
    let person = json!({ "@type": "Person", "name": author, "url": format!("{origin}/a/{}", stored.entry.author) });
    let published = names_iso(stored.entry.created_at_ms);
    let mut data = match shown(stored) {
        Body::BlogPost(p) => json!({
            "@type": "BlogPosting",
            "headline": p.title,
            "keywords": p.tags,
        }),
        Body::Resource(r) => json!({
            "@type": "LearningResource",
            "name": r.title,
            "about": r.subjects,
            "educationalLevel": r.key_stage,
            "typicalAgeRange": format!("{}-{}", r.age_min_years, r.age_max_years),
            "license": licence_url(&r.licence),
            "inLanguage": r.language,
            "learningResourceType": learning_resource_types(r),
            "encoding": r.files.iter().enumerate().map(|(i, f)| json!({
                "@type": "MediaObject",
                "name": f.name,
                "encodingFormat": f.media_type,
                "contentSize": f.size_bytes.to_string(),
                "contentUrl": format!("{url}/files/{i}"),
            })).collect::<Vec<_>>(),
        }),
        Body::Enquiry(q) => json!({ "@type": "CreativeWork", "name": q.question }),
        _ => json!({ "@type": "Comment" }),
    };
    if let Value::Object(fields) = &mut data {
        fields.insert("@context".into(), json!("https://schema.org"));
        fields.insert("url".into(), json!(url));
        fields.insert("author".into(), person);
        fields.insert("datePublished".into(), json!(published));
        fields.insert("identifier".into(), json!(stored.id.to_string()));
        if !based_on.is_empty() {
            fields.insert("isBasedOn".into(), json!(based_on));
        }
    }
    data
}

/// An SPDX identifier's page: what `rel="license"` and schema.org's `license` point to.
pub fn licence_url(spdx: &str) -> String {
    // SPDX identifiers are letters, digits, `-`, `.` and `+`; anything else is left out
    // rather than put in a link.
    let id: String = spdx
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'))
        .collect();
    format!("https://spdx.org/licenses/{id}.html")
}

/// The sorts of resource a resource's files make, each once, in file order.
fn learning_resource_types(r: &staffroom_protocol::Resource) -> Vec<&'static str> {
    let mut sorts = Vec::new();
    for file in &r.files {
        let sort = crate::search::schema::resource_type(&file.media_type);
        if !sorts.contains(&sort) {
            sorts.push(sort);
        }
    }
    sorts
}
