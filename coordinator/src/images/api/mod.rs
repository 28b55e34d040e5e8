//! `/v1/images`: list, show, import from a URL, create-then-upload, edit, copy to base, and
//! signed download links. Deleting and the recycle bin are in `image_delete.rs`.

pub mod agent;
pub mod delete;
pub mod downloads;
pub mod input;

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::images::api::input::{self as image_input, find, modifiable};
use crate::images::fetch::Source;
use crate::images::redact_url;
use crate::images::store::{ImageFilter, NewImageRow};
use crate::images::writer::{ContentWriter, Refused};
use crate::jobs::operations::NewOperation;
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
use plinth_common::ids::new_id;
use plinth_common::image::{ImageKind, ImageStatus, ImageType, OsType, Visibility};
use plinth_common::timefmt::{now_ms, rfc3339};
use serde::Deserialize;
use tokio_util::io::StreamReader;
use utoipa::IntoParams;

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

/// How long a download link stays valid.
pub const LINK_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    /// base or custom.
    kind: Option<String>,
    /// image or iso.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    image_type: Option<String>,
    visibility: Option<String>,
    status: Option<String>,
    os_type: Option<String>,
    tag: Option<String>,
    /// Substring of name, id or platform.
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

fn enum_param<T>(
    field: &'static str,
    value: Option<String>,
    parse: fn(&str) -> Option<T>,
    choices: String,
) -> ApiResult<Option<T>> {
    value
        .map(|v| {
            parse(&v)
                .ok_or_else(|| ApiError::field(field, format!("'{v}' is not one of {choices}")))
        })
        .transpose()
}

/// List images the caller may see, with filters.
#[utoipa::path(get, path = "/v1/images", tag = "images", params(ImageQuery), security(("bearer" = [])),
    responses((status = 200, body = ImagePage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImageQuery>,
) -> ApiResult<ApiJson<ImagePage>> {
    let per_page = q.per_page.unwrap_or(50);
    if !(1..=1000).contains(&per_page) {
        return Err(ApiError::field(
            "per_page",
            format!("must be 1-1000, got {per_page}"),
        ));
    }
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::field("page", "pages start at 1"));
    }
    let filter = ImageFilter {
        kind: enum_param("kind", q.kind, ImageKind::parse, ImageKind::choices())?,
        image_type: enum_param("type", q.image_type, ImageType::parse, ImageType::choices())?,
        visibility: enum_param(
            "visibility",
            q.visibility,
            Visibility::parse,
            Visibility::choices(),
        )?,
        status: enum_param(
            "status",
            q.status,
            ImageStatus::parse,
            ImageStatus::choices(),
        )?,
        os_type: enum_param("os_type", q.os_type, OsType::parse, OsType::choices())?,
        tag: q.tag,
        q: q.q,
        viewer_tenant: caller.tenant_id().map(str::to_string),
        limit: per_page,
        offset: u64::from(page - 1) * u64::from(per_page),
    };
    let (items, total) = st.store.list_images(&filter).await?;
    Ok(ApiJson(ImagePage { items, total }))
}

/// One image.
#[utoipa::path(get, path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Image), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Image>> {
    let rec = find(&st, &caller, &id).await?;
    if rec.image.deleted_at.is_some() {
        return Err(ApiError::not_found("image", &id));
    }
    Ok(ApiJson(rec.image))
}

/// Writes a new custom image in `importing` with the operation that will fill it.
async fn start_image(
    st: &AppState,
    caller: &Caller,
    img: &NewImage,
    url: Option<&reqwest::Url>,
    op_kind: &str,
) -> ApiResult<Image> {
    let (tenant, name, tags) = image_input::new_image(st, caller, img).await?;
    let id = new_id("img");
    let op_id = new_id("op");
    let now = now_ms();
    let sealed = url
        .map(|u| st.images.secrets.seal(u.as_str()))
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let shown = url.map(redact_url);
    let sha = img.sha256.as_ref().map(|s| s.to_lowercase());
    let row = NewImageRow {
        id: &id,
        name: &name,
        kind: ImageKind::Custom,
        image_type: img.image_type,
        iso_purpose: img.iso_purpose,
        visibility: img.visibility,
        owner_tenant_id: Some(&tenant),
        note: &img.note,
        os_type: Some(img.os_type),
        architecture: Some(img.architecture),
        platform: Some(img.platform.trim()),
        version: Some(img.version.trim()),
        target_size_gb: Some(img.target_size_gb),
        expected_sha256: sha.as_deref(),
        source_url: shown.as_deref(),
        source_url_sealed: sealed.as_deref(),
        status: ImageStatus::Importing,
        operation_id: Some(&op_id),
        exported_from: None,
        now,
    };
    let op = NewOperation {
        id: &op_id,
        kind: op_kind,
        target_id: &id,
        owner_tenant_id: Some(&tenant),
        now,
    };
    st.store.create_image(&row, &tags, Some(&op)).await?;
    st.store
        .audit(
            &caller.actor(),
            op_kind,
            &id,
            shown.as_deref().unwrap_or("upload"),
        )
        .await?;
    let rec = image_input::reload(st, &id).await?;
    Ok(rec.image)
}

