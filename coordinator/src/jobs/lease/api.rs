//! `GET /v1/coordinators`: every coordinator of the region, whether it is alive, and which one
//! runs the jobs (admins).

use crate::http::auth::Admin;
use crate::http::error::{ApiJson, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{CoordinatorList, CoordinatorStatus, ErrorBody, JobLeaseStatus};
use plinth_common::timefmt::rfc3339;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/coordinators", get(list))
}

/// The region's coordinators (by name) and the job lease: who runs the jobs, in which term.
/// One SQLite coordinator lists itself.
#[utoipa::path(get, operation_id = "list_coordinators", path = "/v1/coordinators", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CoordinatorList), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
) -> ApiResult<ApiJson<CoordinatorList>> {
    let (holder, epoch, left_ms) = st.store.job_lease().await?;
    let holding = holder.as_deref().filter(|_| left_ms > 0);
    let alive_ms = super::alive_within(st.settings.job_lease_ttl);
    let items = st
        .store
        .coordinators()
        .await?
        .into_iter()
        .map(|c| CoordinatorStatus {
            runs_jobs: holding == Some(c.id.as_str()),
            alive: c.age_ms <= alive_ms,
            name: c.id,
            address: c.address,
            started_at: rfc3339(c.started_at),
            heartbeat_at: rfc3339(c.heartbeat_at),
        })
        .collect();
    Ok(ApiJson(CoordinatorList {
        items,
        job_lease: JobLeaseStatus {
            holder: holding.map(str::to_string),
            epoch,
            expires_in_ms: left_ms.max(0),
        },
    }))
}
