//! One content writer per image, and a commit order that cannot orphan a blob.
//!
//! Every writer — an upload, an agent's export, a URL import, a copy to base — first takes the
//! image's mark in the store: `pending_blob_id` set to a fresh blob key by a conditional update
//! that fails while another writer holds it, so two uploads (or two coordinators on one
//! database) never both write one image. Then, in this order: stage `staging/<key>.part`,
//! verify, rename it to `blobs/<key>`, and one update that moves the key into `blob_id`, makes
//! the image available and ends its operation. A crash at any point leaves at most one file,
//! and the row names it as pending; a row never names unfinished content as its `blob_id`.
//!
//! Recovery is one rule: a pending key is never completed after a crash (what verification
//! found died with the process). At start-up, before jobs resume, `recover` clears the marks
//! and sweeps every file no row names as content — a pending key's staging file or renamed
//! blob among them. The job's own resume then redoes the work (imports, copies) or fails the
//! image (uploads, exports: their client is gone). Clearing every mark at start-up holds on
//! SQLite, which one coordinator serves. On PostgreSQL a starting coordinator leaves the marks
//! alone (a peer may be writing): the job lease's holder takes a mark over when it picks up the
//! job of an ended term (`take_over`), and an upload's mark goes with its failure when its
//! receiving coordinator is gone.

use crate::db::{Store, StoreError};
use crate::images::storage::{BlobStore, Staged, Swept};
use plinth_common::image::ImageStatus;
use tokio::fs::File;
use tracing::{info, warn};

/// The mark on one image, held while its content is written. End it with `completed` once the
/// row names the blob, or `abandon`; dropped without either (a panic, a cancelled task), it
/// lets go in the background.
#[derive(Debug)]
pub struct ContentWriter {
    store: Store,
    blobs: BlobStore,
    image_id: String,
    key: String,
    ended: bool,
}

/// Why a writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("another writer is putting content into the image")]
    Busy,
    #[error("the image takes no content now")]
    NotAwaiting(Option<ImageStatus>),
    #[error("the store failed")]
    Store(#[from] StoreError),
}

impl ContentWriter {
    /// Takes image `image_id`'s mark for a new blob key.
    pub async fn claim(
        store: &Store,
        blobs: &BlobStore,
        image_id: &str,
    ) -> Result<ContentWriter, Refused> {
        let key = BlobStore::new_key();
        if store.claim_content(image_id, &key).await? {
            return Ok(ContentWriter {
                store: store.clone(),
                blobs: blobs.clone(),
                image_id: image_id.to_string(),
                key,
                ended: false,
            });
        }
        Err(match store.image(image_id).await? {
            Some(rec) if rec.pending_blob_id.is_some() => Refused::Busy,
            Some(rec) => Refused::NotAwaiting(Some(rec.image.status)),
            None => Refused::NotAwaiting(None),
        })
    }

    /// The blob key this writer fills: what the row's completing update must name.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn stage(&self) -> std::io::Result<(Staged, File)> {
        self.blobs.stage(&self.key).await
    }

    /// Renames verified content into place (the row already names it as pending).
    pub async fn commit(&self, staged: Staged) -> std::io::Result<()> {
        self.blobs.commit(staged).await
    }

    /// Fills this writer's blob with a copy of `source`.
    pub async fn copy_from(&self, source: &str) -> std::io::Result<()> {
        self.blobs.copy(source, &self.key).await
    }

    /// The completing update moved the mark into `blob_id`: the blob is the image's now.
    pub fn completed(mut self) {
        self.ended = true;
    }

    /// Ends without content: lets go of the mark if it still holds it and removes its blob,
    /// unless a row names it. What this cannot do (the store unreachable) the start-up sweep does.
    pub async fn abandon(mut self) {
        self.ended = true;
        let_go(&self.store, &self.blobs, &self.image_id, &self.key).await;
    }
}

impl Drop for ContentWriter {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, blobs) = (self.store.clone(), self.blobs.clone());
            let (image_id, key) = (self.image_id.clone(), self.key.clone());
            rt.spawn(async move { let_go(&store, &blobs, &image_id, &key).await });
        }
    }
}

async fn let_go(store: &Store, blobs: &BlobStore, image_id: &str, key: &str) {
    if let Err(err) = store.release_content(image_id, key).await {
        warn!(image = %image_id, blob = %key, error = ?err, "Could not release a content-writer mark; the next start-up clears it.");
        return;
    }
    remove_unless_named(store, blobs, image_id, key).await;
}

/// Removes blob `key` of a writer that let go of image `image_id`, unless a row names it; what
/// fails here the next start-up's sweep does.
async fn remove_unless_named(store: &Store, blobs: &BlobStore, image_id: &str, key: &str) {
    match store.blob_referenced(key).await {
        Ok(false) => {
            if let Err(err) = blobs.delete(key).await {
                warn!(image = %image_id, blob = %key, error = %err, "Could not remove an abandoned blob; the next start-up sweeps it.");
            }
        }
        Ok(true) => {}
        Err(err) => {
            warn!(image = %image_id, blob = %key, error = ?err, "Could not check an abandoned blob; the next start-up sweeps it.");
        }
    }
}

/// Before a job of the lease's term rewrites image `image_id`'s content: takes over the mark a
/// writer of an ended term left (its holder died or stood down; its own writes are fenced) and
/// removes that writer's file, if it is in this coordinator's blob store.
pub async fn take_over(store: &Store, blobs: &BlobStore, image_id: &str) -> Result<(), StoreError> {
    if let Some(key) = store.clear_content_mark(image_id).await? {
        info!(image = %image_id, blob = %key, "Took over a content-writer mark an ended term left.");
        remove_unless_named(store, blobs, image_id, &key).await;
    }
    Ok(())
}

