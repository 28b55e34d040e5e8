//! Copying a custom image into a new base image: the base image is `making` while its blob is
//! copied, then `available`. If the copy fails, the half-made base image is removed and the
//! operation says why.

use crate::state::AppState;
use plinth_common::timefmt::now_ms;
use tracing::{info, warn};

/// Copies `source_blob` for the base image `target_id`.
pub async fn run(st: AppState, source_blob: String, target_id: String, op_id: String) {
    let outcome = st.images.blobs.copy(&source_blob).await;
    let now = now_ms();
    let recorded = match outcome {
        Ok(blob_id) => {
            info!(image = %target_id, "Copy to base finished.");
            st.store
                .complete_copy(&target_id, &op_id, &blob_id, now)
                .await
        }
        Err(err) => {
            warn!(image = %target_id, error = %err, "Copy to base failed.");
            let reason = format!("copying the content failed: {err}");
            st.store.fail_copy(&target_id, &op_id, &reason, now).await
        }
    };
    if let Err(err) = recorded {
        tracing::error!(image = %target_id, error = ?err, "Could not record the end of a copy.");
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
            if let Err(err) = st
                .store
                .fail_copy(&target_id, &op_id, reason, now_ms())
                .await
            {
                tracing::error!(error = ?err, "Could not record a failed copy.");
            }
        }
    }
}
