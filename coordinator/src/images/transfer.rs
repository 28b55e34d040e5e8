//! Content in and out: a tenant's upload, an agent's export upload, signed download links and
//! the downloads through them, and the content agents fetch for the instances they run.

use crate::http::auth::Caller;
use crate::images::error::ImageError;
use crate::images::fetch::Source;
use crate::images::store::ImageRecord;
use crate::images::writer::{ContentWriter, Refused};
use crate::images::{UPLOAD, find, modifiable, reload};
use crate::state::AppState;
use plinth_common::api::{DownloadLink, Image, OperationStatus};
use plinth_common::image::ImageStatus;
use plinth_common::timefmt::{now_ms, rfc3339};
use tokio::fs::File;
use tokio::io::AsyncSeekExt;

/// How long a download link stays valid.
pub const LINK_LIFETIME_SECS: i64 = 24 * 3600;

const NOT_AWAITING_UPLOAD: &str = "image_not_awaiting_upload";
const NOT_AWAITING_EXPORT: &str = "image_not_awaiting_export";

/// Receives an upload into an image made by `POST /v1/images`, verifies it, and answers the
/// image as it is then.
pub async fn upload(
    st: &AppState,
    caller: &Caller,
    id: &str,
    source: Source,
) -> Result<Image, ImageError> {
    let rec = find(st, caller, id).await?;
    if !modifiable(caller, &rec.image) {
        return Err(ImageError::Forbidden(format!(
            "image {id} is not yours to upload to"
        )));
    }
    let Some(op_id) = running_op(st, &rec, UPLOAD).await? else {
        return Err(ImageError::NotAwaiting {
            code: NOT_AWAITING_UPLOAD,
            message: format!(
                "image {id} is {}; content can be uploaded once, to an image made by POST /v1/images",
                rec.image.status
            ),
        });
    };
    ingest(st, rec, &op_id, source, NOT_AWAITING_UPLOAD).await
}

/// Receives the flattened disk of the instance an image is exported from, sent by the agent of
/// that instance's host; it is verified like any upload.
pub async fn receive_export(
    st: &AppState,
    host_id: &str,
    id: &str,
    source: Source,
) -> Result<Image, ImageError> {
    let source_instance = st
        .store
        .exported_from(id)
        .await?
        .ok_or_else(|| ImageError::not_found("export_image", id))?;
    let host = st.store.instance_host(&source_instance).await?;
    if host.as_deref() != Some(host_id) {
        return Err(ImageError::Forbidden(format!(
            "image {id} is exported from an instance that is not on host {host_id}"
        )));
    }
    let rec = reload(st, id).await?;
    let export = plinth_common::api::operation_kinds::IMAGE_EXPORT;
    let Some(op_id) = running_op(st, &rec, export).await? else {
        return Err(ImageError::NotAwaiting {
            code: NOT_AWAITING_EXPORT,
            message: format!("image {id} is {} and takes no export", rec.image.status),
        });
    };
    ingest(st, rec, &op_id, source, NOT_AWAITING_EXPORT).await
}

/// The image's operation, if it is a running one of `kind`.
async fn running_op(
    st: &AppState,
    rec: &ImageRecord,
    kind: &str,
) -> Result<Option<String>, ImageError> {
    let op = match &rec.image.operation_id {
        Some(op_id) => st.store.get_operation(op_id, None).await?,
        None => None,
    };
    let running = op.filter(|o| o.kind == kind && o.status == OperationStatus::Running);
    // An upload fills an image that is still importing; an export one still creating.
    let awaiting = rec.image.status.takes_content();
    Ok(running.filter(|_| awaiting).map(|o| o.id))
}

/// Streams `source` into image `rec` under operation `op_id`, verifies it, and ends the
/// operation; answers the image as it is then. One at a time per image: a second gets
/// `upload_in_progress` before its body is read; `not_awaiting` is the code when the image took
/// its content meanwhile.
async fn ingest(
    st: &AppState,
    rec: ImageRecord,
    op_id: &str,
    source: Source,
    not_awaiting: &'static str,
) -> Result<Image, ImageError> {
    let id = rec.image.id.clone();
    let writer = ContentWriter::claim(&st.store, &st.images.blobs, &id)
        .await
        .map_err(|refused| match refused {
            Refused::Busy => ImageError::UploadInProgress { id: id.clone() },
            Refused::NotAwaiting(Some(status)) => ImageError::NotAwaiting {
                code: not_awaiting,
                message: format!("image {id} is {status} and takes no content now"),
            },
            Refused::NotAwaiting(None) => ImageError::not_found("image", &id),
            Refused::Store(err) => err.into(),
        })?;
    // This coordinator receives it: while it lives, the lease's holder leaves it alone.
    st.store
        .set_operation_runner(op_id, &st.settings.coordinator)
        .await?;
    // In its own task: if the client goes away mid-upload, the handler is dropped, but the
    // upload still ends — the body stream fails — and is recorded as failed, which releases
    // the writer mark (a panic releases it too, from the writer's drop).
    let work = {
        let (st, id, op_id) = (st.clone(), id.clone(), op_id.to_string());
        st.jobs.clone().spawn("image upload", async move {
            let outcome = crate::images::import::fill(&st, &rec, &op_id, source, &writer).await;
            crate::images::import::finish(&st, &id, &op_id, outcome, writer).await;
        })
    };
    work.await.map_err(|e| ImageError::Internal(e.into()))?;
    Ok(reload(st, &id).await?.image)
}

