//! `/v1/images`: list, show, import from a URL, create-then-upload, edit, copy to base, and
//! signed download links. Deleting and the recycle bin are in `delete.rs`, the downloads
//! themselves in `downloads.rs`, the agents' side in `agent.rs`. Each handler parses, calls one
//! operation of `images`, and maps its answer.

pub mod agent;
pub mod delete;
pub mod downloads;
pub mod input;

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::images::api::input::ImageQuery;
use crate::images::fetch::Source;
use crate::images::{create, transfer};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::routing::{get, post, put};
use futures_util::TryStreamExt;
use plinth_common::api::{
    CopyToBase, DownloadLink, ErrorBody, Image, ImagePage, NewImage, UpdateImage,
};
use plinth_common::ids::ImageId;
use tokio_util::io::StreamReader;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/images", get(list).post(create))
        .route("/v1/images/import", post(import))
        .route("/v1/images/{id}", get(show).patch(update))
        .route(
            "/v1/images/{id}/content",
            put(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/images/{id}/copy-to-base", post(copy_to_base))
        .route("/v1/images/{id}/download-link", post(download_link))
}

/// A streamed request body as an image source, with its declared length.
pub fn body_source(headers: &HeaderMap, body: Body) -> Source {
    let total = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    Source {
        total_bytes: total,
        reader: Box::pin(StreamReader::new(stream)),
    }
}

/// List images the caller may see, with filters.
#[utoipa::path(get, operation_id = "list_images", path = "/v1/images", tag = "images", params(ImageQuery), security(("bearer" = [])),
    responses((status = 200, body = ImagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImageQuery>,
) -> ApiResult<ApiJson<ImagePage>> {
    let (filter, page) = input::filter(q)?;
    Ok(ApiJson(
        crate::images::list(&st, &caller, filter, &page).await?,
    ))
}

/// One image.
#[utoipa::path(get, operation_id = "show_image", path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
) -> ApiResult<ApiJson<Image>> {
    Ok(ApiJson(crate::images::show(&st, &caller, &id).await?))
}

/// Import a custom image from an http, https or ftp URL. Returns at once; follow
/// `operation_id` at `/v1/operations/{id}`.
#[utoipa::path(post, operation_id = "import_image", path = "/v1/images/import", tag = "images", security(("bearer" = [])), request_body = NewImage,
    responses((status = 202, body = Image), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn import(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewImage>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let url = req
        .url
        .as_deref()
        .ok_or_else(|| ApiError::field("url", "an import needs the URL to fetch from"))?;
    let url = input::import_url(url)?;
    let checked = input::new_image(&st, &caller, &req).await?;
    let image = create::import(&st, &caller, &req, checked, url).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(image)))
}

/// Declare a custom image whose content comes by upload (`PUT /v1/images/{id}/content`).
#[utoipa::path(post, operation_id = "create_image", path = "/v1/images", tag = "images", security(("bearer" = [])), request_body = NewImage,
    responses((status = 201, body = Image), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewImage>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    if req.url.is_some() {
        return Err(ApiError::field(
            "url",
            "an upload has no URL; use POST /v1/images/import to fetch one",
        ));
    }
    let checked = input::new_image(&st, &caller, &req).await?;
    let image = create::declare_upload(&st, &caller, &req, checked).await?;
    Ok((StatusCode::CREATED, ApiJson(image)))
}

/// Upload an image's content as the request body (streamed; any size up to the target).
#[utoipa::path(put, path = "/v1/images/{id}/content", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Image), (status = 400, body = ErrorBody),
        (status = 409, description = "not awaiting content, or another upload to it is running (upload_in_progress)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn upload(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<Image>> {
    let source = body_source(&headers, body);
    Ok(ApiJson(transfer::upload(&st, &caller, &id, source).await?))
}

/// Change name, note, tags or visibility (in any status).
#[utoipa::path(patch, operation_id = "update_image", path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])), request_body = UpdateImage,
    responses((status = 200, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
    ApiJson(req): ApiJson<UpdateImage>,
) -> ApiResult<ApiJson<Image>> {
    let changes = input::changes(&caller, req)?;
    Ok(ApiJson(
        crate::images::update(&st, &caller, &id, changes).await?,
    ))
}

/// Copy an available custom image into a new base image (admins).
#[utoipa::path(post, path = "/v1/images/{id}/copy-to-base", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])), request_body = CopyToBase,
    responses((status = 202, body = Image), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn copy_to_base(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<ImageId>,
    ApiJson(req): ApiJson<CopyToBase>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let name = input::name("name", &req.name)?;
    let image = create::copy_to_base(&st, &admin.0, &id, name).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(image)))
}

/// A signed download link valid for 24 hours; the link itself needs no token.
#[utoipa::path(post, path = "/v1/images/{id}/download-link", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = DownloadLink), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download_link(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<ApiJson<DownloadLink>> {
    // HTTP/1.1 names the host in Host; HTTP/2 in the request's authority.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    let link = transfer::download_link(&st, &caller, &id, host).await?;
    Ok(ApiJson(link))
}
