//! Image content for agents, over mTLS: an agent fetches the images its instances boot from
//! into its cache, and uploads the flattened disk of an instance it exports.

use crate::http::auth::AgentCaller;
use crate::http::error::{ApiPath, ApiResult};
use crate::images::api::body_source;
use crate::images::transfer;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_common::ids::ImageId;
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
    responses((status = 200, description = "the image"), (status = 400, body = plinth_common::api::ErrorBody),
        (status = 401, body = plinth_common::api::ErrorBody), (status = 403, body = plinth_common::api::ErrorBody), (status = 404, body = plinth_common::api::ErrorBody)))]
pub async fn fetch(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<ImageId>,
) -> ApiResult<Response> {
    let (file, len) = transfer::agent_content(&st, &agent.host_id, &id).await?;
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
    responses((status = 200, body = plinth_common::api::Image), (status = 400, body = plinth_common::api::ErrorBody),
        (status = 401, body = plinth_common::api::ErrorBody), (status = 403, body = plinth_common::api::ErrorBody),
        (status = 404, body = plinth_common::api::ErrorBody), (status = 409, body = plinth_common::api::ErrorBody),
        (status = 422, body = plinth_common::api::ErrorBody)))]
pub async fn upload_export(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<ImageId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<plinth_common::api::Image>> {
    let source = body_source(&headers, body);
    let image = transfer::receive_export(&st, &agent.host_id, &id, source).await?;
    Ok(axum::Json(image))
}