/// Import a custom image from an http, https or ftp URL. Returns at once; follow
/// `operation_id` at `/v1/operations/{id}`.
#[utoipa::path(post, path = "/v1/images/import", tag = "images", security(("bearer" = [])), request_body = NewImage,
    responses((status = 202, body = Image), (status = 400, body = ErrorBody)))]
pub async fn import(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewImage>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let url = req
        .url
        .as_deref()
        .ok_or_else(|| ApiError::field("url", "an import needs the URL to fetch from"))?;
    let url = image_input::import_url(url)?;
    let image = start_image(&st, &caller, &req, Some(&url), crate::images::IMPORT).await?;
    let op_id = image.operation_id.clone().unwrap_or_default();
    st.jobs.spawn(
        "image import",
        crate::images::import::run(st.clone(), image.id.clone(), op_id),
    );
    Ok((StatusCode::ACCEPTED, ApiJson(image)))
}

/// Declare a custom image whose content comes by upload (`PUT /v1/images/{id}/content`).
#[utoipa::path(post, path = "/v1/images", tag = "images", security(("bearer" = [])), request_body = NewImage,
    responses((status = 201, body = Image), (status = 400, body = ErrorBody)))]
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
    let image = start_image(&st, &caller, &req, None, crate::images::UPLOAD).await?;
    Ok((StatusCode::CREATED, ApiJson(image)))
}

/// Upload an image's content as the request body (streamed; any size up to the target).
#[utoipa::path(put, path = "/v1/images/{id}/content", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Image),
        (status = 409, description = "not awaiting content, or another upload to it is running (upload_in_progress)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<Image>> {
    let rec = find(&st, &caller, &id).await?;
    if !modifiable(&caller, &rec.image) {
        return Err(ApiError::Forbidden(format!(
            "image {id} is not yours to upload to"
        )));
    }
    let op = match &rec.image.operation_id {
        Some(op_id) => st.store.get_operation(op_id, None).await?,
        None => None,
    };
    let op = op.filter(|o| {
        o.kind == crate::images::UPLOAD && o.status == plinth_common::api::OperationStatus::Running
    });
    let (ImageStatus::Importing, Some(op)) = (rec.image.status, op) else {
        return Err(ApiError::Conflict {
            code: "image_not_awaiting_upload",
            message: format!(
                "image {id} is {}; content can be uploaded once, to an image made by POST /v1/images",
                rec.image.status
            ),
        });
    };
    Ok(ApiJson(
        ingest_body(
            &st,
            rec,
            &op.id,
            &headers,
            body,
            "image_not_awaiting_upload",
        )
        .await?,
    ))
}

/// Streams a request body into the image `rec` under operation `op_id`, verifies it, and ends
/// the operation; answers the image as it is then. Uploads and exports both come this way.
/// One at a time per image: a second gets `409 upload_in_progress` before its body is read;
/// `not_awaiting` is the code when the image took its content meanwhile.
pub async fn ingest_body(
    st: &AppState,
    rec: crate::images::store::ImageRecord,
    op_id: &str,
    headers: &HeaderMap,
    body: Body,
    not_awaiting: &'static str,
) -> ApiResult<Image> {
    let id = rec.image.id.clone();
    let writer = ContentWriter::claim(&st.store, &st.images.blobs, &id)
        .await
        .map_err(|refused| match refused {
            Refused::Busy => ApiError::Conflict {
                code: "upload_in_progress",
                message: format!(
                    "image {id} is already receiving its content from another upload; \
                     one upload per image at a time"
                ),
            },
            Refused::NotAwaiting(Some(status)) => ApiError::Conflict {
                code: not_awaiting,
                message: format!("image {id} is {status} and takes no content now"),
            },
            Refused::NotAwaiting(None) => ApiError::not_found("image", &id),
            Refused::Store(err) => err.into(),
        })?;
    let total = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let source = Source {
        total_bytes: total,
        reader: Box::pin(StreamReader::new(stream)),
    };
    // In its own task: if the client goes away mid-upload, this handler is dropped, but the
    // upload still ends — the body stream fails — and is recorded as failed, which releases
    // the writer mark (a panic releases it too, from the writer's drop).
    let work = {
        let (st, id, op_id) = (st.clone(), id.clone(), op_id.to_string());
        st.jobs.clone().spawn("image upload", async move {
            let outcome = crate::images::import::fill(&st, &rec, &op_id, source, &writer).await;
            crate::images::import::finish(&st, &id, &op_id, outcome, writer).await;
        })
    };
    work.await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(image_input::reload(st, &id).await?.image)
}

