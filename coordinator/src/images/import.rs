//! Importing an image from a URL: open the source, stream it once through hash and write,
//! verify what arrived, commit it. Any failure leaves the image `import_failed` with the reason
//! and no partial content. A restart runs the import again from the start (the start-up
//! sweep has removed what the cut-off run staged; images::writer).

use crate::images::fetch::{self, Source};
use crate::images::ingest::ingest;
use crate::images::store::{ImageRecord, VerifiedBlob};
use crate::images::verify::{Expectations, GIB, verify};
use crate::images::writer::{ContentWriter, Refused};
use crate::images::{SOURCE_TIMEOUT, redact_url};
use crate::state::AppState;
use plinth_common::timefmt::now_ms;
use std::time::Duration;
use tracing::{info, warn};

const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub async fn run(st: AppState, image_id: String, op_id: String) {
    let writer = match ContentWriter::claim(&st.store, &st.images.blobs, &image_id).await {
        Ok(writer) => writer,
        Err(Refused::Store(err)) => {
            let reason = "the store could not start the import; import the image again";
            tracing::error!(image = %image_id, error = ?err, "Import could not take the image's writer mark.");
            if let Err(err) = st
                .store
                .fail_image(&image_id, &op_id, reason, now_ms())
                .await
            {
                tracing::error!(image = %image_id, error = ?err, "Could not record a failed import.");
            }
            return;
        }
        // Another writer owns the image, or it moved on: theirs to end, not this job's.
        Err(refused) => {
            warn!(image = %image_id, operation = %op_id, why = %refused, "Import not started.");
            return;
        }
    };
    let outcome = import(&st, &image_id, &op_id, &writer).await;
    finish(&st, &image_id, &op_id, outcome, writer).await;
}

/// Records how an import or upload ended, and ends its writer: content the row now names is
/// kept, anything else removed.
pub async fn finish(
    st: &AppState,
    image_id: &str,
    op_id: &str,
    outcome: Result<VerifiedBlob, String>,
    writer: ContentWriter,
) {
    let now = now_ms();
    match &outcome {
        Ok(v) => match st.store.complete_image(image_id, op_id, v, now).await {
            Ok(true) => {
                info!(image = %image_id, bytes = v.size_bytes, "Image imported.");
                writer.completed();
            }
            Ok(false) => {
                warn!(image = %image_id, "The image's writer mark was gone when its content was ready; the content is dropped.");
                writer.abandon().await;
            }
            Err(err) => {
                tracing::error!(image = %image_id, error = ?err, "Could not record the end of an import.");
                writer.abandon().await;
            }
        },
        Err(reason) => {
            warn!(image = %image_id, %reason, "Image import failed.");
            if let Err(err) = st.store.fail_image(image_id, op_id, reason, now).await {
                tracing::error!(image = %image_id, error = ?err, "Could not record the end of an import.");
            }
            writer.abandon().await;
        }
    }
}

async fn import(
    st: &AppState,
    image_id: &str,
    op_id: &str,
    writer: &ContentWriter,
) -> Result<VerifiedBlob, String> {
    let rec = st
        .store
        .image(image_id)
        .await
        .map_err(|e| format!("store: {e}"))?
        .ok_or("the image was removed")?;
    let sealed = rec
        .source_url_sealed
        .as_deref()
        .ok_or("the image has no source URL")?;
    let url: reqwest::Url = st
        .images
        .secrets
        .unseal(sealed)
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|_| "the source URL is malformed".to_string())?;
    info!(image = %image_id, url = %redact_url(&url), "Import started.");
    let source = match url.scheme() {
        "http" | "https" => fetch::http::open(&st.images.http, &url).await,
        "ftp" => fetch::ftp::open(&url, SOURCE_TIMEOUT).await,
        other => Err(fetch::FetchError::BadUrl(format!(
            "{other} URLs cannot be imported"
        ))),
    }
    .map_err(|e| e.to_string())?;
    fill(st, &rec, op_id, source, writer).await
}

/// Streams `source` into `writer`'s staged blob with progress, verifies it and renames it into
/// place (the row names it as pending; `finish` completes it). Shared by URL imports, uploads
/// and exports.
pub async fn fill(
    st: &AppState,
    rec: &ImageRecord,
    op_id: &str,
    source: Source,
    writer: &ContentWriter,
) -> Result<VerifiedBlob, String> {
    let target_gb = rec.image.target_size_gb.unwrap_or(0);
    // No file may be larger than the disk it claims to fit in (an ISO is its own size).
    let limit = u64::from(target_gb) * GIB;
    let (staged, file) = writer
        .stage()
        .await
        .map_err(|e| format!("staging failed: {e}"))?;

    let (tx, mut rx) = tokio::sync::watch::channel(0u64);
    let store = st.store.clone();
    let op = op_id.to_string();
    let total = source.total_bytes;
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let reporter = st.jobs.spawn("import progress", async move {
        let mut ticker = tokio::time::interval(PROGRESS_EVERY);
        loop {
            // The last report goes out when the ingest ends, not at the next tick.
            let done = tokio::select! {
                _ = ticker.tick() => false,
                _ = &mut done_rx => true,
            };
            let bytes = *rx.borrow_and_update();
            let _ = store.operation_progress(&op, bytes, total, now_ms()).await;
            if done {
                return;
            }
        }
    });
    let ingested = ingest(source.reader, file, limit, move |n| {
        let _ = tx.send(n);
    })
    .await;
    let _ = done_tx.send(());
    let _ = reporter.await;
    let ingested = ingested.map_err(|e| e.to_string())?;
    if let Some(expected) = total
        && expected != ingested.bytes
    {
        return Err(format!(
            "the transfer ended after {} of {expected} bytes",
            ingested.bytes
        ));
    }
    let want = Expectations {
        image_type: rec.image.image_type,
        target_size_gb: target_gb,
        sha256: rec.expected_sha256.as_deref(),
    };
    let mut verified = verify(staged.path(), &ingested.sha256, ingested.bytes, &want).await?;
    writer
        .commit(staged)
        .await
        .map_err(|e| format!("storing the image failed: {e}"))?;
    verified.blob_id = writer.key().to_string();
    Ok(verified)
}
