//! Resources' files: uploading them with a new resource, fetching them to the node and saving
//! them, and showing where they are. Progress bars appear on terminals only.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use staffroom_node::api::types::ResourceFiles;
use staffroom_node::api::ApiClient;
use staffroom_node::files::fetcher::FileState;
use staffroom_protocol::files::FILES_COUNT_MAX;
use staffroom_protocol::{Body, EntryId, FileRef, FileRoot, NetworkId};

use super::Ctx;

/// How often `get` asks the node how its fetching goes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A progress bar of `total` bytes, hidden unless stderr is a terminal and output is text.
fn bar(ctx: &Ctx, total: u64, what: &str) -> ProgressBar {
    if ctx.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// Uploads `paths` to the node and lists them in the resource `body`.
pub async fn with_files(
    ctx: &Ctx,
    mut body: Body,
    paths: &[PathBuf],
    sealed_in: Option<NetworkId>,
) -> anyhow::Result<Body> {
    if paths.len() > FILES_COUNT_MAX {
        bail!(
            "a resource carries at most {FILES_COUNT_MAX} files, not {}",
            paths.len()
        );
    }
    let api = ctx.api()?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        files.push(upload(ctx, &api, path, sealed_in.as_ref()).await?);
    }
    if let Body::Resource(r) = &mut body {
        r.files = files;
    }
    Ok(body)
}

async fn upload(
    ctx: &Ctx,
    api: &ApiClient,
    path: &Path,
    sealed_in: Option<&NetworkId>,
) -> anyhow::Result<FileRef> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no name in UTF-8", path.display()))?
        .to_owned();
    let bar = Arc::new(bar(ctx, meta.len(), &name));
    let shown = bar.clone();
    let sent = Arc::new(move |sent| shown.set_position(sent));
    let uploaded = match sealed_in {
        Some(network) => api.upload_sealed_file(network, path, sent).await,
        None => api.upload_file(path, sent).await,
    }
    .with_context(|| format!("uploading {}", path.display()))?;
    bar.finish_and_clear();
    Ok(FileRef {
        media_type: media_type(&name).to_owned(),
        name,
        size_bytes: uploaded.size_bytes,
        root: uploaded.root,
    })
}

/// The media type of a file, by its extension; `application/octet-stream` when unknown.
pub fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pdf") => "application/pdf",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("ppt") => "application/vnd.ms-powerpoint",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("xls") => "application/vnd.ms-excel",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("odt") => "application/vnd.oasis.opendocument.text",
        Some("odp") => "application/vnd.oasis.opendocument.presentation",
        Some("ods") => "application/vnd.oasis.opendocument.spreadsheet",
        Some("txt") => "text/plain",
        Some("md") => "text/markdown",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/html",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("webp") => "image/webp",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("zip") => "application/zip",
        Some("epub") => "application/epub+zip",
        _ => "application/octet-stream",
    }
}

#[derive(Serialize)]
struct Saved {
    entry: EntryId,
    files: Vec<SavedFile>,
}

#[derive(Serialize)]
struct SavedFile {
    name: String,
    path: PathBuf,
    size_bytes: u64,
    root: FileRoot,
}

