//! Image content for agents, over mTLS: an agent fetches the images its instances boot from
//! into its cache, and uploads the flattened disk of an instance it exports.

use crate::http::auth::AgentCaller;
use crate::http::error::{ApiError, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_common::api::OperationStatus;
use plinth_common::image::ImageStatus;
use tokio_util::io::ReaderStream;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        plinth_common::api::agent_routes::coordinator::IMAGE_CONTENT,
        get(fetch)
            .put(upload_export)
            .layer(DefaultBodyLimit::disable()),
    )
}

/// The content of an image an instance on the agent's host (or migrating to it) boots from.
#[utoipa::path(get, path = "/v1/agent/images/{id}/content", params(("id" = String, Path, description = "image id")), tag = "agents",
    responses((status = 200, description = "the image"), (status = 403, body = plinth_common::api::ErrorBody),
        (status = 404, body = plinth_common::api::ErrorBody)))]
pub async fn fetch(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    if !st.store.host_uses_image(&agent.host_id, &id).await? {
        return Err(ApiError::Forbidden(format!(
            "no instance on host {} boots from image {id}",
            agent.host_id
        )));
    }
    let rec = st
        .store
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("image", &id))?;
    let blob = match (&rec.blob_id, rec.image.status) {
        (Some(blob), ImageStatus::Available) => blob.clone(),
        _ => return Err(ApiError::not_found("image", &id)),
    };
    let (file, len) = st
        .images
        .blobs
        .open(&blob)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let body = Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_TYPE, "application/octet-stream".into()),
        ],
        body,
    )
        .into_response())
}

/// The flattened disk of the instance an image is exported from, sent by that instance's
/// host's agent; it is verified like any upload and the image becomes available.
#[utoipa::path(put, path = "/v1/agent/images/{id}/content", params(("id" = String, Path, description = "image id")), tag = "agents",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = plinth_common::api::Image), (status = 403, body = plinth_common::api::ErrorBody),
        (status = 409, body = plinth_common::api::ErrorBody), (status = 422, body = plinth_common::api::ErrorBody)))]
pub async fn upload_export(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<plinth_common::api::Image>> {
    let source_instance = st
        .store
        .exported_from(&id)
        .await?
        .ok_or_else(|| ApiError::not_found_as("export_image", "export image", &id))?;
    let host = st.store.instance_host(&source_instance).await?;
    if host.as_deref() != Some(agent.host_id.as_str()) {
        return Err(ApiError::Forbidden(format!(
            "image {id} is exported from an instance that is not on host {}",
            agent.host_id
        )));
    }
    let rec = st
        .store
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("image", &id))?;
    let op = match &rec.image.operation_id {
        Some(op_id) => st.store.get_operation(op_id, None).await?,
        None => None,
    };
    let Some(op) = op.filter(|o| {
        o.kind == crate::instances::jobs::EXPORT && o.status == OperationStatus::Running
    }) else {
        return Err(ApiError::Conflict {
            code: "image_not_awaiting_export",
            message: format!("image {id} is {} and takes no export", rec.image.status),
        });
    };
    let image = crate::images::api::ingest_body(
        &st,
        rec,
        &op.id,
        &headers,
        body,
        "image_not_awaiting_export",
    )
    .await?;
    Ok(axum::Json(image))
}
