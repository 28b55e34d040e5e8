//! The one writer of `images.status`: read the status, ask the transition table, and apply the
//! move as a compare-and-swap on (from, to) that writes nothing when the row moved meanwhile.
//! The few other columns a move sets (the writer mark, the recycle bin, the failure reason)
//! change in the same update, and an operation the move ends finishes in the same transaction.

use crate::db::{QueryBuilder, Store, StoreError};
use crate::images::store::{ImageRecord, VerifiedBlob};
use plinth_common::image::{ImageEvent, ImageNext, ImageStatus, InvalidImageTransition};
use tracing::warn;

/// How often a change is retried when another writer moved the image between the read and the
/// swap; each retry asks the table again against the status read then.
const ATTEMPTS: usize = 5;

/// What a status change writes besides the status, and what it requires of the row.
#[derive(Debug, Clone, Copy)]
pub enum StatusEffect<'a> {
    /// The content is in place: the writer mark `key` moves into `blob_id` (the row must still
    /// hold that mark); what verification found is recorded when given (a copy keeps the
    /// source's).
    Content {
        key: &'a str,
        verified: Option<&'a VerifiedBlob>,
    },
    /// Filling failed: the reason is recorded and any writer mark dropped (its writer removes
    /// its own file).
    Failure { reason: &'a str },
    /// Into `deleting`, remembering the status it leaves; `recycle` puts it in the recycle bin.
    /// No instance may use the image.
    Bin { recycle: bool },
    /// Out of the recycle bin.
    Unbin,
    /// The row goes (with its tags).
    Remove,
}

/// The operation a change ends, and its error when it failed.
#[derive(Debug, Clone, Copy)]
pub struct OpEnd<'a> {
    pub id: &'a str,
    pub error: Option<&'a str>,
}

/// Why a status change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImageTransitionError {
    #[error("no such image")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] InvalidImageTransition),
    /// The status allowed it, but the effect's condition did not hold (the writer mark is
    /// another's, an instance uses the image, it is not in the recycle bin).
    #[error("the change's condition on the image does not hold")]
    Unmet,
    #[error("the image kept changing under the request")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change that happened.
#[derive(Debug, Clone)]
pub struct Moved {
    /// The image as it was read just before the swap.
    pub before: ImageRecord,
    pub to: ImageNext,
}

impl Store {
    /// Applies `event` (chosen from the image as read, so a restore can name the status it
    /// returns to) with `effect`, ending `op` in the same transaction. Retries when another
    /// writer moved the image first, and then reports against the status it is in now.
    pub async fn transition_image(
        &self,
        id: &str,
        event: impl Fn(&ImageRecord) -> ImageEvent,
        effect: StatusEffect<'_>,
        op: Option<OpEnd<'_>>,
        now: i64,
    ) -> Result<Moved, ImageTransitionError> {
        for _ in 0..ATTEMPTS {
            let before = self
                .image(id)
                .await?
                .ok_or(ImageTransitionError::NotFound)?;
            let from = before.image.status;
            let to = from.transition(before.image.kind, event(&before))?;
            if self
                .swap_image_status(id, from, to, effect, op, now)
                .await?
            {
                return Ok(Moved { before, to });
            }
            let status_now = self.image(id).await?.map(|r| r.image.status);
            if status_now == Some(from) {
                return Err(ImageTransitionError::Unmet);
            }
        }
        Err(ImageTransitionError::Contended)
    }

