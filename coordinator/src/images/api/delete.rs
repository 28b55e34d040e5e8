//! Deleting images (SPEC §5): base images only when available; custom images when available
//! or import_failed, into their tenant's recycle bin; never while an instance uses them.
//! Batch delete reports per image. The recycle bin restores or destroys.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::images::api::input::{self as image_input, find, modifiable};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use plinth_common::api::{BatchDelete, BatchItem, ErrorBody, Image};
use plinth_common::image::ImageKind;
use plinth_common::timefmt::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/images/{id}", delete(delete_image))
        .route("/v1/images/batch-delete", post(batch_delete))
        .route("/v1/recycle-bin", get(recycle_bin))
        .route("/v1/recycle-bin/{id}/restore", post(restore))
        .route("/v1/recycle-bin/{id}", delete(destroy))
}

async fn delete_one(st: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let rec = find(st, caller, id).await?;
    if rec.image.deleted_at.is_some() {
        return Err(ApiError::not_found("image", id));
    }
    if !modifiable(caller, &rec.image) {
        return Err(ApiError::Forbidden(format!(
            "image {id} is not yours to delete"
        )));
    }
    let kind = rec.image.kind;
    if st.store.image_in_use(id).await? {
        return Err(ApiError::Conflict {
            code: "image_in_use",
            message: format!("image {id} is used by instances; delete them first"),
        });
    }
    if !rec.image.status.deletable(kind) || !st.store.begin_delete_image(id, kind, now_ms()).await?
    {
        let now = st
            .store
            .image(id)
            .await?
            .map(|r| r.image.status)
            .unwrap_or(rec.image.status);
        let allowed = match kind {
            ImageKind::Base => "available",
            ImageKind::Custom => "available or import_failed",
        };
        return Err(ApiError::Conflict {
            code: "image_not_deletable",
            message: format!("image {id} is {now}; a {kind} image can be deleted when {allowed}"),
        });
    }
    if kind == ImageKind::Base {
        purge(st, &rec).await?;
    }
    st.store
        .audit(&caller.actor(), "delete image", id, "")
        .await?;
    Ok(())
}

/// Removes a `deleting` image for good: its content, then its row.
async fn purge(st: &AppState, rec: &crate::images::store::ImageRecord) -> ApiResult<()> {
    if let Some(blob) = &rec.blob_id {
        st.images
            .blobs
            .delete(blob)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    st.store.remove_image(&rec.image.id).await?;
    Ok(())
}

/// Delete an image (a custom one goes to its tenant's recycle bin).
#[utoipa::path(delete, path = "/v1/images/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_image(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    delete_one(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete several images; each one's outcome is reported.
#[utoipa::path(post, path = "/v1/images/batch-delete", tag = "images", security(("bearer" = [])), request_body = BatchDelete,
    responses((status = 200, body = Vec<BatchItem>), (status = 400, body = ErrorBody)))]
pub async fn batch_delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchDelete>,
) -> ApiResult<ApiJson<Vec<BatchItem>>> {
    if req.ids.is_empty() || req.ids.len() > 100 {
        return Err(ApiError::field("ids", "must list 1-100 image ids"));
    }
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let result = delete_one(&st, &caller, &id).await;
        out.push(BatchItem {
            deleted: result.is_ok(),
            error: result.err().map(|e| e.detail().1),
            id,
        });
    }
    Ok(ApiJson(out))
}

/// Deleted custom images: a tenant's own, or all for admins.
#[utoipa::path(get, path = "/v1/recycle-bin", tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Vec<Image>)))]
pub async fn recycle_bin(
    State(st): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiJson<Vec<Image>>> {
    Ok(ApiJson(st.store.recycle_bin(caller.tenant_id()).await?))
}

async fn binned(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<crate::images::store::ImageRecord> {
    let rec = find(st, caller, id).await?;
    if rec.image.deleted_at.is_none() || !modifiable(caller, &rec.image) {
        return Err(ApiError::not_found_as(
            "recycle_bin_entry",
            "recycle-bin entry",
            id,
        ));
    }
    Ok(rec)
}

/// Restore an image from the recycle bin to the status it had.
#[utoipa::path(post, path = "/v1/recycle-bin/{id}/restore", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Image), (status = 404, body = ErrorBody)))]
pub async fn restore(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Image>> {
    binned(&st, &caller, &id).await?;
    if !st.store.restore_image(&id, now_ms()).await? {
        return Err(ApiError::not_found_as(
            "recycle_bin_entry",
            "recycle-bin entry",
            &id,
        ));
    }
    st.store
        .audit(&caller.actor(), "restore image", &id, "")
        .await?;
    let rec = image_input::reload(&st, &id).await?;
    Ok(ApiJson(rec.image))
}

/// Destroy an image in the recycle bin: its content is removed for good.
#[utoipa::path(delete, path = "/v1/recycle-bin/{id}", params(("id" = String, Path, description = "image id")), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn destroy(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let rec = binned(&st, &caller, &id).await?;
    purge(&st, &rec).await?;
    st.store
        .audit(&caller.actor(), "destroy image", &id, "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
