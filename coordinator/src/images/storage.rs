//! Where image content lives. Content is always staged in a local file first (so qemu-img can
//! inspect it), then committed under a blob id plinth made — never a name from input. The local
//! backend keeps blobs under the data directory; an S3-compatible backend (for example through
//! `object_store`) becomes another variant of `BlobStore`, with the API untouched.

use plinth_common::ids::new_id;
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

    /// Creates the directories and removes staging files a crash left behind.
    pub async fn prepare(&self) -> std::io::Result<()> {
        match self {
            BlobStore::Local(l) => {
                tokio::fs::create_dir_all(l.blobs()).await?;
                let _ = tokio::fs::remove_dir_all(l.staging()).await;
                tokio::fs::create_dir_all(l.staging()).await?;
                // Tenants' images: the coordinator's alone (it serves them over mTLS).
                for dir in [l.root.clone(), l.blobs(), l.staging()] {
                    plinth_common::fsutil::set_mode(&dir, 0o700)?;
                }
                Ok(())
            }
        }
    }

    /// A new staging file and its handle for writing.
    pub async fn stage(&self) -> std::io::Result<(Staged, File)> {
        let blob_id = new_id("blob");
        let path = match self {
            BlobStore::Local(l) => l.staging().join(format!("{blob_id}.part")),
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
                blob_id,
                committed: false,
            },
            file,
        ))
    }

    /// Puts verified content in place; returns its blob id.
    pub async fn commit(&self, mut staged: Staged) -> std::io::Result<String> {
        match self {
            BlobStore::Local(l) => {
                tokio::fs::rename(&staged.path, l.blob_path(&staged.blob_id)).await?
            }
        }
        staged.committed = true;
        Ok(staged.blob_id.clone())
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

    /// Copies a blob under a new id.
    pub async fn copy(&self, blob_id: &str) -> std::io::Result<String> {
        let (staged, _) = self.stage().await?;
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
            BlobStore::Local(l) => match tokio::fs::remove_file(l.blob_path(blob_id)).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            },
        }
    }
}

impl LocalDir {
    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    fn staging(&self) -> PathBuf {
        self.root.join("staging")
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
        let (staged, mut file) = store.stage().await?;
        file.write_all(b"partial").await?;
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(!path.exists(), "a dropped staging file is removed");

        let (staged, mut file) = store.stage().await?;
        file.write_all(b"content").await?;
        file.flush().await?;
        let id = store.commit(staged).await?;
        let (_, len) = store.open(&id).await?;
        assert_eq!(len, 7);
        let copy = store.copy(&id).await?;
        assert_ne!(copy, id);
        store.delete(&id).await?;
        store.delete(&id).await?;
        assert!(store.open(&id).await.is_err());
        assert!(store.open(&copy).await.is_ok());
        assert!(store.open("../../etc/passwd").await.is_err());
        Ok(())
    }
}