/// `resource get`: asks the node to fetch every file, waits with a progress bar, then saves
/// them into `out` (never over a different file of the same name).
pub async fn get(ctx: &Ctx, id: &str, out: &Path, timeout: Duration) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let id = super::ids::entry(&api, id, "resource").await?;
    let asked = api.fetch_resource_files(&id).await?;
    if asked.files.is_empty() {
        bail!("resource {} carries no files", id.short());
    }
    let total: u64 = asked.files.iter().map(|f| f.file.size_bytes).sum();
    let fetching = bar(ctx, total, "fetching");
    let started = tokio::time::Instant::now();
    let done = loop {
        let now = api.resource_files(&id, false).await?;
        fetching.set_position(now.files.iter().map(|f| f.progress.bytes_here).sum());
        if now
            .files
            .iter()
            .all(|f| f.progress.state == FileState::Complete)
        {
            break now;
        }
        if started.elapsed() > timeout {
            fetching.abandon();
            bail!("{}", waiting_reason(&now));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    fetching.finish_and_clear();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut saved = Vec::new();
    for f in &done.files {
        let path = out.join(&f.file.name);
        let exists = path.exists();
        if exists && !done.sealed {
            let (root, _) = staffroom_node::api::hash_file(&path)?;
            if root != f.file.root {
                bail!("{} exists and is a different file: remove it or choose another directory with -o", path.display());
            }
        } else {
            save(ctx, &api, &f.file, &path, done.sealed).await?;
        }
        let size_bytes = match done.sealed {
            true => staffroom_protocol::private::file::plain_size(f.file.size_bytes)
                .unwrap_or(f.file.size_bytes),
            false => f.file.size_bytes,
        };
        saved.push(SavedFile {
            name: f.file.name.clone(),
            path,
            size_bytes,
            root: f.file.root,
        });
    }
    let report = Saved {
        entry: id,
        files: saved,
    };
    ctx.print(&report, || {
        report
            .files
            .iter()
            .map(|f| format!("saved {} ({})\n", f.path.display(), size(f.size_bytes)))
            .collect()
    })
}

/// Saves one file held complete on the node at `path`, with a progress bar on terminals. A
/// sealed file is opened by the node: its root says nothing of the plaintext, so an existing
/// file is compared byte for byte once the download is here.
async fn save(
    ctx: &Ctx,
    api: &ApiClient,
    file: &FileRef,
    path: &Path,
    sealed: bool,
) -> anyhow::Result<()> {
    let saving = Arc::new(bar(ctx, file.size_bytes, &file.name));
    let shown = saving.clone();
    let progress = Arc::new(move |n| shown.set_position(n));
    match sealed {
        true => api
            .download_opened(file.root, file.size_bytes, path, progress)
            .await
            .map(|_| ()),
        false => {
            api.download_file(file.root, file.size_bytes, path, progress)
                .await
        }
    }
    .with_context(|| format!("saving {}", path.display()))?;
    saving.finish_and_clear();
    Ok(())
}

/// Why files are not here yet, in a teacher's words.
fn waiting_reason(files: &ResourceFiles) -> String {
    let missing: Vec<String> = files
        .files
        .iter()
        .filter(|f| f.progress.state != FileState::Complete)
        .map(|f| {
            let note = f.progress.note.as_deref().unwrap_or("waiting");
            format!(
                "{} ({} of {}: {note})",
                f.file.name,
                size(f.progress.bytes_here),
                size(f.file.size_bytes)
            )
        })
        .collect();
    format!("gave up waiting for {}", missing.join(", "))
}

/// `resource files`: each file's size, how much is here, and which connected nodes have it.
pub async fn files(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let id = super::ids::entry(&api, id, "resource").await?;
    let files = api.resource_files(&id, true).await?;
    ctx.print(&files, || {
        let mut out = String::new();
        for f in &files.files {
            let p = &f.progress;
            let here = match p.state {
                FileState::Complete => "here".to_owned(),
                FileState::TooLarge => "over this node's file size limit".to_owned(),
                _ => format!("{} here", size(p.bytes_here)),
            };
            let holders = f.holders.as_deref().unwrap_or_default();
            out.push_str(&format!(
                "{}  {}  {}  {here}; {} other node(s) have it\n",
                f.file.name,
                size(f.file.size_bytes),
                f.file.media_type,
                holders.len()
            ));
            for h in holders {
                out.push_str(&format!("    {h}\n"));
            }
        }
        out
    })
}

/// `network files`: shows how the network's files are fetched here, after setting what was
/// given.
pub async fn network_files(
    ctx: &Ctx,
    network: Option<&str>,
    eager: Option<bool>,
    quota: Option<&str>,
) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let network = super::resolve_network(&api, network).await?;
    let view = match (eager, quota) {
        (None, None) => api.network_files(&network).await?,
        _ => {
            let mut policy = api.network_files(&network).await?.policy;
            policy.eager = eager.or(policy.eager);
            if let Some(text) = quota {
                policy.quota_bytes = Some(parse_size(text)?);
            }
            api.set_network_files(&network, policy).await?
        }
    };
    ctx.print(&view, || {
        let how = match view.eager {
            true => format!("as they arrive, up to {} in all", size(view.quota_bytes)),
            false => "only when a teacher asks (staffroom resource get)".into(),
        };
        format!(
            "Files are fetched {how}.\n{} of this network's {} file(s) are here.\n",
            size(view.bytes_here),
            view.files
        )
    })
}

/// A size such as `500MiB`, `20GiB`, `2GB` or a number of bytes.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a size: write e.g. 500MiB or 20GiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => bail!("{text:?}: unknown unit {unit:?}; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"),
    };
    number
        .checked_mul(factor)
        .with_context(|| format!("{text:?} is too large"))
}

/// Bytes in the unit a teacher reads easily (the node's pages say it the same way).
pub use staffroom_node::files::human_size as size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_media_types_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(media_type("Worksheet.PDF"), "application/pdf");
        assert_eq!(media_type("README"), "application/octet-stream");
        assert_eq!(parse_size("20GiB").unwrap(), 20 << 30);
        assert_eq!(parse_size("500 MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        for name in ["a.pptx", "b.docx", "c.svg", "d.epub"] {
            let t = media_type(name);
            assert!(t.bytes().all(|b| !b.is_ascii_uppercase()), "{t}");
        }
    }
}
