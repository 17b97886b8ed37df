//! The typed bodies of every kind of entry, and how each is encoded and checked.

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::error::EntryError;
use crate::files::{self, FileRef};
use crate::limits::*;
use crate::membership::{wire, Action, Genesis};
use crate::text;

/// What an entry is. The number is its tag in the canonical encoding and never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    BlogPost = 1,
    Resource = 2,
    Enquiry = 3,
    EnquiryNote = 4,
    Comment = 5,
    /// Founds a network (see [`crate::membership`]).
    Network = 6,
    /// A membership operation: invite, join, remove, profile, ...
    Membership = 7,
    /// A resource that carries files: a resource's fields, then its file list.
    ResourceWithFiles = 8,
    /// An erasure: deletes, removes or hides another entry (see [`crate::erasure`]).
    Erasure = 9,
    /// Content of a private network, encrypted (see [`crate::private`]).
    Sealed = 10,
    /// A private network's content key, sealed to members' nodes (see [`crate::private`]).
    KeyGrants = 11,
    /// Whether a network's pages are public (see [`crate::publication`]).
    Publication = 12,
    /// What a resource is based on, stated by its author (see [`crate::sources`]).
    Sources = 13,
}

impl EntryKind {
    pub const ALL: [EntryKind; 13] = [
        EntryKind::BlogPost,
        EntryKind::Resource,
        EntryKind::Enquiry,
        EntryKind::EnquiryNote,
        EntryKind::Comment,
        EntryKind::Network,
        EntryKind::Membership,
        EntryKind::ResourceWithFiles,
        EntryKind::Erasure,
        EntryKind::Sealed,
        EntryKind::KeyGrants,
        EntryKind::Publication,
        EntryKind::Sources,
    ];

    /// The kinds of the first release, whose rules every node checks. Nodes of that release
    /// pass later kinds on unchecked, so a later kind's broken rule is not its sender's fault
    /// (see [`EntryError::LaterKind`]).
    pub fn in_first_release(self) -> bool {
        self.tag() <= EntryKind::Comment.tag()
    }

    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Result<Self, EntryError> {
        Self::ALL
            .into_iter()
            .find(|k| k.tag() == tag)
            .ok_or(EntryError::UnknownKind(tag))
    }

    /// The name used in the CLI, the API and JSON: `blog_post`, `enquiry_note`, ...
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::BlogPost => "blog_post",
            EntryKind::Resource => "resource",
            EntryKind::Enquiry => "enquiry",
            EntryKind::EnquiryNote => "enquiry_note",
            EntryKind::Comment => "comment",
            EntryKind::Network => "network",
            EntryKind::Membership => "membership",
            EntryKind::ResourceWithFiles => "resource_with_files",
            EntryKind::Erasure => "erasure",
            EntryKind::Sealed => "sealed",
            EntryKind::KeyGrants => "key_grants",
            EntryKind::Publication => "publication",
            EntryKind::Sources => "sources",
        }
    }

    /// Kinds a reader reads: not membership, erasures, key grants, publications or sources
    /// (shown with their resource; sealed entries are content, once opened). Listings show
    /// these by default.
    pub fn is_content(self) -> bool {
        !self.is_membership()
            && !matches!(
                self,
                EntryKind::Erasure
                    | EntryKind::KeyGrants
                    | EntryKind::Publication
                    | EntryKind::Sources
            )
    }

    /// Kinds an erasure covers: content, sealed or not, and sources (their links are the
    /// author's words). Membership, erasures, key grants and publications are the network's
    /// own record, which no erasure takes out.
    pub fn is_erasable(self) -> bool {
        matches!(
            self,
            EntryKind::BlogPost
                | EntryKind::Resource
                | EntryKind::Enquiry
                | EntryKind::EnquiryNote
                | EntryKind::Comment
                | EntryKind::ResourceWithFiles
                | EntryKind::Sealed
                | EntryKind::Sources
        )
    }

    /// Kinds that are one kind to a reader: a resource with files is a resource, so it may
    /// edit one (and be listed with them).
    pub fn family(self) -> EntryKind {
        match self {
            EntryKind::ResourceWithFiles => EntryKind::Resource,
            other => other,
        }
    }
}

