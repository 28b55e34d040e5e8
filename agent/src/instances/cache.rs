//! The host's image cache: `<data_dir>/images/<sha256>.<format>`, fetched from the coordinator
//! once per host. A download streams into a temporary file beside the cache, hashed as it
//! arrives, and is renamed into place only when its SHA-256 matches; from then on the file is
//! trusted by its name. Concurrent fetches of one image wait for a single download.

use super::link::refusal;
use super::locks::KeyedLocks;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// How an image is used: a qcow2 backs the instance's disk; an ISO boots in front of an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Qcow2,
    Iso,
}

impl ImageFormat {
    pub fn parse(text: &str) -> Option<ImageFormat> {
        match text {
            "qcow2" => Some(ImageFormat::Qcow2),
            "iso" => Some(ImageFormat::Iso),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Iso => "iso",
        }
    }
}

/// An image to have in the cache; `sha256` is 64 lowercase hex digits (checked by the caller).
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub sha256: String,
    pub size_bytes: u64,
    pub format: ImageFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("requesting {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the coordinator answered {0}")]
    Refused(String),
    #[error("the download broke off")]
    Body(#[source] reqwest::Error),
    #[error("more than the image's {0} bytes arrived")]
    TooLong(u64),
    #[error("the content's SHA-256 is {actual}, not the image's {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("writing the image cache")]
    Io(#[from] std::io::Error),
}

impl FetchError {
    /// The fault is this host's (its disk), not the coordinator's or the network's.
    pub fn is_local(&self) -> bool {
        matches!(self, FetchError::Io(_))
    }
}

/// The suffix of a download in progress.
const PART: &str = ".part";

pub struct ImageCache {
    dir: PathBuf,
    downloads: KeyedLocks,
}

impl ImageCache {
    pub fn new(dir: PathBuf) -> ImageCache {
        ImageCache {
            dir,
            downloads: KeyedLocks::default(),
        }
    }

    /// Removes downloads a crash interrupted (their temporary files outlive the process).
    pub fn remove_partials(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let partials = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(PART));
        for entry in partials {
            if let Err(err) = std::fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %err, "Could not remove an interrupted download.");
            }
        }
    }

    pub fn path_of(&self, image: &CachedImage) -> PathBuf {
        self.dir
            .join(format!("{}.{}", image.sha256, image.format.extension()))
    }

    /// The cached file of `image`, downloading it from `url` first if this host lacks it.
    pub async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &str,
        image: &CachedImage,
    ) -> Result<PathBuf, FetchError> {
        let target = self.path_of(image);
        let _one_download = self.downloads.lock(&image.sha256).await;
        if tokio::fs::try_exists(&target).await? {
            return Ok(target);
        }
        tokio::fs::create_dir_all(&self.dir).await?;
        // Removed when dropped: on every error, and if this task is cancelled mid-download.
        let part = tempfile::Builder::new()
            .prefix(&format!(".{}.", image.sha256))
            .suffix(PART)
            .tempfile_in(&self.dir)?;
        let (file, part_path) = part.into_parts();
        download(client, url, image, tokio::fs::File::from_std(file)).await?;
        // Readable by the hypervisor's user: the cache holds backing files of many domains.
        super::modes::cached_image(&part_path)?;
        part_path.persist(&target).map_err(|e| e.error)?;
        tracing::info!(sha256 = %image.sha256, path = %target.display(), "Image cached.");
        Ok(target)
    }
}

