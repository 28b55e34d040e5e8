//! Export an instance's disk as a custom image of its tenant (SPEC §5, last bullet): the
//! host's agent flattens the disk with `qemu-img convert` and uploads it; the image goes from
//! `creating` to `available` once the upload is verified like any other.

use crate::http::auth::Caller;
use crate::http::error::{ApiJson, ApiPath, ApiResult};
use crate::images::api::input as image_input;
use crate::instances;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use plinth_common::api::{ErrorBody, ExportInstance, Image};
use plinth_common::ids::InstanceId;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/instances/{id}/export-image", post(export))
}

#[utoipa::path(post, path = "/v1/instances/{id}/export-image", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body = ExportInstance,
    responses((status = 202, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn export(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
    ApiJson(req): ApiJson<ExportInstance>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let name = image_input::name("name", &req.name)?;
    let image_id = instances::export(&st, &caller, &id, &name).await?;
    let image = image_input::reload(&st, &image_id).await?.image;
    Ok((StatusCode::ACCEPTED, ApiJson(image)))
}