impl std::str::FromStr for EntryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown kind {s:?}: use blog_post, resource, enquiry, enquiry_note, comment, network, membership, resource_with_files, erasure, sealed, key_grants, publication or sources"
                )
            })
    }
}

/// The stage of practitioner enquiry an enquiry note records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Question = 1,
    Context = 2,
    Action = 3,
    Evidence = 4,
    Reflection = 5,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Question,
        Stage::Context,
        Stage::Action,
        Stage::Evidence,
        Stage::Reflection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Question => "question",
            Stage::Context => "context",
            Stage::Action => "action",
            Stage::Evidence => "evidence",
            Stage::Reflection => "reflection",
        }
    }

    fn from_tag(tag: u8) -> Result<Self, EntryError> {
        Self::ALL
            .into_iter()
            .find(|s| *s as u8 == tag)
            .ok_or(EntryError::InvalidField {
                field: "stage",
                reason: "must be question, context, action, evidence or reflection",
            })
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown stage {s:?}: use question, context, action, evidence or reflection"
                )
            })
    }
}

/// A blog post: a teacher writing for colleagues in the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlogPost {
    pub title: String,
    pub body_md: String,
    pub tags: Vec<String>,
}

/// A shared teaching resource. One without files is kind `resource` (2); one with files is
/// kind `resource_with_files` (8), which first-release nodes relay unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub title: String,
    pub description_md: String,
    pub subjects: Vec<String>,
    /// Youngest learner the resource is for, in years.
    pub age_min_years: u8,
    /// Oldest learner the resource is for, in years.
    pub age_max_years: u8,
    /// A key stage or phase such as "KS3"; empty when not given.
    pub key_stage: String,
    /// An SPDX licence identifier such as "CC-BY-4.0".
    pub licence: String,
    /// A BCP 47 language tag such as "en-GB".
    pub language: String,
    /// The files, in the order the author gave them; empty for kind `resource`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
}

/// The question a group of teachers investigates together across schools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enquiry {
    pub question: String,
    pub description_md: String,
}

/// One step of an enquiry: its question, context, an action, evidence or a reflection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnquiryNote {
    pub stage: Stage,
    pub body_md: String,
}

/// A comment on any entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub body_md: String,
}

/// The typed body of an entry; its variant is the entry's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    BlogPost(BlogPost),
    Resource(Resource),
    Enquiry(Enquiry),
    EnquiryNote(EnquiryNote),
    Comment(Comment),
    Network(Genesis),
    Membership(Action),
    Erasure(crate::erasure::Erasure),
    Sealed(crate::private::Sealed),
    KeyGrants(crate::private::KeyGrants),
    Publication(crate::publication::Publication),
    Sources(crate::sources::Sources),
}

impl Body {
    pub fn kind(&self) -> EntryKind {
        match self {
            Body::BlogPost(_) => EntryKind::BlogPost,
            Body::Resource(r) if r.files.is_empty() => EntryKind::Resource,
            Body::Resource(_) => EntryKind::ResourceWithFiles,
            Body::Enquiry(_) => EntryKind::Enquiry,
            Body::EnquiryNote(_) => EntryKind::EnquiryNote,
            Body::Comment(_) => EntryKind::Comment,
            Body::Network(_) => EntryKind::Network,
            Body::Membership(_) => EntryKind::Membership,
            Body::Erasure(_) => EntryKind::Erasure,
            Body::Sealed(_) => EntryKind::Sealed,
            Body::KeyGrants(_) => EntryKind::KeyGrants,
            Body::Publication(_) => EntryKind::Publication,
            Body::Sources(_) => EntryKind::Sources,
        }
    }

