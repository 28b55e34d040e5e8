//! Calls agents make over mTLS: heartbeats and certificate renewal. Each agent acts only for
//! the host its certificate names.

use crate::hosts::api::enroll::sign_agent_csr;
use crate::http::auth::AgentCaller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::instances::store::{Reconciled, observed};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use plinth_common::api::agent_routes::coordinator as routes;
use plinth_common::api::{ErrorBody, Heartbeat, HeartbeatAck, RenewRequest, RenewResponse};
use plinth_common::timefmt::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::HEARTBEAT, post(heartbeat))
        .route(routes::RENEW, post(renew))
}

/// Heartbeats more often than this, or rarer, are refused.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// An agent reports its host's facts and domains.
#[utoipa::path(post, path = "/v1/agent/hosts/{id}/heartbeat", params(("id" = String, Path, description = "host id")), tag = "agents", request_body = Heartbeat,
    responses((status = 200, body = HeartbeatAck), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn heartbeat(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<ApiJson<HeartbeatAck>> {
    agent.require_host(&id)?;
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
    let (state, presence) = st
        .store
        .record_heartbeat(&id, &hb, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("host", &id))?;
    st.store.set_host_ipmi(&id, hb.facts.ipmi).await?;
    if presence.went_offline {
        tracing::warn!(host = %id, "Agent was offline: three heartbeats missed.");
        st.store
            .audit("coordinator", "agent offline", &id, "")
            .await?;
    }
    if presence.came_online {
        tracing::info!(host = %id, "Agent online.");
        st.store
            .audit(&format!("agent:{id}"), "agent online", &id, "")
            .await?;
    }
    if let Some(devices) = &hb.devices {
        st.store.record_devices(&id, devices, now_ms()).await?;
    }
    reconcile(&st, &id, &hb).await?;
    let owners = st.store.instance_owners(&id).await?;
    let revoked_coordinator_serials = st.store.revoked_coordinator_serials(now_ms()).await?;
    Ok(ApiJson(HeartbeatAck {
        host_id: id,
        state,
        owners,
        revoked_coordinator_serials,
    }))
}

/// Converges the host's settled instances with the domains the agent reports. A report may
/// have been taken before a job that just ended changed the domain, so each difference is
/// confirmed by asking the agent now (in the background: the beat is not held up) before it is
/// applied and audited.
async fn reconcile(st: &AppState, host: &str, hb: &Heartbeat) -> ApiResult<()> {
    // The interval is the agent's word: bounded so the arithmetic cannot overflow.
    let interval_ms = i64::try_from(hb.interval_ms).unwrap_or(i64::MAX);
    let settled_before = now_ms().saturating_sub(interval_ms.saturating_mul(2));
    let (proposed, unknown) = st
        .store
        .reconcile_host(host, &hb.domains, settled_before)
        .await?;
    if !unknown.is_empty() {
        tracing::debug!(host, domains = ?unknown, "Host runs domains no instance accounts for.");
    }
    if !proposed.is_empty() {
        st.jobs.spawn(
            "heartbeat reconciliation",
            confirm(st.clone(), host.to_string(), proposed),
        );
    }
    Ok(())
}

async fn confirm(st: AppState, host: String, proposed: Vec<Reconciled>) {
    let Ok(Some(ep)) = st.store.agent_endpoint(&host, now_ms()).await else {
        return;
    };
    for mut c in proposed {
        // What the agent sees now, not what the beat carried.
        let live = match st.agents.instance(&ep, &c.instance_id).await {
            Ok(found) => observed(found.as_ref().map(|d| d.state.as_str())),
            Err(e) => {
                tracing::debug!(instance = %c.instance_id, error = %e.explain(), "Could not confirm a reconciliation.");
                continue;
            }
        };
        let Some((to, reason)) = live.filter(|(to, _)| *to != c.from) else {
            continue;
        };
        (c.to, c.reason) = (to, reason);
        let applied = st.store.apply_reconciled(&c, now_ms()).await;
        if !matches!(applied, Ok(true)) {
            continue;
        }
        tracing::warn!(instance = %c.instance_id, from = %c.from, to = %c.to, reason = ?c.reason,
            "Reconciled an instance with what its host reports.");
        let detail = format!(
            "{} -> {}{}",
            c.from,
            c.to,
            c.reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        if let Err(e) = st
            .store
            .audit("coordinator", "reconcile instance", &c.instance_id, &detail)
            .await
        {
            tracing::error!(error = ?e, "Could not audit a reconciliation.");
        }
    }
}

/// An agent swaps its certificate for a new one, for a key it made anew.
#[utoipa::path(post, path = "/v1/agent/hosts/{id}/renew", params(("id" = String, Path, description = "host id")), tag = "agents", request_body = RenewRequest,
    responses((status = 200, body = RenewResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn renew(
    State(st): State<AppState>,
    agent: AgentCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> ApiResult<ApiJson<RenewResponse>> {
    agent.require_host(&id)?;
    let ep = st
        .store
        .agent_endpoint(&id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("host", &id))?;
    let ip = ep.ip.parse().map_err(|_| {
        ApiError::Internal(anyhow::anyhow!("stored ip {} is not an address", ep.ip))
    })?;
    let cert = sign_agent_csr(&st, &req.csr_pem, &id, ip)?;
    let grace = i64::try_from(st.settings.renewed_cert_grace.as_millis()).unwrap_or(i64::MAX);
    st.store
        .record_renewal(&id, &cert.issued(&id), grace, now_ms())
        .await?;
    st.store
        .audit(
            &format!("agent:{id}"),
            "renew certificate",
            &id,
            &format!(
                "serial {}; the one it replaces is refused after the grace",
                cert.serial
            ),
        )
        .await?;
    tracing::info!(host = %id, serial = %cert.serial, "Agent certificate renewed.");
    Ok(ApiJson(RenewResponse {
        certificate_pem: cert.pem,
    }))
}
