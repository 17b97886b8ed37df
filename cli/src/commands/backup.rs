//! `staffroom backup` and `staffroom restore`: a teacher's key and a node's data directory,
//! checked whole against the backup's manifest before anything is restored.

use std::path::Path;

use serde::Serialize;
use staffroom_node::backup::{self, Manifest};

use super::Ctx;

#[derive(Serialize)]
struct Done<'a> {
    dir: &'a Path,
    files: usize,
    bytes: u64,
    /// Whether the store and files are in the backup (only when the node was stopped).
    with_data: bool,
}

fn done<'a>(dir: &'a Path, manifest: &Manifest) -> Done<'a> {
    Done {
        dir,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.bytes).sum(),
        with_data: manifest.with_data,
    }
}

pub fn backup(ctx: &Ctx, dest: &Path, keys_only: bool) -> anyhow::Result<()> {
    let now_ms = staffroom_node::clock::Clock::system().now_ms();
    let manifest = backup::backup(ctx.data.path(), dest, keys_only, now_ms)?;
    let summary = done(dest, &manifest);
    ctx.print(&summary, || {
        let mut text = format!(
            "Backed up {} files ({} bytes) to {}.\n",
            summary.files,
            summary.bytes,
            dest.display()
        );
        if !manifest.with_data && !keys_only {
            text.push_str(
                "The node is running, so its store and files were left out: after a restore, \
                 peers refill them by catch-up sync. Stop the node for a full backup.\n",
            );
        }
        text.push_str("It holds your teacher key: keep it offline, readable by you alone.\n");
        text
    })
}

pub fn restore(ctx: &Ctx, src: &Path, force: bool) -> anyhow::Result<()> {
    let now_ms = staffroom_node::clock::Clock::system().now_ms();
    let manifest = backup::restore(src, ctx.data.path(), force, now_ms)?;
    let summary = done(ctx.data.path(), &manifest);
    ctx.print(&summary, || {
        let mut text = format!(
            "Restored {} files ({} bytes) into {}, each checked against the backup.\n",
            summary.files,
            summary.bytes,
            ctx.data.path().display()
        );
        if !manifest.with_data {
            text.push_str(
                "The backup holds keys and config only: start the node, and peers refill its \
                 entries and files.\n",
            );
        }
        text
    })
}