/// How far apart the coordinators' clocks (and a shared directory's server's) may be.
const PEER_CLOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(600);

/// At start-up, before any job resumes: clears the marks a stopped coordinator left (when
/// `sole`: no other coordinator serves the store) and removes every blob and staging file no
/// image row names (without `sole`, only those older than a peer's live writer's could be);
/// logs what it freed.
pub async fn recover(store: &Store, blobs: &BlobStore, sole: bool) -> anyhow::Result<Swept> {
    let cleared = match sole {
        true => store.clear_content_marks().await?,
        false => Vec::new(),
    };
    for (image, key) in &cleared {
        info!(image = %image, blob = %key, "Cleared a content-writer mark the last run left; its file is swept.");
    }
    // Peers' clocks (and a shared filesystem's) may run a little apart from this one's.
    let before = (!sole).then(|| std::time::SystemTime::now() - PEER_CLOCK_MARGIN);
    let keep = store.referenced_blobs().await?;
    let swept = blobs.sweep(&keep, before).await?;
    info!(
        files = swept.files,
        bytes = swept.bytes,
        marks = cleared.len(),
        "Swept the image store of content no image names."
    );
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_image;
    use tokio::io::AsyncWriteExt;

    async fn importing(store: &Store, id: &str) -> Result<(), StoreError> {
        test_image(store, id).await?;
        crate::db::query("UPDATE images SET kind = 'custom', status = 'importing' WHERE id = $1")
            .bind(id)
            .execute(store.pool())
            .await?;
        Ok(())
    }

    crate::db::store_test! {
    /// A kill between the rename and the completing update: the next start-up removes the
    /// renamed blob and clears the mark, and keeps committed content.
    async fn a_kill_after_the_rename_orphans_nothing(store, dir) -> anyhow::Result<()> {
        let blobs = BlobStore::local(dir.path().join("images"));
        blobs.prepare().await?;
        importing(&store, "img-kept").await?;
        importing(&store, "img-cut").await?;
        importing(&store, "img-staging").await?;

        let kept = ContentWriter::claim(&store, &blobs, "img-kept").await?;
        let (staged, mut file) = kept.stage().await?;
        file.write_all(b"kept").await?;
        kept.commit(staged).await?;
        let kept_key = kept.key().to_string();
        crate::db::query("UPDATE images SET blob_id = pending_blob_id, pending_blob_id = NULL, status = 'available' WHERE id = 'img-kept'")
            .execute(store.pool())
            .await?;
        kept.completed();

        let cut = ContentWriter::claim(&store, &blobs, "img-cut").await?;
        assert!(matches!(
            ContentWriter::claim(&store, &blobs, "img-cut").await,
            Err(Refused::Busy)
        ));
        let (staged, mut file) = cut.stage().await?;
        file.write_all(b"renamed, never recorded").await?;
        cut.commit(staged).await?;
        let cut_key = cut.key().to_string();
        let half = ContentWriter::claim(&store, &blobs, "img-staging").await?;
        let (staged, mut file) = half.stage().await?;
        file.write_all(b"half").await?;
        // The kill: neither writer ends nor cleans up.
        std::mem::forget(staged);
        std::mem::forget(cut);
        std::mem::forget(half);
        assert!(blobs.open(&cut_key).await.is_ok());

        let swept = recover(&store, &blobs, true).await?;
        assert_eq!(
            swept,
            Swept {
                files: 2,
                bytes: (b"renamed, never recorded".len() + b"half".len()) as u64
            }
        );
        assert!(blobs.open(&cut_key).await.is_err());
        assert!(blobs.open(&kept_key).await.is_ok());
        for id in ["img-cut", "img-staging"] {
            let rec = store.image(id).await?.expect("row");
            assert_eq!(rec.pending_blob_id, None, "{id}");
            assert_eq!(
                rec.image.status,
                ImageStatus::Importing,
                "{id}: its job decides"
            );
        }
        let again = ContentWriter::claim(&store, &blobs, "img-cut").await?;
        again.abandon().await;
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn a_dropped_writer_lets_go(store, dir) -> anyhow::Result<()> {
        let blobs = BlobStore::local(dir.path().join("images"));
        blobs.prepare().await?;
        importing(&store, "img-1").await?;
        let writer = ContentWriter::claim(&store, &blobs, "img-1").await?;
        let (staged, _) = writer.stage().await?;
        writer.commit(staged).await?;
        let key = writer.key().to_string();
        drop(writer);
        // The release runs on its own task, the mark first and then the blob: wait for both,
        // with a deadline.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
            loop {
                tick.tick().await;
                let marked = store
                    .image("img-1")
                    .await?
                    .and_then(|r| r.pending_blob_id)
                    .is_some();
                if !marked && blobs.open(&key).await.is_err() {
                    return Ok::<_, StoreError>(());
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("the dropped writer kept its mark or its blob"))??;
        assert!(matches!(
            ContentWriter::claim(&store, &blobs, "img-none").await,
            Err(Refused::NotAwaiting(None))
        ));
        let next = ContentWriter::claim(&store, &blobs, "img-1").await?;
        next.abandon().await;
        assert_eq!(
            store.image("img-1").await?.and_then(|r| r.pending_blob_id),
            None
        );
        Ok(())
    }
    }
}