async fn download(
    client: &reqwest::Client,
    url: &str,
    image: &CachedImage,
    mut file: tokio::fs::File,
) -> Result<(), FetchError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|source| FetchError::Request {
            url: url.to_string(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(FetchError::Refused(refusal(resp).await));
    }
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(FetchError::Body)?;
        received += chunk.len() as u64;
        if image.size_bytes > 0 && received > image.size_bytes {
            return Err(FetchError::TooLong(image.size_bytes));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    let actual = hex::encode(hasher.finalize());
    if actual != image.sha256 {
        return Err(FetchError::Mismatch {
            expected: image.sha256.clone(),
            actual,
        });
    }
    file.sync_all().await?;
    Ok(())
}

/// Whether `dir` holds anything but finished images (a test's view of "no temp file left").
#[cfg(test)]
pub fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(PART))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::testing::serve;
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    fn image_of(bytes: &[u8], format: ImageFormat) -> CachedImage {
        CachedImage {
            sha256: hex::encode(Sha256::digest(bytes)),
            size_bytes: bytes.len() as u64,
            format,
        }
    }

    #[tokio::test]
    async fn fetches_once_and_verifies() -> Result<(), FetchError> {
        let good = b"a pretend qcow2".repeat(10_000);
        let (base, server) = serve(HashMap::from([("img-1".to_string(), good.clone())])).await;
        let dir = tempfile::tempdir()?;
        let cache = Arc::new(ImageCache::new(dir.path().join("images")));
        let client = reqwest::Client::new();
        let url = format!("{base}/v1/agent/images/img-1/content");
        let image = image_of(&good, ImageFormat::Qcow2);

        // Concurrent creates of one image wait for a single download.
        let fetches = (0..4).map(|_| {
            let (cache, client, url, image) =
                (cache.clone(), client.clone(), url.clone(), image.clone());
            tokio::spawn(async move { cache.fetch(&client, &url, &image).await })
        });
        let mut paths = Vec::new();
        for f in fetches {
            paths.push(f.await.expect("task")?);
        }
        assert!(paths.iter().all(|p| *p == paths[0]));
        assert_eq!(
            paths[0],
            dir.path().join(format!("images/{}.qcow2", image.sha256))
        );
        assert_eq!(std::fs::read(&paths[0])?, good);
        assert_eq!(server.gets.load(Ordering::SeqCst), 1);
        assert!(leftovers(&dir.path().join("images")).is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_sha256_mismatch_is_refused_and_leaves_nothing() -> Result<(), FetchError> {
        let served = b"what the server has".to_vec();
        let (base, _server) = serve(HashMap::from([("img-2".to_string(), served.clone())])).await;
        let dir = tempfile::tempdir()?;
        let cache = ImageCache::new(dir.path().join("images"));
        let url = format!("{base}/v1/agent/images/img-2/content");
        let claimed = CachedImage {
            size_bytes: served.len() as u64,
            ..image_of(b"what the coordinator promised", ImageFormat::Iso)
        };
        let err = cache
            .fetch(&reqwest::Client::new(), &url, &claimed)
            .await
            .expect_err("mismatch");
        assert!(matches!(err, FetchError::Mismatch { .. }), "{err}");
        assert!(!cache.path_of(&claimed).exists());
        assert!(leftovers(&dir.path().join("images")).is_empty());

        // More bytes than the image has are refused as they arrive.
        let short = CachedImage {
            size_bytes: 4,
            ..image_of(&served, ImageFormat::Iso)
        };
        let err = cache
            .fetch(&reqwest::Client::new(), &url, &short)
            .await
            .expect_err("too long");
        assert!(matches!(err, FetchError::TooLong(4)), "{err}");
        assert!(leftovers(&dir.path().join("images")).is_empty());
        Ok(())
    }

    #[test]
    fn interrupted_downloads_are_swept_and_images_kept() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let cache = ImageCache::new(dir.path().to_path_buf());
        let image = image_of(b"kept", ImageFormat::Qcow2);
        std::fs::write(cache.path_of(&image), b"kept")?;
        std::fs::write(dir.path().join(".abc.XyZ12.part"), b"half")?;
        cache.remove_partials();
        assert!(leftovers(dir.path()).is_empty());
        assert!(cache.path_of(&image).exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_refusal_carries_the_coordinators_message() -> Result<(), FetchError> {
        let (base, _server) = serve(HashMap::new()).await;
        let dir = tempfile::tempdir()?;
        let cache = ImageCache::new(dir.path().join("images"));
        let url = format!("{base}/v1/agent/images/img-3/content");
        let err = cache
            .fetch(
                &reqwest::Client::new(),
                &url,
                &image_of(b"x", ImageFormat::Qcow2),
            )
            .await
            .expect_err("404");
        let text = err.to_string();
        assert!(
            text.contains("404") && text.contains("no image here"),
            "{text}"
        );
        Ok(())
    }
}
