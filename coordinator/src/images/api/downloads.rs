//! `GET /v1/image-downloads/{id}`: the signed link itself is the credential. A changed id or
//! expiry breaks the signature (403); a valid link past its expiry is 410. `Range` requests get
//! 206 with the part asked for, so interrupted downloads resume (`curl -C -`).

use crate::http::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_common::api::ErrorBody;
use plinth_common::image::ImageStatus;
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/image-downloads/{id}", get(download))
}

/// What a link signs.
pub fn link_message(image_id: &str, expires: i64) -> String {
    format!("image-download\n{image_id}\n{expires}")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Unix seconds.
    expires: Option<i64>,
    signature: Option<String>,
}

/// The byte range a `Range` header asks for, within `len`: `Ok(None)` for the whole file.
fn parse_range(header: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
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

/// Download an image through a signed link.
#[utoipa::path(get, path = "/v1/image-downloads/{id}", tag = "images", params(("id" = String, Path, description = "image id"), LinkQuery),
    responses((status = 200, description = "the image"), (status = 206, description = "the requested range"),
        (status = 403, body = ErrorBody), (status = 410, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn download(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LinkQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (Some(expires), Some(signature)) = (q.expires, q.signature) else {
        return Err(ApiError::Forbidden(
            "the link has no expiry or signature".into(),
        ));
    };
    if !st
        .images
        .secrets
        .verify_link(&link_message(&id, expires), &signature)
    {
        return Err(ApiError::Forbidden(
            "the link's signature does not match: it was changed or is not plinth's".into(),
        ));
    }
    if expires <= now_ms() / 1000 {
        return Err(ApiError::Gone {
            code: "link_expired",
            message: "the download link expired; create a new one".into(),
        });
    }
    let rec = st
        .store
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("image", &id))?;
    let blob = match (&rec.blob_id, rec.image.status, &rec.image.deleted_at) {
        (Some(blob), ImageStatus::Available, None) => blob.clone(),
        _ => return Err(ApiError::not_found("image", &id)),
    };
    let (mut file, len) = st
        .images
        .blobs
        .open(&blob)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let range = parse_range(headers.get(header::RANGE), len).map_err(|()| {
        ApiError::RangeNotSatisfiable(format!(
            "the image has {len} bytes; ask for one range within them"
        ))
    })?;
    let extension = rec.image.format.as_deref().unwrap_or("img");
    let filename: String = rec
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
    let disposition = format!("attachment; filename=\"{filename}.{extension}\"");
    let (status, start, count) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, len),
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), 256 * 1024));
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(Some(&HeaderValue::from_str(s).expect("ascii")), 100);
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
