//! Per-tenant quotas (SPEC §3): cores, memory and instance count, checked before a create.

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use crate::tenants;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{ErrorBody, Quota, TenantQuota};
use plinth_common::ids::TenantId;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tenants/{id}/quota", get(show).put(set))
}

/// A tenant's quota and usage (admins, or the tenant itself).
#[utoipa::path(get, operation_id = "show_tenant_quota", path = "/v1/tenants/{id}/quota", params(("id" = String, Path, description = "tenant id")), tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = TenantQuota), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<ApiJson<TenantQuota>> {
    if caller.tenant_id().is_some_and(|t| t != id.as_str()) {
        return Err(ApiError::not_found("tenant", &id));
    }
    Ok(ApiJson(tenants::quota(&st, &id).await?))
}

/// Set a tenant's quota; a limit left out (or null) is unlimited. Lowering a limit below what
/// the tenant holds is allowed: nothing is taken away, new creates are refused.
#[utoipa::path(put, path = "/v1/tenants/{id}/quota", params(("id" = String, Path, description = "tenant id")), tag = "admin", security(("bearer" = [])), request_body = Quota,
    responses((status = 200, body = TenantQuota), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<TenantId>,
    ApiJson(q): ApiJson<Quota>,
) -> ApiResult<ApiJson<TenantQuota>> {
    let limit = i64::MAX as u64;
    for (field, v) in [
        ("cores", q.cores),
        ("memory_bytes", q.memory_bytes),
        ("instances", q.instances),
    ] {
        if v.is_some_and(|v| v > limit) {
            return Err(ApiError::field(field, format!("must be at most {limit}")));
        }
    }
    Ok(ApiJson(
        tenants::set_quota(&st, &caller.actor(), &id, &q).await?,
    ))
}
