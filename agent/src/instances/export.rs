//! Exports an instance's disk as a standalone image: `qemu-img convert` folds the backing chain
//! into a temporary qcow2, which is hashed and then streamed to the coordinator with `PUT`.
//! The temporary directory goes on every path, cancellation included.

use super::disk::{self, DiskError};
use super::link::{CoordinatorLink, refusal};
use plinth_common::api::AgentExported;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncReadExt;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("flattening the disk")]
    Flatten(#[source] DiskError),
    #[error("reading the flattened copy")]
    Io(#[from] std::io::Error),
    #[error("uploading to {url}")]
    Upload {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the coordinator refused the upload: {0}")]
    Refused(String),
}

impl ExportError {
    /// The coordinator could not be reached or refused the bytes.
    pub fn is_upload(&self) -> bool {
        matches!(self, ExportError::Upload { .. } | ExportError::Refused(_))
    }
}

/// Flattens `disk` under `scratch` and uploads it as image `image_id`.
pub async fn export(
    disk: &Path,
    running: bool,
    scratch: &Path,
    link: &CoordinatorLink,
    image_id: &str,
) -> Result<AgentExported, ExportError> {
    tokio::fs::create_dir_all(scratch).await?;
    let work = tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(scratch)?;
    let flat = work.path().join("disk.qcow2");
    disk::flatten(disk, &flat, running)
        .await
        .map_err(ExportError::Flatten)?;
    let (sha256, size_bytes) = sha256_of(&flat).await?;

    let url = link.image_content_url(image_id);
    let file = tokio::fs::File::open(&flat).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let resp = link
        .client
        .put(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, size_bytes)
        .body(body)
        .send()
        .await
        .map_err(|source| ExportError::Upload {
            url: url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(ExportError::Refused(refusal(resp).await));
    }
    tracing::info!(image = %image_id, size_bytes, sha256 = %sha256, "Disk exported.");
    Ok(AgentExported {
        image_id: image_id.to_string(),
        size_bytes,
        sha256,
    })
}

async fn sha256_of(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}
