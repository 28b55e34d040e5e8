//! Where image content lives. Content is always staged in a local file first (so qemu-img can
//! inspect it), then committed under a blob id plinth made — never a name from input. The local
//! backend keeps blobs under the data directory; an S3-compatible backend (for example through
//! `object_store`) becomes another variant of `BlobStore`, with the API untouched.

use plinth_common::ids::new_id;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokio::fs::File;

#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(LocalDir),
}

#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

/// A file being filled; removed on drop unless committed, so a failed import keeps nothing.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    blob_id: String,
    committed: bool,
}

impl Staged {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl BlobStore {
    pub fn local(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore::Local(LocalDir { root: root.into() })
    }

    /// Creates the directories. What a crash left in them is for `sweep`, which only the
    /// serving coordinator runs (a `token create` also opens the store, and must not touch a
    /// live upload's files).
    pub async fn prepare(&self) -> std::io::Result<()> {
        match self {
            BlobStore::Local(l) => {
                tokio::fs::create_dir_all(l.blobs()).await?;
                tokio::fs::create_dir_all(l.staging()).await?;
                // Tenants' images: the coordinator's alone (it serves them over mTLS).
                for dir in [l.root.clone(), l.blobs(), l.staging()] {
                    plinth_common::fsutil::set_mode(&dir, 0o700)?;
                }
                Ok(())
            }
        }
    }

    /// A new blob key: plinth's, never from input. A writer takes the image's mark with it
    /// before staging (images::writer).
    pub fn new_key() -> String {
        new_id("blob")
    }

    /// A new staging file for the blob `blob_id` and its handle for writing.
    pub async fn stage(&self, blob_id: &str) -> std::io::Result<(Staged, File)> {
        let path = match self {
            BlobStore::Local(l) => l.staging_path(blob_id),
        };
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await?;
        Ok((
            Staged {
                path,
                blob_id: blob_id.to_string(),
                committed: false,
            },
            file,
        ))
    }

    /// Puts verified content in place under its blob id. The image row must already name that
    /// id as pending, so a crash right after the rename leaves a file the start-up knows.
    pub async fn commit(&self, mut staged: Staged) -> std::io::Result<()> {
        match self {
            BlobStore::Local(l) => {
                tokio::fs::rename(&staged.path, l.blob_path(&staged.blob_id)).await?
            }
        }
        staged.committed = true;
        Ok(())
    }

    /// Opens a blob for reading; returns the file and its length.
    pub async fn open(&self, blob_id: &str) -> std::io::Result<(File, u64)> {
        match self {
            BlobStore::Local(l) => {
                let file = File::open(l.blob_path(blob_id)).await?;
                let len = file.metadata().await?.len();
                Ok((file, len))
            }
        }
    }

    /// Copies a blob under the id `to` (staged first, like any content).
    pub async fn copy(&self, blob_id: &str, to: &str) -> std::io::Result<()> {
        let (staged, _) = self.stage(to).await?;
        match self {
            BlobStore::Local(l) => {
                tokio::fs::copy(l.blob_path(blob_id), staged.path()).await?;
            }
        }
        self.commit(staged).await
    }

    /// Deletes a blob; a blob already gone is not an error.
    pub async fn delete(&self, blob_id: &str) -> std::io::Result<()> {
        match self {
            BlobStore::Local(l) => gone(tokio::fs::remove_file(l.blob_path(blob_id)).await),
        }
    }

