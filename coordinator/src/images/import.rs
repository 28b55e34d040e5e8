//! Importing an image from a URL: open the source, stream it once through hash and write,
//! verify what arrived, commit it. Any failure leaves the image `import_failed` with the reason
//! and no partial content. A restart runs the import again from the start (the start-up
//! sweep has removed what the cut-off run staged; images::writer).

use crate::images::error::ContentError;
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
            let err = ContentError::Store(err);
            crate::images::content_failed(&st, &image_id, &op_id, &err).await;
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

/// Records how an import, upload or export ended, and ends its writer: content the row now
/// names is kept, anything else removed.
pub async fn finish(
    st: &AppState,
    image_id: &str,
    op_id: &str,
    outcome: Result<VerifiedBlob, ContentError>,
    writer: ContentWriter,
) {
    match &outcome {
        Ok(v) => match crate::images::content_verified(st, image_id, op_id, v).await {
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
        Err(err) => {
            crate::images::content_failed(st, image_id, op_id, err).await;
            writer.abandon().await;
        }
    }
}

async fn import(
    st: &AppState,
    image_id: &str,
    op_id: &str,
    writer: &ContentWriter,
) -> Result<VerifiedBlob, ContentError> {
    let rec = st.store.image(image_id).await?.ok_or(ContentError::Gone)?;
    let sealed = rec
        .source_url_sealed
        .as_deref()
        .ok_or(ContentError::NoSource)?;
    let url: reqwest::Url = st
        .images
        .secrets
        .unseal(sealed)
        .map_err(|e| ContentError::Unseal(e.to_string()))?
        .parse()
        .map_err(|_| ContentError::Unseal("the unsealed URL does not parse".into()))?;
    info!(image = %image_id, url = %redact_url(&url), "Import started.");
    crate::jobs::operations::step(&st.store, op_id, "downloading from the image's source").await;
    let source = match url.scheme() {
        "http" | "https" => fetch::http::open(&st.images.http, &url).await,
        "ftp" => fetch::ftp::open(&url, SOURCE_TIMEOUT).await,
        other => Err(fetch::FetchError::BadUrl(format!(
            "{other} URLs cannot be imported"
        ))),
    }?;
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
) -> Result<VerifiedBlob, ContentError> {
    let target_gb = rec.image.target_size_gb.unwrap_or(0);
    // No file may be larger than the disk it claims to fit in (an ISO is its own size).
    let limit = u64::from(target_gb) * GIB;
    let (staged, file) = writer.stage().await.map_err(ContentError::Stage)?;
    let receiving = match source.total_bytes {
        Some(n) => format!("receiving the content ({n} bytes)"),
        None => "receiving the content (size not known ahead)".to_string(),
    };
    crate::jobs::operations::step(&st.store, op_id, &receiving).await;

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
    let ingested = ingested?;
    if let Some(expected) = total
        && expected != ingested.bytes
    {
        return Err(ContentError::Short {
            got: ingested.bytes,
            expected,
        });
    }
    let want = Expectations {
        image_type: rec.image.image_type,
        target_size_gb: target_gb,
        sha256: rec.expected_sha256.as_deref(),
    };
    let received = format!("received {} bytes; verifying", ingested.bytes);
    crate::jobs::operations::step(&st.store, op_id, &received).await;
    let mut verified = verify(staged.path(), &ingested.sha256, ingested.bytes, &want).await?;
    let checked = format!(
        "verified: {} image, sha256 {}",
        verified.format, verified.sha256
    );
    crate::jobs::operations::step(&st.store, op_id, &checked).await;
    writer.commit(staged).await.map_err(ContentError::Commit)?;
    verified.blob_id = writer.key().to_string();
    Ok(verified)
}