    /// A one-line summary for listings: the title, question, or start of the body.
    pub fn headline(&self) -> String {
        let first_line = |s: &str| {
            let line = s
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let mut out: String = line.chars().take(72).collect();
            if line.chars().count() > 72 {
                out.push('…');
            }
            out
        };
        match self {
            Body::BlogPost(b) => b.title.clone(),
            Body::Resource(r) => r.title.clone(),
            Body::Enquiry(e) => e.question.clone(),
            Body::EnquiryNote(n) => format!("[{}] {}", n.stage.name(), first_line(&n.body_md)),
            Body::Comment(c) => first_line(&c.body_md),
            Body::Network(g) => format!("founded network {:?}", g.name),
            Body::Membership(a) => format!("membership: {}", a.name()),
            Body::Erasure(e) => format!(
                "{} {} ({})",
                e.action.name(),
                e.target.short(),
                e.reason.name()
            ),
            Body::Sealed(_) => "(sealed: for members only)".into(),
            Body::KeyGrants(g) => format!("content key granted to {} node(s)", g.grants.len()),
            Body::Publication(p) => match p.public {
                true => "made the network's pages public".into(),
                false => "made the network's pages members-only".into(),
            },
            Body::Sources(s) => format!(
                "sources of {}: {} entries, {} links",
                s.resource.short(),
                s.entries.len(),
                s.links.len()
            ),
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            Body::BlogPost(b) => {
                w.str(&b.title);
                w.str(&b.body_md);
                w.str_list(&b.tags);
            }
            Body::Resource(r) => {
                w.str(&r.title);
                w.str(&r.description_md);
                w.str_list(&r.subjects);
                w.u8(r.age_min_years);
                w.u8(r.age_max_years);
                w.str(&r.key_stage);
                w.str(&r.licence);
                w.str(&r.language);
                if !r.files.is_empty() {
                    files::encode_list(&r.files, w);
                }
            }
            Body::Enquiry(e) => {
                w.str(&e.question);
                w.str(&e.description_md);
            }
            Body::EnquiryNote(n) => {
                w.u8(n.stage as u8);
                w.str(&n.body_md);
            }
            Body::Comment(c) => w.str(&c.body_md),
            Body::Network(g) => g.encode(w),
            Body::Membership(a) => wire::encode_action(a, w),
            Body::Erasure(e) => e.encode(w),
            Body::Sealed(s) => s.encode(w),
            Body::KeyGrants(g) => g.encode(w),
            Body::Publication(p) => p.encode(w),
            Body::Sources(s) => s.encode(w),
        }
    }

    pub(crate) fn decode(kind: EntryKind, r: &mut Reader<'_>) -> Result<Body, EntryError> {
        Ok(match kind {
            EntryKind::BlogPost => Body::BlogPost(BlogPost {
                title: r.str("title", TITLE_BYTES_MAX)?,
                body_md: r.str("body", BODY_BYTES_MAX)?,
                tags: r.str_list("tags", LABELS_COUNT_MAX, LABEL_BYTES_MAX)?,
            }),
            EntryKind::Resource => Body::Resource(decode_resource(r)?),
            EntryKind::ResourceWithFiles => {
                let mut resource = decode_resource(r)?;
                resource.files = files::decode_list(r)?;
                if resource.files.is_empty() {
                    // Without files it would be a kind-2 resource: one value, one encoding.
                    return Err(EntryError::InvalidField {
                        field: "files",
                        reason: "must list at least one file",
                    });
                }
                Body::Resource(resource)
            }
            EntryKind::Enquiry => Body::Enquiry(Enquiry {
                question: r.str("question", QUESTION_BYTES_MAX)?,
                description_md: r.str("description", DESCRIPTION_BYTES_MAX)?,
            }),
            EntryKind::EnquiryNote => Body::EnquiryNote(EnquiryNote {
                stage: Stage::from_tag(r.u8("stage")?)?,
                body_md: r.str("body", BODY_BYTES_MAX)?,
            }),
            EntryKind::Comment => Body::Comment(Comment {
                body_md: r.str("body", BODY_BYTES_MAX)?,
            }),
            EntryKind::Network => Body::Network(Genesis::decode(r)?),
            EntryKind::Membership => Body::Membership(wire::decode_action(r)?),
            EntryKind::Erasure => Body::Erasure(crate::erasure::Erasure::decode(r)?),
            EntryKind::Sealed => Body::Sealed(crate::private::Sealed::decode(r)?),
            EntryKind::KeyGrants => Body::KeyGrants(crate::private::KeyGrants::decode(r)?),
            EntryKind::Publication => {
                Body::Publication(crate::publication::Publication::decode(r)?)
            }
            EntryKind::Sources => Body::Sources(crate::sources::Sources::decode(r)?),
        })
    }

