//! The client's file calls: upload a file (hashed first, so the node can check the bytes
//! against the root the request is signed for), download one into place, and see or start
//! the fetching of a resource's files.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use staffroom_protocol::{EntryId, FileRoot, NetworkId};
use tokio::io::AsyncWriteExt;

use super::{ApiClient, ClientError};
use crate::api::types::*;
use crate::files::FilesError;
use crate::store::FilePolicy;

/// How long one file may take to upload or download (a large file over a slow link).
const FILE_TIMEOUT: Duration = Duration::from_secs(3600);

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The BLAKE3 root and size of a file on this machine.
pub fn hash_file(path: &Path) -> Result<(FileRoot, u64), ClientError> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((FileRoot(*hasher.finalize().as_bytes()), size))
}

type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

impl ApiClient {
    /// Uploads the file at `path` to the node; returns its root and size. `progress` hears
    /// the bytes sent so far.
    pub async fn upload_file(
        &self,
        path: &Path,
        progress: Progress,
    ) -> Result<FileUploaded, ClientError> {
        self.upload_to(None, path, progress).await
    }

    /// Uploads a file of a private network's resource: the node seals it as it arrives, and
    /// answers with the sealed file's root and size (what the sealed resource lists).
    pub async fn upload_sealed_file(
        &self,
        network: &NetworkId,
        path: &Path,
        progress: Progress,
    ) -> Result<FileUploaded, ClientError> {
        self.upload_to(Some(network), path, progress).await
    }

    async fn upload_to(
        &self,
        sealed_in: Option<&NetworkId>,
        path: &Path,
        progress: Progress,
    ) -> Result<FileUploaded, ClientError> {
        let (root, plain) = hash_file(path)?;
        let size = match sealed_in {
            Some(_) => staffroom_protocol::private::file::sealed_size(plain),
            None => plain,
        };
        // Refused before sending: a node that stops reading a body over its limit closes the
        // connection, and its answer can be lost while the body is still being sent.
        let max = self.status().await?.file_bytes_max;
        if size > max {
            return Err(ClientError::Api {
                status: 413,
                code: "file_too_large".into(),
                message: FilesError::TooLarge { size, max }.to_string(),
            });
        }
        let mut refreshed = false;
        loop {
            let file = tokio::fs::File::open(path).await.map_err(io_error(path))?;
            let (report, mut sent) = (progress.clone(), 0u64);
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            let stream = futures::StreamExt::inspect(stream, move |chunk| {
                if let Ok(c) = chunk {
                    sent += c.len() as u64;
                    report(sent);
                }
            });
            let request = self
                .http
                .put(self.url(&match sealed_in {
                    Some(network) => format!("/v1/networks/{network}/files/{root}"),
                    None => format!("/v1/files/{root}"),
                }))
                .body(reqwest::Body::wrap_stream(stream))
                .timeout(FILE_TIMEOUT);
            let hash = Some(blake3::Hash::from_bytes(root.0));
            match self.execute(request, refreshed, hash).await {
                Err(ClientError::Api { code, .. })
                    if !refreshed
                        && matches!(code.as_str(), "node_restarted" | "stale_request") =>
                {
                    refreshed = true;
                }
                Err(e) => return Err(e),
                Ok(response) => {
                    return response
                        .json()
                        .await
                        .map_err(|e| ClientError::Http(format!("bad response: {e}")));
                }
            }
        }
    }

    /// Downloads the file `root` of `size_bytes` into `dest`: written beside it first, checked
    /// against the root, then renamed into place, so `dest` is never a partial or wrong file.
    pub async fn download_file(
        &self,
        root: FileRoot,
        size_bytes: u64,
        dest: &Path,
        progress: Progress,
    ) -> Result<(), ClientError> {
        self.download_to(root, size_bytes, false, dest, progress)
            .await
    }

