//! The one-content-writer mark on an image (`images.pending_blob_id`): taken and released by
//! conditional updates, so the database — not a coordinator's memory — decides who writes an
//! image's content. Completing an image moves the mark into `blob_id` (store/status.rs).

use crate::db::{QueryBuilder, Store, StoreError};
use plinth_common::image::ImageStatus;
use std::collections::HashSet;

impl Store {
    /// Takes image `id`'s content-writer mark for `key`, the blob the writer will put in place.
    /// `false` when another writer holds it or the image takes no content now (not `importing`
    /// (import, upload), `creating` (export) or `making` (copy to base), already has content, or
    /// deleted); the caller reads which.
    pub async fn claim_content(&self, id: &str, key: &str) -> Result<bool, StoreError> {
        let mut qb = QueryBuilder::new("UPDATE images SET pending_blob_id = ");
        qb.push_bind(key.to_string())
            .push(" WHERE id = ")
            .push_bind(id.to_string())
            .push(" AND pending_blob_id IS NULL AND blob_id IS NULL AND deleted_at IS NULL")
            .push(" AND status IN (");
        let mut list = qb.separated(", ");
        for status in ImageStatus::ALL.iter().filter(|s| s.takes_content()) {
            list.push_bind(status.as_str());
        }
        list.push_unseparated(")");
        // An import's or a copy's claim is a job's: a writer of an ended term is refused here.
        let mut tx = self.write().await?;
        let res = qb.build().execute(&mut tx).await?;
        tx.commit().await?;
        Ok(res.rows_affected() == 1)
    }

