//! `/v1/clusters`: the groups hosts enroll into.

use crate::hosts;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::http::text::{NOTE, text};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use plinth_common::api::{Cluster, ClusterPage, CreateCluster, ErrorBody};
use plinth_common::ids::validate_slug;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/clusters", get(list).post(create))
}

/// List clusters with their host counts, by id.
#[utoipa::path(get, operation_id = "list_clusters", path = "/v1/clusters", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = ClusterPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<ClusterPage>> {
    let page = q.page::<String>("clusters")?;
    let (rows, total) = st
        .store
        .list_clusters(page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish(rows, |c| (c.id.clone(), c.id.clone()));
    Ok(ApiJson(ClusterPage {
        items,
        total,
        next_cursor,
    }))
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