    /// Downloads a private network's sealed file `root` (of `sealed_bytes`), opened by the
    /// node, into `dest` — which may already hold exactly those bytes, and is otherwise
    /// never overwritten. Returns whether the bytes were new there.
    pub async fn download_opened(
        &self,
        root: FileRoot,
        sealed_bytes: u64,
        dest: &Path,
        progress: Progress,
    ) -> Result<bool, ClientError> {
        let plain = staffroom_protocol::private::file::plain_size(sealed_bytes)
            .ok_or_else(|| ClientError::Http(format!("file {} is not sealed", root.short())))?;
        let tmp = part_path(dest);
        self.download_to(root, plain, true, &tmp, progress).await?;
        if !dest.exists() {
            return tokio::fs::rename(&tmp, dest)
                .await
                .map(|()| true)
                .map_err(io_error(dest));
        }
        let same = hash_file(&tmp)?.0 == hash_file(dest)?.0;
        let _ = tokio::fs::remove_file(&tmp).await;
        match same {
            true => Ok(false),
            false => Err(ClientError::Http(format!(
                "{} exists and is a different file",
                dest.display()
            ))),
        }
    }

    /// Downloads `root` into `dest` by way of a part file: checked against the root, or, when
    /// `opened`, the plaintext of a sealed file (checked by the node as it opens it).
    async fn download_to(
        &self,
        root: FileRoot,
        size_bytes: u64,
        opened: bool,
        dest: &Path,
        progress: Progress,
    ) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/files/{root}"));
        let request = match opened {
            true => self.http.get(url).query(&[("open", "true")]),
            false => self.http.get(url),
        }
        .timeout(FILE_TIMEOUT);
        let mut response = self.execute(request, false, None).await?;
        let tmp = part_path(dest);
        let mut out = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_error(&tmp))?;
        let (mut hasher, mut got) = (blake3::Hasher::new(), 0u64);
        let result = async {
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
            {
                got += chunk.len() as u64;
                if got > size_bytes {
                    return Err(ClientError::Http("the node sent more than the file".into()));
                }
                hasher.update(&chunk);
                out.write_all(&chunk).await.map_err(io_error(&tmp))?;
                progress(got);
            }
            out.sync_all().await.map_err(io_error(&tmp))?;
            let wrong_root = !opened && hasher.finalize().as_bytes() != &root.0;
            if got != size_bytes || wrong_root {
                return Err(ClientError::Http(format!(
                    "the node sent {got} bytes that do not match file {}",
                    root.short()
                )));
            }
            tokio::fs::rename(&tmp, dest).await.map_err(io_error(dest))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// A resource's files and how each stands on the node; with `holders`, which connected
    /// member nodes hold each.
    pub async fn resource_files(
        &self,
        id: &EntryId,
        holders: bool,
    ) -> Result<ResourceFiles, ClientError> {
        let url = self.url(&format!("/v1/entries/{id}/files"));
        let request = match holders {
            true => self.http.get(url).query(&[("holders", "true")]),
            false => self.http.get(url),
        };
        self.send(request).await
    }

    /// How a network's files are fetched on the node.
    pub async fn network_files(
        &self,
        network: &NetworkId,
    ) -> Result<NetworkFilesView, ClientError> {
        let url = self.url(&format!("/v1/networks/{network}/files"));
        self.send(self.http.get(url)).await
    }

    /// Sets how a network's files are fetched on the node (the school's admin only).
    pub async fn set_network_files(
        &self,
        network: &NetworkId,
        policy: FilePolicy,
    ) -> Result<NetworkFilesView, ClientError> {
        let url = self.url(&format!("/v1/networks/{network}/files"));
        self.send(self.http.put(url).json(&policy)).await
    }

    /// Asks the node to fetch every file of a resource now.
    pub async fn fetch_resource_files(&self, id: &EntryId) -> Result<ResourceFiles, ClientError> {
        let url = self.url(&format!("/v1/entries/{id}/files/fetch"));
        self.send(self.http.post(url)).await
    }
}

/// Where a download is written before it is checked and renamed into place.
fn part_path(dest: &Path) -> std::path::PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".staffroom-part");
    dest.with_file_name(name)
}