    /// Field rules beyond the byte limits the decoder already enforces.
    pub(crate) fn check(&self) -> Result<(), EntryError> {
        match self {
            Body::BlogPost(b) => {
                text::single_line("title", &b.title, TITLE_BYTES_MAX)?;
                text::markdown("body", &b.body_md, BODY_BYTES_MAX, false)?;
                check_labels("tags", &b.tags)
            }
            Body::Resource(r) => {
                text::single_line("title", &r.title, TITLE_BYTES_MAX)?;
                text::markdown(
                    "description",
                    &r.description_md,
                    DESCRIPTION_BYTES_MAX,
                    true,
                )?;
                check_labels("subjects", &r.subjects)?;
                if r.age_max_years > AGE_YEARS_MAX {
                    return Err(EntryError::InvalidField {
                        field: "age_max_years",
                        reason: "must be at most 99",
                    });
                }
                if r.age_min_years > r.age_max_years {
                    return Err(EntryError::InvalidField {
                        field: "age range",
                        reason: "the youngest age must not exceed the oldest",
                    });
                }
                if !r.key_stage.is_empty() {
                    text::single_line("key_stage", &r.key_stage, KEY_STAGE_BYTES_MAX)?;
                }
                text::spdx_id("licence", &r.licence, LICENCE_BYTES_MAX)?;
                text::language_tag("language", &r.language, LANGUAGE_BYTES_MAX)?;
                match r.files.is_empty() {
                    true => Ok(()),
                    false => files::check_list(&r.files),
                }
            }
            Body::Enquiry(e) => {
                text::single_line("question", &e.question, QUESTION_BYTES_MAX)?;
                text::markdown(
                    "description",
                    &e.description_md,
                    DESCRIPTION_BYTES_MAX,
                    true,
                )
            }
            Body::EnquiryNote(n) => text::markdown("body", &n.body_md, BODY_BYTES_MAX, false),
            Body::Comment(c) => text::markdown("body", &c.body_md, BODY_BYTES_MAX, false),
            Body::Network(g) => g.check(),
            Body::Membership(a) => wire::check_action(a),
            // Its rules concern the entry around it: see `Entry::check_references`.
            Body::Erasure(_) => Ok(()),
            // What a sealed body holds only members can check (see `private::crypto`).
            Body::Sealed(s) => s.check(),
            Body::KeyGrants(g) => g.check(),
            // The decoder takes nothing but the two visibilities.
            Body::Publication(_) => Ok(()),
            Body::Sources(s) => s.check(),
        }
    }
}

fn decode_resource(r: &mut Reader<'_>) -> Result<Resource, EntryError> {
    Ok(Resource {
        title: r.str("title", TITLE_BYTES_MAX)?,
        description_md: r.str("description", DESCRIPTION_BYTES_MAX)?,
        subjects: r.str_list("subjects", LABELS_COUNT_MAX, LABEL_BYTES_MAX)?,
        age_min_years: r.u8("age_min_years")?,
        age_max_years: r.u8("age_max_years")?,
        key_stage: r.str("key_stage", KEY_STAGE_BYTES_MAX)?,
        licence: r.str("licence", LICENCE_BYTES_MAX)?,
        language: r.str("language", LANGUAGE_BYTES_MAX)?,
        files: Vec::new(),
    })
}

fn check_labels(field: &'static str, labels: &[String]) -> Result<(), EntryError> {
    if labels.len() > LABELS_COUNT_MAX {
        return Err(EntryError::TooMany {
            field,
            count: labels.len(),
            max: LABELS_COUNT_MAX,
        });
    }
    for (i, label) in labels.iter().enumerate() {
        text::single_line(field, label, LABEL_BYTES_MAX)?;
        if labels[..i].contains(label) {
            return Err(EntryError::InvalidField {
                field,
                reason: "contains a duplicate",
            });
        }
    }
    Ok(())
}
