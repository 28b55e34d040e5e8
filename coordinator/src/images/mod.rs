//! The image repository's machinery: where content comes from (fetch), one pass that hashes
//! and stores it (ingest), what it must be (verify, qemu-img), where it lives (storage), and
//! who may write it (writer: one at a time, and nothing orphaned).

pub mod api;
pub mod copy;
pub mod import;
pub mod store;

pub mod fetch;
pub mod ingest;
pub mod qemu_img;
pub mod storage;
pub mod verify;
pub mod writer;

use crate::secrets::Secrets;
use std::sync::Arc;
use std::time::Duration;
use storage::BlobStore;

/// Idle time after which a source that sends nothing fails the import.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(60);

/// What image handlers and jobs share.
#[derive(Clone, Debug)]
pub struct ImageServices {
    pub blobs: BlobStore,
    pub secrets: Arc<Secrets>,
    /// For http(s) imports: trusts the system's roots plus any configured CA.
    pub http: reqwest::Client,
}

/// `url` with any password replaced by `***`, for display and logs.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// The client imports use: connect and idle deadlines, no overall deadline (images are large).
pub fn import_client(extra_ca_pem: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(SOURCE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(pem) = extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Operation kinds of the image repository's jobs.
pub const IMPORT: &str = "image_import";
pub const UPLOAD: &str = "image_upload";
pub const COPY: &str = "image_copy";

/// Restarts imports and copies that were running; fails exports and uploads (their source or
/// client is gone).
pub async fn resume(st: &crate::state::AppState) -> anyhow::Result<()> {
    use plinth_common::timefmt::now_ms;
    use tracing::{info, warn};
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
    for op in st
        .store
        .running_operations(crate::instances::jobs::EXPORT)
        .await?
    {
        warn!(operation = %op.id, image = %op.target_id, "An export was cut off by a restart.");
        let reason = "the coordinator restarted during the export; export the instance again";
        st.store
            .fail_image(&op.target_id, &op.id, reason, now_ms())
            .await?;
    }
    for op in st.store.running_operations(UPLOAD).await? {
        warn!(operation = %op.id, image = %op.target_id, "An upload was cut off by a restart.");
        let reason = "the coordinator restarted during the upload; upload the file again";
        st.store
            .fail_image(&op.target_id, &op.id, reason, now_ms())
            .await?;
    }
    Ok(())
}
