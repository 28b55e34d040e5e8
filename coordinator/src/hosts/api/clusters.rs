//! `/v1/clusters`: the groups hosts enroll into.

use crate::hosts;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiResult};
use crate::http::text::{NOTE, text};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use plinth_common::api::{Cluster, CreateCluster, ErrorBody};
use plinth_common::ids::validate_slug;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/clusters", get(list).post(create))
}

/// List clusters with their host counts.
#[utoipa::path(get, operation_id = "list_clusters", path = "/v1/clusters", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Cluster>), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, _admin: Admin) -> ApiResult<ApiJson<Vec<Cluster>>> {
    Ok(ApiJson(st.store.list_clusters().await?))
}

/// Create a cluster.
#[utoipa::path(post, operation_id = "create_cluster", path = "/v1/clusters", tag = "admin", security(("bearer" = [])), request_body = CreateCluster,
    responses((status = 201, body = Cluster), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateCluster>,
) -> ApiResult<(StatusCode, ApiJson<Cluster>)> {
    validate_slug("id", &req.id).map_err(|m| ApiError::field("id", m))?;
    let description = text("description", NOTE, &req.description)?;
    let cluster = hosts::create_cluster(&st, &admin.0.actor(), &req.id, &description).await?;
    Ok((StatusCode::CREATED, ApiJson(cluster)))
}
