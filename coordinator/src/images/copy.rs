//! Copying a custom image into a new base image: the base image is `making` while its blob is
//! copied, then `available`. If the copy fails, the half-made base image is removed and the
//! operation says why.

use crate::images::error::ContentError;
use crate::images::writer::{ContentWriter, Refused};
use crate::state::AppState;
use tracing::{info, warn};

/// Copies `source_blob` for the base image `target_id`.
pub async fn run(st: AppState, source_blob: String, target_id: String, op_id: String) {
    let writer = match ContentWriter::claim(&st.store, &st.images.blobs, &target_id).await {
        Ok(writer) => writer,
        Err(Refused::Store(err)) => {
            let err = ContentError::Store(err);
            crate::images::content_failed(&st, &target_id, &op_id, &err).await;
            return;
        }
        // Another writer owns the image, or it moved on: theirs to end, not this job's.
        Err(refused) => {
            warn!(image = %target_id, operation = %op_id, why = %refused, "Copy to base not started.");
            return;
        }
    };
    crate::jobs::operations::step(&st.store, &op_id, "copying the custom image's content").await;
    match writer.copy_from(&source_blob).await {
        Ok(()) => match crate::images::copy_verified(&st, &target_id, &op_id, writer.key()).await {
            Ok(true) => {
                info!(image = %target_id, "Copy to base finished.");
                writer.completed();
            }
            Ok(false) => {
                warn!(image = %target_id, "The image's writer mark was gone when the copy was ready; the copy is dropped.");
                writer.abandon().await;
            }
            Err(err) => {
                tracing::error!(image = %target_id, error = ?err, "Could not record the end of a copy.");
                writer.abandon().await;
            }
        },
        Err(err) => {
            let err = ContentError::Copy(err);
            crate::images::content_failed(&st, &target_id, &op_id, &err).await;
            writer.abandon().await;
        }
    }
}

/// After a restart: copy again from the custom image recorded as the source.
pub async fn resume(st: AppState, target_id: String, op_id: String) {
    let source = match st.store.copied_from(&target_id).await {
        Ok(Some(source_id)) => st.store.image(&source_id).await.ok().flatten(),
        _ => None,
    };
    match source.and_then(|s| s.blob_id) {
        Some(blob) => run(st, blob, target_id, op_id).await,
        None => {
            let reason = "the source image of the copy is gone";
            crate::images::interrupted(&st, &target_id, &op_id, reason).await;
        }
    }
}
