//! Maintenance (SPEC §2): enter (a durable drain, drain.rs), exit, the current or last
//! drain's report, a dry-run plan; and a manual live migration of one instance. Admins only.
//! Each handler parses, calls one operation of `maintenance`, and maps its answer.

use crate::hosts::api::transition;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiOptionalJson, ApiPath, ApiResult};
use crate::maintenance;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{
    Drain, DrainPlan, EnterMaintenance, ErrorBody, Host, Instance, MigrateInstance, MoveItem,
};
use plinth_common::host::HostEvent;
use plinth_common::ids::{HostId, InstanceId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hosts/{id}/maintenance", get(status))
        .route("/v1/hosts/{id}/maintenance/plan", get(plan))
        .route("/v1/hosts/{id}/maintenance/enter", post(enter))
        .route("/v1/hosts/{id}/maintenance/exit", post(exit))
        .route("/v1/instances/{id}/migrate", post(migrate))
        .route("/v1/instances/{id}/migration", get(migration))
}

const MAX_PARALLELISM: u32 = 64;

/// The host's current or last drain: per instance its target, state, attempts, timings, and
/// why it stayed.
#[utoipa::path(get, path = "/v1/hosts/{id}/maintenance", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Drain), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn status(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<Drain>> {
    Ok(ApiJson(maintenance::status(&st, &id).await?))
}

/// A dry run of entering maintenance: for each instance whether it can move, how many hosts
/// could take it, what blocks it, and whether the cluster has room for all of them.
#[utoipa::path(get, path = "/v1/hosts/{id}/maintenance/plan", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = DrainPlan), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn plan(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<DrainPlan>> {
    Ok(ApiJson(maintenance::plan(&st, &id).await?))
}

/// Enter maintenance: the host (which must be `locked`) goes to `entering_maintenance` and a
/// drain moves its instances off; follow it with `GET /v1/hosts/{id}/maintenance`.
#[utoipa::path(post, path = "/v1/hosts/{id}/maintenance/enter", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    request_body(content = EnterMaintenance, content_type = "application/json"),
    responses((status = 202, body = Drain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn enter(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiOptionalJson(req): ApiOptionalJson<EnterMaintenance>,
) -> ApiResult<(StatusCode, ApiJson<Drain>)> {
    let parallelism = req.parallelism.unwrap_or(st.settings.drains.parallelism);
    if !(1..=MAX_PARALLELISM).contains(&parallelism) {
        return Err(ApiError::field(
            "parallelism",
            format!("must be 1-{MAX_PARALLELISM}, got {parallelism}"),
        ));
    }
    let drain = maintenance::enter(&st, &admin.0.actor(), &id, parallelism).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(drain)))
}

/// Exit maintenance: `maintenance` → `locked` (unlock to take instances again).
#[utoipa::path(post, path = "/v1/hosts/{id}/maintenance/exit", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn exit(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<Host>> {
    transition(&st, &admin, &id, HostEvent::ExitMaintenance)
        .await
        .map(ApiJson)
}

/// Live-migrate one running instance to `target_host` (same cluster) or to a host the
/// scheduler picks; follow it with `GET /v1/instances/{id}/migration`.
#[utoipa::path(post, path = "/v1/instances/{id}/migrate", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body(content = MigrateInstance, content_type = "application/json"),
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn migrate(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<InstanceId>,
    ApiOptionalJson(req): ApiOptionalJson<MigrateInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let target = req
        .target_host
        .as_deref()
        .map(|t| {
            HostId::parse(t)
                .ok_or_else(|| ApiError::field("target_host", format!("'{t}' is not a host id")))
        })
        .transpose()?;
    let inst = maintenance::migrate(&st, &admin.0.actor(), &id, target.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst)))
}

/// The instance's latest move (a drain's or a manual migration's), with live progress.
#[utoipa::path(get, path = "/v1/instances/{id}/migration", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 200, body = MoveItem), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn migration(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<ApiJson<MoveItem>> {
    Ok(ApiJson(maintenance::migration(&st, &id).await?))
}
