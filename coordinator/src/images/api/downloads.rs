//! `GET /v1/image-downloads/{id}`: the signed link itself is the credential. A changed id or
//! expiry breaks the signature (403); a valid link past its expiry is 410. `Range` requests get
//! 206 with the part asked for, so interrupted downloads resume (`curl -C -`).

use crate::http::error::{ApiPath, ApiQuery, ApiResult};
use crate::images::transfer::{self, Download};

/// What a link signs (tests sign their own links with it).
pub use crate::images::transfer::link_message;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_common::api::ErrorBody;
use plinth_common::ids::ImageId;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/image-downloads/{id}", get(download))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Unix seconds.
    expires: Option<i64>,
    signature: Option<String>,
}

/// Download an image through a signed link.
#[utoipa::path(get, path = "/v1/image-downloads/{id}", tag = "images", params(("id" = String, Path, description = "image id"), LinkQuery),
    responses((status = 200, description = "the image"), (status = 206, description = "the requested range"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 410, body = ErrorBody),
        (status = 416, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<ImageId>,
    ApiQuery(q): ApiQuery<LinkQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let range = headers.get(header::RANGE).and_then(|h| h.to_str().ok());
    let download =
        transfer::open_download(&st, &id, q.expires, q.signature.as_deref(), range).await?;
    Ok(respond(download))
}

/// The response for an opened download: 200 or 206, with the headers a resuming client needs.
fn respond(d: Download) -> Response {
    let status = if d.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = Body::from_stream(ReaderStream::with_capacity(
        d.file.take(d.count),
        256 * 1024,
    ));
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.count));
    let disposition = format!("attachment; filename=\"{}\"", d.filename);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if d.partial
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            d.start,
            d.start + d.count - 1,
            d.len
        ))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}
