//! Long-running work (images, instances, drains, bare-metal preparation and power sync). Each
//! job is an operation row written before the work starts; a job reads top to bottom, and
//! `resume` restarts what a stopped coordinator left running.

pub mod baremetal_prepare;
pub mod baremetal_sync;
pub mod copy;
pub mod drain;
pub mod import;
pub mod instances;
pub mod runner;

pub use runner::Jobs;

use crate::state::AppState;
use plinth_common::timefmt::now_ms;
use tracing::{info, warn};

pub const IMPORT: &str = "image_import";
pub const UPLOAD: &str = "image_upload";
pub const COPY: &str = "image_copy";

/// Restarts imports and copies that were running; fails uploads (their client is gone).
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for op in st.store.running_operations(IMPORT).await? {
        info!(operation = %op.id, image = %op.target_id, "Restarting an import the last run left unfinished.");
        st.jobs
            .spawn("image import", import::run(st.clone(), op.target_id, op.id));
    }
    for op in st.store.running_operations(COPY).await? {
        info!(operation = %op.id, image = %op.target_id, "Restarting an unfinished copy to base.");
        st.jobs
            .spawn("image copy", copy::resume(st.clone(), op.target_id, op.id));
    }
    for op in st.store.running_operations(instances::EXPORT).await? {
        warn!(operation = %op.id, image = %op.target_id, "An export was cut off by a restart.");
        let reason = "the coordinator restarted during the export; export the instance again";
        st.store
            .fail_image(&op.target_id, &op.id, reason, now_ms())
            .await?;
    }
    instances::resume(st).await?;
    baremetal_prepare::resume(st).await?;
    drain::resume(st).await?;
    for op in st.store.running_operations(UPLOAD).await? {
        warn!(operation = %op.id, image = %op.target_id, "An upload was cut off by a restart.");
        let reason = "the coordinator restarted during the upload; upload the file again";
        st.store
            .fail_image(&op.target_id, &op.id, reason, now_ms())
            .await?;
    }
    Ok(())
}
