//! Writing: blog posts, resources, enquiries, enquiry notes and comments. Each is signed here
//! with the teacher's key and submitted to the node, which verifies it like any gossip.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{bail, Context};
use staffroom_node::api::ApiClient;
use staffroom_node::ingest::now_ms;
use staffroom_node::store::StoredEntry;
use staffroom_protocol::limits::BODY_BYTES_MAX;
use staffroom_protocol::*;

use super::{resolve_network, Ctx};
use crate::args::*;
use crate::teacher;

/// Bodies read from files or stdin larger than this are refused before reading further.
const BODY_READ_BYTES_MAX: u64 = BODY_BYTES_MAX as u64;

pub async fn blog_post(ctx: &Ctx, args: PostArgs) -> anyhow::Result<()> {
    let body_md = read_body(&args.body, "post body")?;
    let body = Body::BlogPost(BlogPost {
        title: args.title,
        body_md,
        tags: args.tags,
    });
    publish(ctx, &args.target, body, vec![]).await
}

pub async fn resource(ctx: &Ctx, args: ResourceArgs) -> anyhow::Result<()> {
    let (age_min_years, age_max_years) = parse_ages(&args.ages)?;
    let description_md = if args.body.body_file.is_some() || args.body.text.is_some() {
        read_body(&args.body, "description")?
    } else {
        String::new()
    };
    let api = ctx.api()?;
    let needs_network = !args.files.is_empty() || !args.based_on.is_empty();
    // The network it will be published in: an edit's is its original's.
    let network = match (&args.target.edits, needs_network) {
        (_, false) => None,
        (Some(old), true) => Some(fetch(&api, old, "entry to edit").await?.entry.network),
        (None, true) => Some(resolve_network(&api, args.target.network.as_deref()).await?),
    };
    let private = match network {
        Some(network) => api
            .members(&network)
            .await?
            .policy
            .is_some_and(|p| p.is_private()),
        None => false,
    };
    // Sources are checked before anything is published, so a bad one stops both.
    let sources = match args.based_on.is_empty() {
        true => None,
        false if private => bail!(
            "a private network's resources cannot name sources: they would travel in the clear"
        ),
        false => Some(super::sources::parse(&api, &args.based_on).await?),
    };
    let body = Body::Resource(Resource {
        title: args.title,
        description_md,
        subjects: args.subjects,
        age_min_years,
        age_max_years,
        key_stage: args.key_stage,
        licence: args.licence,
        language: args.language,
        files: Vec::new(),
    });
    let body = match args.files.is_empty() {
        true => body,
        // A private network's files are sealed by the node as they are uploaded.
        false => {
            let sealed_in = network.filter(|_| private);
            super::resource::with_files(ctx, body, &args.files, sealed_in).await?
        }
    };
    let resource = publish_entry(ctx, &args.target, body, vec![]).await?;
    match sources {
        Some(sources) => super::sources::state(ctx, &resource, sources).await,
        None => Ok(()),
    }
}

pub async fn enquiry(ctx: &Ctx, args: EnquiryArgs) -> anyhow::Result<()> {
    let description_md = match (&args.description_file, args.description) {
        (Some(path), _) => read_file(path, "description")?,
        (None, Some(text)) => text,
        (None, None) => String::new(),
    };
    let body = Body::Enquiry(Enquiry {
        question: args.question,
        description_md,
    });
    publish(ctx, &args.target, body, vec![]).await
}

pub async fn note(ctx: &Ctx, args: NoteArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let enquiry = fetch(&api, &args.enquiry, "enquiry").await?;
    if enquiry.entry.kind() != EntryKind::Enquiry {
        bail!(
            "{} is a {}, not an enquiry",
            enquiry.id.short(),
            enquiry.entry.kind().name()
        );
    }
    let body_md = read_body(&args.body, "note body")?;
    let body = Body::EnquiryNote(EnquiryNote {
        stage: args.stage,
        body_md,
    });
    publish_about(ctx, &enquiry, Relation::InEnquiry, args.edits, body).await
}

pub async fn comment(ctx: &Ctx, args: CommentArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let on = fetch(&api, &args.on, "entry").await?;
    let body_md = read_body(&args.body, "comment")?;
    let body = Body::Comment(Comment { body_md });
    publish_about(ctx, &on, Relation::ReplyTo, args.edits, body).await
}

/// Publishes `body` in `about`'s network, pointing at it with `relation`.
async fn publish_about(
    ctx: &Ctx,
    about: &StoredEntry,
    relation: Relation,
    edits: Option<String>,
    body: Body,
) -> anyhow::Result<()> {
    let target = Target {
        network: Some(about.entry.network.to_hex()),
        edits,
    };
    publish(
        ctx,
        &target,
        body,
        vec![Ref {
            relation,
            id: about.id,
        }],
    )
    .await
}

