//! Calls agents make over mTLS: heartbeats and certificate renewal. Each agent acts only for
//! the host its certificate names.

use crate::hosts;
use crate::http::auth::AgentCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use plinth_common::api::agent_routes::coordinator as routes;
use plinth_common::api::{ErrorBody, Heartbeat, HeartbeatAck, RenewRequest, RenewResponse};
use plinth_common::ids::HostId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::HEARTBEAT, post(heartbeat))
        .route(routes::RENEW, post(renew))
}

/// Heartbeats more often than this, or rarer, are refused.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// Checks what a heartbeat says of itself (its interval, the agent API's port).
fn check_heartbeat(hb: &Heartbeat) -> ApiResult<()> {
    if !INTERVAL_MS.contains(&hb.interval_ms) {
        return Err(ApiError::field(
            "interval_ms",
            format!("must be {}-{}", INTERVAL_MS.start(), INTERVAL_MS.end()),
        ));
    }
    if hb.api_port == 0 {
        return Err(ApiError::field(
            "api_port",
            "must be the agent API's bound port",
        ));
    }
    Ok(())
}

/// An agent reports its host's facts and domains.
#[utoipa::path(post, path = "/v1/agent/hosts/{id}/heartbeat", params(("id" = String, Path, description = "host id")), tag = "agents", request_body = Heartbeat,
    responses((status = 200, body = HeartbeatAck), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn heartbeat(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<HostId>,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<ApiJson<HeartbeatAck>> {
    agent.require_host(&id)?;
    check_heartbeat(&hb)?;
    Ok(ApiJson(hosts::heartbeat(&st, &id, &hb).await?))
}

/// An agent swaps its certificate for a new one, for a key it made anew.
#[utoipa::path(post, path = "/v1/agent/hosts/{id}/renew", params(("id" = String, Path, description = "host id")), tag = "agents", request_body = RenewRequest,
    responses((status = 200, body = RenewResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn renew(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<HostId>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> ApiResult<ApiJson<RenewResponse>> {
    agent.require_host(&id)?;
    Ok(ApiJson(hosts::renew(&st, &id, &req.csr_pem).await?))
}