/// Change name, note, tags or visibility (in any status).
#[utoipa::path(patch, path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])), request_body = UpdateImage,
    responses((status = 200, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateImage>,
) -> ApiResult<ApiJson<Image>> {
    for (field, present) in [
        ("source_url", req.source_url.is_some()),
        ("format", req.format.is_some()),
        ("virtualization", req.virtualization.is_some()),
    ] {
        if present {
            return Err(ApiError::field(field, "cannot be changed"));
        }
    }
    let rec = find(&st, &caller, &id).await?;
    if !modifiable(&caller, &rec.image) {
        return Err(ApiError::Forbidden(format!(
            "image {id} is not yours to edit"
        )));
    }
    let name = req
        .name
        .as_deref()
        .map(|n| image_input::name("name", n))
        .transpose()?;
    if let Some(note) = &req.note {
        image_input::note(note)?;
    }
    let tags = req.tags.as_deref().map(image_input::tags).transpose()?;
    if let Some(v) = req.visibility {
        image_input::visibility(&caller, v)?;
    }
    st.store
        .update_image(
            &id,
            name.as_deref(),
            req.note.as_deref(),
            req.visibility,
            tags.as_deref(),
            now_ms(),
        )
        .await?;
    st.store
        .audit(&caller.actor(), "edit image", &id, "")
        .await?;
    let rec = image_input::reload(&st, &id).await?;
    Ok(ApiJson(rec.image))
}

/// Copy an available custom image into a new base image (admins).
#[utoipa::path(post, path = "/v1/images/{id}/copy-to-base", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])), request_body = CopyToBase,
    responses((status = 202, body = Image), (status = 409, body = ErrorBody)))]
pub async fn copy_to_base(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CopyToBase>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let name = image_input::name("name", &req.name)?;
    let rec = find(&st, &admin.0, &id).await?;
    let blob = match (
        &rec.image.kind,
        rec.image.status,
        &rec.blob_id,
        &rec.image.deleted_at,
    ) {
        (ImageKind::Custom, ImageStatus::Available, Some(blob), None) => blob.clone(),
        _ => {
            return Err(ApiError::Conflict {
                code: "image_not_copyable",
                message: format!(
                    "image {id} is a {} image in status {}; only available custom images are copied",
                    rec.image.kind, rec.image.status
                ),
            });
        }
    };
    let new_image = new_id("img");
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: crate::images::COPY,
        target_id: &new_image,
        owner_tenant_id: None,
        now: now_ms(),
    };
    st.store
        .create_base_copy(&rec.image, &new_image, &name, &op)
        .await?;
    st.store
        .audit(
            &admin.0.actor(),
            "copy to base",
            &new_image,
            &format!("from {id}"),
        )
        .await?;
    let created = image_input::reload(&st, &new_image).await?;
    st.jobs.spawn(
        "image copy",
        crate::images::copy::run(st.clone(), blob, new_image, op_id),
    );
    Ok((StatusCode::ACCEPTED, ApiJson(created.image)))
}

/// A signed download link valid for 24 hours; the link itself needs no token.
#[utoipa::path(post, path = "/v1/images/{id}/download-link", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = DownloadLink), (status = 409, body = ErrorBody)))]
pub async fn download_link(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<ApiJson<DownloadLink>> {
    let rec = find(&st, &caller, &id).await?;
    if rec.image.status != ImageStatus::Available
        || rec.blob_id.is_none()
        || rec.image.deleted_at.is_some()
    {
        return Err(ApiError::Conflict {
            code: "image_not_available",
            message: format!(
                "image {id} is {}; only available images can be downloaded",
                rec.image.status
            ),
        });
    }
    // HTTP/1.1 names the host in Host; HTTP/2 in the request's authority.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::Malformed("the request has no Host header to build the link from".into())
        })?;
    let expires = now_ms() / 1000 + LINK_LIFETIME_SECS;
    let signature = st
        .images
        .secrets
        .sign_link(&crate::images::api::downloads::link_message(&id, expires));
    st.store
        .audit(&caller.actor(), "create download link", &id, "")
        .await?;
    Ok(ApiJson(DownloadLink {
        url: format!(
            "https://{host}/v1/image-downloads/{id}?expires={expires}&signature={signature}"
        ),
        expires_at: rfc3339(expires * 1000),
    }))
}