async fn fetch(api: &ApiClient, id: &str, what: &str) -> anyhow::Result<StoredEntry> {
    let id = super::ids::entry(api, id, what).await?;
    Ok(api.get(&id).await?.stored)
}

/// Signs `body` as the teacher and submits it; prints the new entry's id.
async fn publish(ctx: &Ctx, target: &Target, body: Body, refs: Vec<Ref>) -> anyhow::Result<()> {
    publish_entry(ctx, target, body, refs).await.map(|_| ())
}

/// [`publish`], giving back the entry published.
async fn publish_entry(
    ctx: &Ctx,
    target: &Target,
    body: Body,
    mut refs: Vec<Ref>,
) -> anyhow::Result<Entry> {
    let key = teacher::load(&ctx.data)?;
    let api = ctx.api()?;
    let mut network = resolve_network(&api, target.network.as_deref()).await?;
    if let Some(edits) = &target.edits {
        let old = fetch(&api, edits, "entry to edit").await?;
        if old.entry.author != teacher::author_id(&key) {
            bail!(
                "you can only edit your own entries ({} was written by {})",
                old.id.short(),
                old.entry.author.short()
            );
        }
        // A resource may gain or lose its files in an edit: one kind to a reader. A sealed
        // entry is of its content's kind.
        let old_kind = old.opened.as_ref().map_or(old.entry.kind(), Body::kind);
        if old_kind.family() != body.kind().family() {
            bail!(
                "an edit must be of the same kind: {} is a {}",
                old.id.short(),
                old_kind.name()
            );
        }
        network = old.entry.network;
        refs.push(Ref {
            relation: Relation::Supersedes,
            id: old.id,
        });
    }
    let created_at_ms = now_ms();
    // In a private network the node seals the content (with the network's key, which only
    // members' nodes hold) before the teacher signs it.
    let private = api.members(&network).await?.policy;
    let body = match private.is_some_and(|p| p.is_private()) {
        true => Body::Sealed(api.seal(&network, created_at_ms, body).await?),
        false => body,
    };
    let entry = Draft {
        network,
        created_at_ms,
        refs,
        body,
    }
    .sign(&key);
    // Check locally first, so a teacher sees the rule broken before anything is sent.
    verify_entry(&entry.encode(), now_ms())?;
    let reply = api.submit(entry.encode()).await?;
    ctx.print(&reply, || {
        let gossip = match (&reply.gossip.note, reply.gossip.peers) {
            (None, n) => format!("sent to {n} peer node(s)"),
            (Some(_), _) => "no peer nodes online; they will receive it when they sync".into(),
        };
        format!("{}\n{} stored; {gossip}.\n", reply.id, entry.kind().name())
    })?;
    Ok(entry)
}

fn parse_ages(text: &str) -> anyhow::Result<(u8, u8)> {
    let parse = |s: &str| s.trim().parse::<u8>().ok();
    let parsed = match text.split_once('-') {
        Some((a, b)) => parse(a).zip(parse(b)),
        None => parse(text).map(|a| (a, a)),
    };
    parsed
        .with_context(|| format!("--ages {text:?}: give an age or a range in years, such as 11-14"))
}

fn read_body(args: &BodyArgs, what: &str) -> anyhow::Result<String> {
    match (&args.body_file, &args.text) {
        (_, Some(text)) => Ok(text.clone()),
        (Some(path), None) if path != Path::new("-") => read_file(path, what),
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("give the {what} with --body-file FILE or --text, or pipe it on stdin");
            }
            read_bounded(stdin.lock(), what)
        }
    }
}

fn read_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_bounded(file, what).with_context(|| format!("reading {}", path.display()))
}

fn read_bounded(reader: impl Read, what: &str) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    reader
        .take(BODY_READ_BYTES_MAX + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > BODY_READ_BYTES_MAX {
        bail!("the {what} is longer than the {BODY_BYTES_MAX}-byte limit");
    }
    String::from_utf8(bytes).with_context(|| format!("the {what} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse() {
        assert_eq!(parse_ages("11-14").unwrap(), (11, 14));
        assert_eq!(parse_ages("7").unwrap(), (7, 7));
        assert!(parse_ages("eleven").is_err());
        assert!(parse_ages("11-").is_err());
    }

    #[test]
    fn bodies_are_bounded() {
        let big = vec![b'a'; BODY_BYTES_MAX + 1];
        assert!(read_bounded(&big[..], "body").is_err());
        assert_eq!(read_bounded(&b"hello"[..], "body").unwrap(), "hello");
        assert!(read_bounded(&[0xff, 0xfe][..], "body").is_err());
    }
}