    /// Lets go of the mark `key` holds on image `id`; `false` when it held none (already
    /// completed, failed, or cleared at start-up).
    pub async fn release_content(&self, id: &str, key: &str) -> Result<bool, StoreError> {
        let res = crate::db::query(
            "UPDATE images SET pending_blob_id = NULL WHERE id = $1 AND pending_blob_id = $2",
        )
        .bind(id)
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Takes image `id`'s mark away from a writer of an ended term (a holder of the job lease
    /// that died or stood down): returns its key, so its file can go, or `None` when no mark was
    /// held. Only the job that now owns the image's operation calls it.
    pub async fn clear_content_mark(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut tx = self.write().await?;
        let key: Option<String> =
            crate::db::query_scalar("SELECT pending_blob_id FROM images WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut tx)
                .await?
                .flatten();
        if key.is_some() {
            crate::db::query("UPDATE images SET pending_blob_id = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(key)
    }

    /// Whether any image row names `key`, as its content or as the blob being written.
    pub async fn blob_referenced(&self, key: &str) -> Result<bool, StoreError> {
        let row = crate::db::query(
            "SELECT 1 FROM images WHERE blob_id = $1 OR pending_blob_id = $1 LIMIT 1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// At start-up, before any job runs: clears every mark a stopped coordinator left, and
    /// returns them as (image, key) so their files can go.
    pub async fn clear_content_marks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut tx = self.write().await?;
        let rows = crate::db::query(
            "SELECT id, pending_blob_id FROM images WHERE pending_blob_id IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut tx)
        .await?;
        let marks = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("pending_blob_id")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
        crate::db::query(
            "UPDATE images SET pending_blob_id = NULL WHERE pending_blob_id IS NOT NULL",
        )
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(marks)
    }

    /// Every blob key an image row names (content or pending), recycle bin and `deleting`
    /// rows included: what the start-up sweep keeps.
    pub async fn referenced_blobs(&self) -> Result<HashSet<String>, StoreError> {
        let rows = crate::db::query(
            "SELECT blob_id AS key FROM images WHERE blob_id IS NOT NULL \
             UNION SELECT pending_blob_id FROM images WHERE pending_blob_id IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("key")?))
            .collect::<Result<_, StoreError>>()
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{Store, StoreError, test_image};
    use crate::images::store::VerifiedBlob;
    use crate::jobs::operations::NewOperation;

    /// An image `id` in `status` with a running operation `op-<id>`: a custom image, unless the
    /// status is one only base images have.
    async fn image(store: &Store, id: &str, status: &str) -> Result<(), StoreError> {
        test_image(store, id).await?;
        let kind = if status == "making" { "base" } else { "custom" };
        crate::db::query(
            "UPDATE images SET kind = $1, status = $2, operation_id = $3 WHERE id = $4",
        )
        .bind(kind)
        .bind(status)
        .bind(format!("op-{id}"))
        .bind(id)
        .execute(store.pool())
        .await?;
        let op_id = format!("op-{id}");
        let op = NewOperation {
            id: &op_id,
            kind: "image_upload",
            target_id: id,
            owner_tenant_id: None,
            now: 1,
        };
        let mut tx = store.write().await?;
        store.insert_operation(&mut tx, &op).await?;
        tx.commit().await?;
        Ok(())
    }

    fn verified(key: &str) -> VerifiedBlob {
        VerifiedBlob {
            blob_id: key.into(),
            sha256: "ab".repeat(32),
            size_bytes: 7,
            virtual_size_bytes: 7,
            format: "qcow2".into(),
        }
    }

    crate::db::store_test! {
    async fn one_writer_at_a_time(store, _dir) -> Result<(), StoreError> {
        image(&store, "img-1", "importing").await?;
        image(&store, "img-done", "available").await?;
        image(&store, "img-failed", "import_failed").await?;
        image(&store, "img-base", "making").await?;
        image(&store, "img-export", "creating").await?;

        let cases = [
            (
                "first writer of an importing image",
                "img-1",
                "blob-a",
                true,
            ),
            (
                "second writer while the first holds it",
                "img-1",
                "blob-b",
                false,
            ),
            ("the same key again", "img-1", "blob-a", false),
            ("an available image", "img-done", "blob-c", false),
            ("an import_failed image", "img-failed", "blob-d", false),
            ("a base image being made", "img-base", "blob-e", true),
            ("an export being created", "img-export", "blob-k", true),
            ("no such image", "img-none", "blob-f", false),
        ];
        for (label, id, key, want) in cases {
            assert_eq!(store.claim_content(id, key).await?, want, "{label}");
        }
        let rec = store.image("img-1").await?.expect("img-1");
        assert_eq!(rec.pending_blob_id.as_deref(), Some("blob-a"));
        assert_eq!(rec.blob_id, None, "a mark is not content");

        // Only the holder completes, and completing moves the mark into blob_id.
        assert!(
            !store
                .complete_image("img-1", "op-img-1", &verified("blob-b"), 2)
                .await?
        );
        let rec = store.image("img-1").await?.expect("img-1");
        assert_eq!(
            rec.image.status.as_str(),
            "importing",
            "a refused completion changes nothing"
        );
        assert!(
            store
                .complete_image("img-1", "op-img-1", &verified("blob-a"), 2)
                .await?
        );
        let rec = store.image("img-1").await?.expect("img-1");
        assert_eq!(rec.blob_id.as_deref(), Some("blob-a"));
        assert_eq!(rec.pending_blob_id, None);
        assert_eq!(rec.image.status.as_str(), "available");
        let op = store.get_operation("op-img-1", None).await?.expect("op");
        assert_eq!(op.status, plinth_common::api::OperationStatus::Succeeded);
        assert!(
            !store.claim_content("img-1", "blob-g").await?,
            "content is written once"
        );

        // Releasing: only the holder's key lets go; then another writer may take it.
        assert!(!store.release_content("img-base", "blob-x").await?);
        assert!(store.release_content("img-base", "blob-e").await?);
        assert!(!store.release_content("img-base", "blob-e").await?);
        assert!(store.claim_content("img-base", "blob-h").await?);
        assert!(
            !store
                .complete_copy("img-base", "op-img-base", "blob-e", 3)
                .await?
        );
        assert!(
            store
                .complete_copy("img-base", "op-img-base", "blob-h", 3)
                .await?
        );

        // A failure clears the mark with the status.
        image(&store, "img-2", "importing").await?;
        assert!(store.claim_content("img-2", "blob-i").await?);
        store.fail_image("img-2", "op-img-2", "cut off", 4).await?;
        let rec = store.image("img-2").await?.expect("img-2");
        assert_eq!(rec.pending_blob_id, None);
        assert!(!store.claim_content("img-2", "blob-j").await?);
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn start_up_clears_marks_and_lists_what_rows_reference(store, _dir) -> Result<(), StoreError> {
        image(&store, "img-1", "importing").await?;
        image(&store, "img-2", "importing").await?;
        image(&store, "img-3", "importing").await?;
        assert!(store.claim_content("img-1", "blob-1").await?);
        assert!(store.claim_content("img-2", "blob-2").await?);
        assert!(store.claim_content("img-3", "blob-3").await?);
        assert!(
            store
                .complete_image("img-3", "op-img-3", &verified("blob-3"), 2)
                .await?
        );

        let keys = store.referenced_blobs().await?;
        let mut keys: Vec<_> = keys.into_iter().collect();
        keys.sort();
        assert_eq!(keys, ["blob-1", "blob-2", "blob-3"]);
        assert!(store.blob_referenced("blob-1").await?);
        assert!(store.blob_referenced("blob-3").await?);
        assert!(!store.blob_referenced("blob-4").await?);

        let cleared = store.clear_content_marks().await?;
        assert_eq!(
            cleared,
            [
                ("img-1".to_string(), "blob-1".to_string()),
                ("img-2".to_string(), "blob-2".to_string())
            ]
        );
        assert!(store.clear_content_marks().await?.is_empty());
        let keys: Vec<_> = store.referenced_blobs().await?.into_iter().collect();
        assert_eq!(keys, ["blob-3"], "only committed content is referenced now");
        assert!(
            store.claim_content("img-1", "blob-5").await?,
            "a cleared image takes a writer again"
        );
        Ok(())
    }
    }
}