    /// Removes every blob whose id is not in `keep` and every staging file whose blob id is
    /// not in `keep`; says how many files and bytes that freed. Run at start-up, before this
    /// coordinator's writers: a file it removes is one no image row names. With `before`
    /// (other coordinators may write in the same directory), only files last changed before
    /// then: a writer marks its image before it stages, so a file no mark named when `keep`
    /// was read, and changed since, is a peer's new one.
    pub async fn sweep(
        &self,
        keep: &HashSet<String>,
        before: Option<std::time::SystemTime>,
    ) -> std::io::Result<Swept> {
        let mut swept = Swept::default();
        match self {
            BlobStore::Local(l) => {
                for (dir, suffix) in [(l.blobs(), ""), (l.staging(), ".part")] {
                    let mut entries = tokio::fs::read_dir(&dir).await?;
                    while let Some(entry) = entries.next_entry().await? {
                        let name = entry.file_name();
                        let kept = name
                            .to_str()
                            .and_then(|n| n.strip_suffix(suffix))
                            .is_some_and(|id| keep.contains(id));
                        let meta = entry.metadata().await?;
                        let recent = before.is_some_and(|before| {
                            meta.modified().map_or(true, |changed| changed >= before)
                        });
                        // Directories are not plinth's to make here; leave them to the operator.
                        if kept || recent || meta.is_dir() {
                            continue;
                        }
                        gone(tokio::fs::remove_file(entry.path()).await)?;
                        swept.files += 1;
                        swept.bytes += meta.len();
                    }
                }
            }
        }
        Ok(swept)
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub files: u64,
    pub bytes: u64,
}

/// A file already gone is what removing it wanted.
fn gone(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

impl LocalDir {
    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    fn staging_path(&self, blob_id: &str) -> PathBuf {
        if plinth_common::ids::is_id("blob", blob_id) {
            self.staging().join(format!("{blob_id}.part"))
        } else {
            self.staging().join("invalid-blob-id.part")
        }
    }
    fn blob_path(&self, blob_id: &str) -> PathBuf {
        // Blob ids are ours (`blob-<hex>`); anything else never becomes a path.
        if plinth_common::ids::is_id("blob", blob_id) {
            self.blobs().join(blob_id)
        } else {
            self.blobs().join("invalid-blob-id")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn staged_files_vanish_unless_committed() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = BlobStore::local(dir.path());
        store.prepare().await?;
        let (staged, mut file) = store.stage(&BlobStore::new_key()).await?;
        file.write_all(b"partial").await?;
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(!path.exists(), "a dropped staging file is removed");

        let id = BlobStore::new_key();
        let (staged, mut file) = store.stage(&id).await?;
        file.write_all(b"content").await?;
        file.flush().await?;
        store.commit(staged).await?;
        let (_, len) = store.open(&id).await?;
        assert_eq!(len, 7);
        let copy = BlobStore::new_key();
        store.copy(&id, &copy).await?;
        assert_ne!(copy, id);
        store.delete(&id).await?;
        store.delete(&id).await?;
        assert!(store.open(&id).await.is_err());
        assert!(store.open(&copy).await.is_ok());
        assert!(store.open("../../etc/passwd").await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn sweep_keeps_only_what_rows_name() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = BlobStore::local(dir.path());
        store.prepare().await?;
        let kept = BlobStore::new_key();
        let (staged, mut file) = store.stage(&kept).await?;
        file.write_all(b"kept").await?;
        store.commit(staged).await?;
        let staged_kept = BlobStore::new_key();
        let (live, mut file) = store.stage(&staged_kept).await?;
        file.write_all(b"in flight").await?;
        let orphan = BlobStore::new_key();
        let (staged, mut file) = store.stage(&orphan).await?;
        file.write_all(b"orphan").await?;
        store.commit(staged).await?;
        std::fs::write(dir.path().join("staging/blob-0.part"), b"left by a crash")?;
        std::fs::write(dir.path().join("blobs/stray"), b"xy")?;
        std::fs::create_dir(dir.path().join("blobs/a-dir"))?;

        let keep: HashSet<String> = [kept.clone(), staged_kept.clone()].into();
        // Shared with peers: what changed since `before` may be a peer's new file.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        assert_eq!(store.sweep(&keep, Some(past)).await?, Swept::default());
        let swept = store.sweep(&keep, None).await?;
        assert_eq!(
            swept,
            Swept {
                files: 3,
                bytes: (b"orphan".len() + b"left by a crash".len() + 2) as u64
            }
        );
        assert!(store.open(&kept).await.is_ok());
        assert!(store.open(&orphan).await.is_err());
        assert!(live.path().exists(), "a staging file a row names is kept");
        assert!(dir.path().join("blobs/a-dir").is_dir());
        assert_eq!(store.sweep(&keep, None).await?, Swept::default());
        Ok(())
    }
}