    /// The compare-and-swap: moves image `id` from `from` to `to` with `effect`, and ends `op`,
    /// all or nothing. `false` (nothing written) when the row is not in `from` any more or the
    /// effect's condition fails.
    async fn swap_image_status(
        &self,
        id: &str,
        from: ImageStatus,
        to: ImageNext,
        effect: StatusEffect<'_>,
        op: Option<OpEnd<'_>>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut qb = match to {
            ImageNext::Removed => QueryBuilder::new("DELETE FROM images"),
            ImageNext::Status(to) => {
                let mut qb = QueryBuilder::new("UPDATE images SET status = ");
                qb.push_bind(to.as_str());
                qb.push(", updated_at = ").push_bind(now);
                set_effect(&mut qb, effect, now);
                qb
            }
        };
        qb.push(" WHERE id = ").push_bind(id.to_string());
        qb.push(" AND status = ").push_bind(from.as_str());
        match effect {
            StatusEffect::Content { key, .. } => {
                qb.push(" AND pending_blob_id = ")
                    .push_bind(key.to_string());
            }
            StatusEffect::Bin { .. } => {
                qb.push(" AND deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM instances WHERE image_id = ")
                    .push_bind(id.to_string())
                    .push(")");
            }
            StatusEffect::Unbin => {
                qb.push(" AND deleted_at IS NOT NULL");
            }
            StatusEffect::Failure { .. } | StatusEffect::Remove => {}
        }
        let mut tx = self.write().await?;
        let data = match to {
            ImageNext::Removed => {
                serde_json::json!({ "deleted": true, "removed": true, "from": from.as_str() })
            }
            ImageNext::Status(to) => {
                serde_json::json!({ "status": to.as_str(), "from": from.as_str() })
            }
        };
        if matches!(to, ImageNext::Removed) {
            // Before the delete: the event's tenant is read from the row.
            crate::events::record_change(
                &mut tx,
                crate::events::EventType::Image,
                id,
                data.clone(),
            )
            .await?;
        }
        if qb.build().execute(&mut tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        if !matches!(to, ImageNext::Removed) {
            crate::events::record_change(&mut tx, crate::events::EventType::Image, id, data)
                .await?;
        }
        if let Some(op) = op {
            if let (None, ImageNext::Status(to)) = (op.error, to) {
                let step = format!("stored: the image is {to}");
                crate::jobs::operations::add_step(&mut tx, op.id, &step, now).await?;
            }
            self.finish_operation(&mut tx, op.id, op.error, now).await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    /// Import or upload succeeded: the image becomes available with what verification found,
    /// its blob the one its writer mark names (`v.blob_id`). `false` (nothing changed) when
    /// that key no longer holds the mark or the image moved on.
    pub async fn complete_image(
        &self,
        id: &str,
        op_id: &str,
        v: &VerifiedBlob,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.content_verified(id, op_id, &v.blob_id, Some(v), now)
            .await
    }

    /// The copy is in place: the base image is available with the blob its writer mark named.
    /// `false` (nothing changed) when `blob_id` no longer holds the mark.
    pub async fn complete_copy(
        &self,
        id: &str,
        op_id: &str,
        blob_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.content_verified(id, op_id, blob_id, None, now).await
    }

    /// The content under writer mark `key` is in place (`verified`: what verification found,
    /// for an import or upload; none for a copy): the image becomes available and `op_id` ends.
    async fn content_verified(
        &self,
        id: &str,
        op_id: &str,
        key: &str,
        verified: Option<&VerifiedBlob>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let effect = StatusEffect::Content { key, verified };
        let op = OpEnd {
            id: op_id,
            error: None,
        };
        refused_is_false(
            self.transition_image(id, |_| ImageEvent::ContentVerified, effect, Some(op), now)
                .await,
        )
    }

    /// Filling image `id` failed: a custom image becomes `import_failed` with `reason` (a
    /// sentence for its tenant), a half-made base image goes away; the operation ends with
    /// the reason. An image that already moved on (completed, failed) is left as it is.
    pub async fn fail_image(
        &self,
        id: &str,
        op_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let effect = StatusEffect::Failure { reason };
        let op = OpEnd {
            id: op_id,
            error: Some(reason),
        };
        let moved = self
            .transition_image(id, |_| ImageEvent::Failed, effect, Some(op), now)
            .await;
        if !refused_is_false(moved)? {
            warn!(image = %id, operation = %op_id, "The image had moved on; its failure is not recorded.");
        }
        Ok(())
    }
}

impl Store {
    /// Ends operation `op_id` if it is still running, when the image it filled is gone.
    pub(crate) async fn end_operation(
        &self,
        op_id: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let running = self
            .get_operation(op_id, None)
            .await?
            .is_some_and(|o| o.status == plinth_common::api::OperationStatus::Running);
        if running {
            let mut tx = self.write().await?;
            self.finish_operation(&mut tx, op_id, error, now).await?;
            tx.commit().await?;
            self.events_committed();
        }
        Ok(())
    }
}

/// A change the image's status or condition refused is `false`; only a store failure is an
/// error.
fn refused_is_false(moved: Result<Moved, ImageTransitionError>) -> Result<bool, StoreError> {
    match moved {
        Ok(_) => Ok(true),
        Err(ImageTransitionError::Store(err)) => Err(err),
        Err(
            ImageTransitionError::NotFound
            | ImageTransitionError::Invalid(_)
            | ImageTransitionError::Unmet
            | ImageTransitionError::Contended,
        ) => Ok(false),
    }
}

/// The columns `effect` sets besides the status.
fn set_effect(qb: &mut QueryBuilder<'_>, effect: StatusEffect<'_>, now: i64) {
    match effect {
        StatusEffect::Content { verified, .. } => {
            qb.push(", blob_id = pending_blob_id, pending_blob_id = NULL");
            if let Some(v) = verified {
                qb.push(", sha256 = ").push_bind(v.sha256.clone());
                qb.push(", size_bytes = ").push_bind(v.size_bytes as i64);
                qb.push(", virtual_size_bytes = ")
                    .push_bind(v.virtual_size_bytes as i64);
                qb.push(", format = ").push_bind(v.format.clone());
                qb.push(", failure_reason = NULL");
            }
        }
        StatusEffect::Failure { reason } => {
            qb.push(", failure_reason = ").push_bind(reason.to_string());
            qb.push(", pending_blob_id = NULL");
        }
        StatusEffect::Bin { recycle } => {
            // SET reads the row as it was: this keeps the status being left.
            qb.push(", status_before_delete = status, deleted_at = ")
                .push_bind(recycle.then_some(now));
        }
        StatusEffect::Unbin => {
            qb.push(", status_before_delete = NULL, deleted_at = NULL");
        }
        StatusEffect::Remove => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_image;
    use plinth_common::image::ImageKind;

    async fn custom(store: &Store, id: &str, status: ImageStatus) -> Result<(), StoreError> {
        test_image(store, id).await?;
        crate::db::query("UPDATE images SET kind = $1, status = $2 WHERE id = $3")
            .bind(ImageKind::Custom.as_str())
            .bind(status.as_str())
            .bind(id)
            .execute(store.pool())
            .await?;
        Ok(())
    }

    async fn status(store: &Store, id: &str) -> Result<Option<ImageStatus>, StoreError> {
        Ok(store.image(id).await?.map(|r| r.image.status))
    }

    crate::db::store_test! {
    async fn the_table_decides_and_the_swap_applies(store, _dir) -> anyhow::Result<()> {
        custom(&store, "img-1", ImageStatus::ImportFailed).await?;
        test_image(&store, "img-base").await?;
        let bin = StatusEffect::Bin { recycle: true };

        // Into the recycle bin and back, to the status it left.
        let moved = store
            .transition_image("img-1", |_| ImageEvent::Delete, bin, None, 1)
            .await?;
        assert_eq!(moved.to, ImageNext::Status(ImageStatus::Deleting));
        let rec = store.image("img-1").await?.expect("row");
        assert!(rec.image.deleted_at.is_some());
        assert_eq!(rec.status_before_delete, Some(ImageStatus::ImportFailed));
        let err = store
            .transition_image("img-1", |_| ImageEvent::Delete, bin, None, 2)
            .await
            .expect_err("deleting twice");
        let ImageTransitionError::Invalid(err) = err else {
            panic!("expected an invalid transition, got {err:?}");
        };
        assert_eq!(
            (err.from, err.event),
            (ImageStatus::Deleting, ImageEvent::Delete)
        );
        let restore = |rec: &ImageRecord| ImageEvent::Restore {
            before: rec.status_before_delete.unwrap_or(ImageStatus::Deleting),
        };
        store
            .transition_image("img-1", restore, StatusEffect::Unbin, None, 3)
            .await?;
        let rec = store.image("img-1").await?.expect("row");
        assert_eq!(rec.image.status, ImageStatus::ImportFailed);
        assert_eq!(
            (rec.image.deleted_at, rec.status_before_delete),
            (None, None)
        );

        // An instance that uses the image: the status allows it, the condition does not.
        store
            .create_tenant("tenant-1", "t@example.org", "t")
            .await?;
        store
            .insert_instance_ref("inst-1", "tenant-1", "img-1", 4)
            .await?;
        let err = store
            .transition_image("img-1", |_| ImageEvent::Delete, bin, None, 5)
            .await
            .expect_err("in use");
        assert!(matches!(err, ImageTransitionError::Unmet), "{err:?}");
        assert_eq!(
            status(&store, "img-1").await?,
            Some(ImageStatus::ImportFailed)
        );

        // A base image is deleted outright: deleting, then removed.
        let outright = StatusEffect::Bin { recycle: false };
        store
            .transition_image("img-base", |_| ImageEvent::Delete, outright, None, 6)
            .await?;
        assert!(
            store
                .image("img-base")
                .await?
                .expect("row")
                .image
                .deleted_at
                .is_none()
        );
        let moved = store
            .transition_image(
                "img-base",
                |_| ImageEvent::Destroy,
                StatusEffect::Remove,
                None,
                7,
            )
            .await?;
        assert_eq!(moved.to, ImageNext::Removed);
        assert_eq!(status(&store, "img-base").await?, None);
        let err = store
            .transition_image(
                "img-base",
                |_| ImageEvent::Destroy,
                StatusEffect::Remove,
                None,
                8,
            )
            .await
            .expect_err("gone");
        assert!(matches!(err, ImageTransitionError::NotFound), "{err:?}");
        Ok(())
    }
    }

    crate::db::store_test! {
    /// Two deletes of one image at once: the swap lets exactly one through, and the other is
    /// refused against the status the first left.
    async fn racing_changes_move_an_image_once(store, _dir) -> anyhow::Result<()> {
        custom(&store, "img-1", ImageStatus::Available).await?;
        let bin = StatusEffect::Bin { recycle: true };
        let (a, b) = tokio::join!(
            store.transition_image("img-1", |_| ImageEvent::Delete, bin, None, 1),
            store.transition_image("img-1", |_| ImageEvent::Delete, bin, None, 1),
        );
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            (a, b) => panic!("expected one winner: {a:?} {b:?}"),
        };
        assert_eq!(won.before.image.status, ImageStatus::Available);
        let ImageTransitionError::Invalid(err) = lost else {
            panic!("expected an invalid transition, got {lost:?}");
        };
        assert_eq!(err.from, ImageStatus::Deleting);
        Ok(())
    }
    }
}