/// What a download link signs.
pub fn link_message(image_id: &str, expires: i64) -> String {
    format!("image-download\n{image_id}\n{expires}")
}

/// A signed link to image `id`'s content on `host` (the name the caller reached the API by),
/// valid for 24 hours; the link itself needs no token.
pub async fn download_link(
    st: &AppState,
    caller: &Caller,
    id: &str,
    host: Option<String>,
) -> Result<DownloadLink, ImageError> {
    let rec = find(st, caller, id).await?;
    if rec.image.status != ImageStatus::Available
        || rec.blob_id.is_none()
        || rec.image.deleted_at.is_some()
    {
        return Err(ImageError::NotAvailable {
            id: id.to_string(),
            status: rec.image.status,
        });
    }
    let host = host
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .ok_or(ImageError::NoHost)?;
    let expires = now_ms() / 1000 + LINK_LIFETIME_SECS;
    let signature = st.images.secrets.sign_link(&link_message(id, expires));
    st.store
        .audit(&caller.actor(), "create download link", id, "")
        .await?;
    Ok(DownloadLink {
        url: format!(
            "https://{host}/v1/image-downloads/{id}?expires={expires}&signature={signature}"
        ),
        expires_at: rfc3339(expires * 1000),
    })
}

/// An opened download: the file positioned at `start`, `count` bytes to send of `len`.
#[derive(Debug)]
pub struct Download {
    pub file: File,
    pub start: u64,
    pub count: u64,
    pub len: u64,
    /// Whether a range was asked for (a 206).
    pub partial: bool,
    /// `name.format`, with what is not safe in a header replaced.
    pub filename: String,
}

/// Opens image `id` for a signed link's download: the signature and expiry are checked, then
/// the `range` (a `Range` header's value) within the content.
pub async fn open_download(
    st: &AppState,
    id: &str,
    expires: Option<i64>,
    signature: Option<&str>,
    range: Option<&str>,
) -> Result<Download, ImageError> {
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(ImageError::Forbidden(
            "the link has no expiry or signature".into(),
        ));
    };
    if !st
        .images
        .secrets
        .verify_link(&link_message(id, expires), signature)
    {
        return Err(ImageError::Forbidden(
            "the link's signature does not match: it was changed or is not plinth's".into(),
        ));
    }
    if expires <= now_ms() / 1000 {
        return Err(ImageError::LinkExpired);
    }
    let rec = reload(st, id).await?;
    let blob = match (&rec.blob_id, rec.image.status, &rec.image.deleted_at) {
        (Some(blob), ImageStatus::Available, None) => blob.clone(),
        _ => return Err(ImageError::not_found("image", id)),
    };
    let (mut file, len) = st
        .images
        .blobs
        .open(&blob)
        .await
        .map_err(|e| ImageError::Internal(e.into()))?;
    let range = parse_range(range, len).map_err(|()| ImageError::Range { len })?;
    let (partial, start, count) = match range {
        Some((start, end)) => (true, start, end - start + 1),
        None => (false, 0, len),
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ImageError::Internal(e.into()))?;
    let extension = rec.image.format.as_deref().unwrap_or("img");
    let name: String = rec
        .image
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Download {
        file,
        start,
        count,
        len,
        partial,
        filename: format!("{name}.{extension}"),
    })
}

/// The byte range a `Range` header asks for, within `len`: `Ok(None)` for the whole file.
fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = value else {
        return Ok(None);
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(()); // several ranges: not served
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (s, e) => {
            let (s, e): (u64, u64) = (s.parse().map_err(|_| ())?, e.parse().map_err(|_| ())?);
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if len == 0 || start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// The content of image `id` for the agent of `host_id`, if an instance placed on that host
/// (or migrating to it) boots from it: the file and its length.
pub async fn agent_content(
    st: &AppState,
    host_id: &str,
    id: &str,
) -> Result<(File, u64), ImageError> {
    if !st.store.host_uses_image(host_id, id).await? {
        return Err(ImageError::Forbidden(format!(
            "no instance on host {host_id} boots from image {id}"
        )));
    }
    let rec = reload(st, id).await?;
    let blob = match (&rec.blob_id, rec.image.status) {
        (Some(blob), ImageStatus::Available) => blob.clone(),
        _ => return Err(ImageError::not_found("image", id)),
    };
    st.images
        .blobs
        .open(&blob)
        .await
        .map_err(|e| ImageError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(Some(s), 100);
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(r("bytes=0-9"), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-"), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10"), Ok(Some((90, 99))));
        assert_eq!(r("bytes=50-500"), Ok(Some((50, 99))));
        for bad in [
            "bytes=100-",
            "bytes=10-5",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert_eq!(r(bad), Err(()), "{bad}");
        }
    }
}
