//! Deleting images and the recycle bin (`images::removal` has the rules): delete one, delete
//! several with an outcome each, list the bin, restore, destroy.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::images::removal;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use plinth_common::api::{BatchDelete, BatchItem, ErrorBody, Image, ImagePage};
use plinth_common::ids::ImageId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/images/{id}", delete(delete_image))
        .route("/v1/images/batch-delete", post(batch_delete))
        .route("/v1/recycle-bin", get(recycle_bin))
        .route("/v1/recycle-bin/{id}/restore", post(restore))
        .route("/v1/recycle-bin/{id}", delete(destroy))
}

/// Delete an image (a custom one goes to its tenant's recycle bin).
#[utoipa::path(delete, path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn delete_image(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
) -> ApiResult<StatusCode> {
    removal::delete(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete several images; each one's outcome is reported.
#[utoipa::path(post, operation_id = "batch_delete_images", path = "/v1/images/batch-delete", tag = "images", security(("bearer" = [])), request_body = BatchDelete,
    responses((status = 200, body = Vec<BatchItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn batch_delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchDelete>,
) -> ApiResult<ApiJson<Vec<BatchItem>>> {
    if req.ids.is_empty() || req.ids.len() > 100 {
        return Err(ApiError::field("ids", "must list 1-100 image ids"));
    }
    Ok(ApiJson(removal::batch_delete(&st, &caller, req.ids).await))
}

/// Deleted custom images: a tenant's own, or all for admins; the last deleted first.
#[utoipa::path(get, path = "/v1/recycle-bin", tag = "images", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = ImagePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn recycle_bin(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<ImagePage>> {
    let page = q.page("recycle-bin")?;
    Ok(ApiJson(removal::recycle_bin(&st, &caller, &page).await?))
}

/// Restore an image from the recycle bin to the status it had.
#[utoipa::path(post, operation_id = "restore_image", path = "/v1/recycle-bin/{id}/restore", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn restore(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
) -> ApiResult<ApiJson<Image>> {
    Ok(ApiJson(removal::restore(&st, &caller, &id).await?))
}

/// Destroy an image in the recycle bin: its content is removed for good.
#[utoipa::path(delete, path = "/v1/recycle-bin/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn destroy(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ImageId>,
) -> ApiResult<StatusCode> {
    removal::destroy(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
