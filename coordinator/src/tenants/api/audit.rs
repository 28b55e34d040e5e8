//! `/v1/audit`: who did what, newest first.

use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{AuditEntry, ErrorBody};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// How many entries, 1-1000 (default 100).
    limit: Option<u32>,
}

/// The newest audit entries.
#[utoipa::path(get, operation_id = "list_audit", path = "/v1/audit", tag = "admin", params(AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<ApiJson<Vec<AuditEntry>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be 1-1000, got {limit}"),
        ));
    }
    Ok(ApiJson(st.store.list_audit(limit).await?))
}
