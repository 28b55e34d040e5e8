//! Enrollment: an agent with a one-time token and a CSR becomes a host with a certificate.
//! `GET /v1/ca` is public so an agent can fetch the CA and check it against its pinned hash.

use crate::auth::{hash_secret, split_token};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use crate::store::hosts::NewHost;
use crate::store::tokens::EnrollmentTokenStatus;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use plinth_common::api::{EnrollRequest, EnrollResponse, ErrorBody};
use plinth_common::ids::{new_id, validate_slug};
use plinth_common::timefmt::now_ms;
use plinth_common::tls::{LeafSpec, Role, cert_not_after};
use std::net::IpAddr;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ca", get(ca))
        .route("/v1/enroll", post(enroll))
}

/// The region CA certificate (PEM). Agents check its hash before trusting it.
#[utoipa::path(get, path = "/v1/ca", tag = "agents",
    responses((status = 200, description = "PEM certificate", content_type = "application/x-pem-file", body = String)))]
pub async fn ca(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        st.ca.cert_pem().to_string(),
    )
}

/// What an agent certificate says: its host, its address, agent role; server and client use.
pub fn agent_leaf_spec(host_id: &str, ip: IpAddr, ttl: Duration) -> LeafSpec {
    let mut spec = LeafSpec::new(
        host_id,
        Role::Agent {
            host_id: host_id.to_string(),
        },
        ttl,
    );
    spec.ips.push(ip);
    spec.server = true;
    spec.client = true;
    spec
}

/// Signs an agent CSR and returns (certificate PEM, expiry in Unix ms).
pub fn sign_agent_csr(
    st: &AppState,
    csr_pem: &str,
    host_id: &str,
    ip: IpAddr,
) -> ApiResult<(String, i64)> {
    let spec = agent_leaf_spec(host_id, ip, st.settings.agent_cert_ttl);
    let cert = st.ca.sign_csr(csr_pem, &spec).map_err(|_| {
        ApiError::field(
            "csr_pem",
            "is not a valid, self-signed PEM certificate request",
        )
    })?;
    let (_, not_after) = cert_not_after(&cert).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((cert, (not_after.unix_timestamp() * 1000)))
}

fn token_error(status: EnrollmentTokenStatus) -> ApiError {
    let (code, message) = match status {
        EnrollmentTokenStatus::Used => (
            "enrollment_token_used",
            "the enrollment token was already used; create a new one",
        ),
        EnrollmentTokenStatus::Expired => (
            "enrollment_token_expired",
            "the enrollment token expired; create a new one",
        ),
        EnrollmentTokenStatus::Invalid | EnrollmentTokenStatus::Valid => (
            "invalid_enrollment_token",
            "the enrollment token is not valid",
        ),
    };
    ApiError::Unauthorized {
        code,
        message: message.to_string(),
    }
}

/// Enroll a host: one-time token plus CSR in, host id and certificate out.
#[utoipa::path(post, path = "/v1/enroll", tag = "agents", request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn enroll(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<ApiJson<EnrollResponse>> {
    let now = now_ms();
    let (token_id, secret) =
        split_token(&req.token).ok_or_else(|| token_error(EnrollmentTokenStatus::Invalid))?;
    validate_slug("cluster_id", &req.cluster_id).map_err(|m| ApiError::field("cluster_id", m))?;
    let hostname = req.hostname.trim();
    if hostname.is_empty()
        || hostname.len() > 253
        || hostname
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::field(
            "hostname",
            "must be 1-253 characters without spaces",
        ));
    }
    if req.address.is_unspecified() || req.address.is_multicast() {
        return Err(ApiError::field(
            "address",
            format!("{} cannot be a host's address", req.address),
        ));
    }
    match st
        .store
        .enrollment_token_status(token_id, &hash_secret(secret), now)
        .await?
    {
        EnrollmentTokenStatus::Valid => {}
        other => return Err(token_error(other)),
    }
    if !st.store.cluster_exists(&req.cluster_id).await? {
        return Err(ApiError::field(
            "cluster_id",
            format!(
                "cluster {} does not exist; create it first (plinth clusters create {})",
                req.cluster_id, req.cluster_id
            ),
        ));
    }
    let ip = req.address.to_string();
    let host_id = match st.store.host_id_by_ip(&ip).await? {
        Some(existing) => existing,
        None => new_id("host"),
    };
    let (certificate_pem, cert_expires_at) =
        sign_agent_csr(&st, &req.csr_pem, &host_id, req.address)?;
    let host = NewHost {
        id: &host_id,
        ip: &ip,
        hostname,
        cluster_id: &req.cluster_id,
        cert_expires_at,
        now,
    };
    if !st.store.enroll_host(token_id, &host).await? {
        return Err(token_error(EnrollmentTokenStatus::Used));
    }
    let actor = format!("agent:{host_id}");
    st.store
        .audit(
            &actor,
            "enroll",
            &host_id,
            &format!("ip {ip}, cluster {}, token {token_id}", req.cluster_id),
        )
        .await?;
    tracing::info!(host = %host_id, %ip, cluster = %req.cluster_id, "Host enrolled.");
    Ok(ApiJson(EnrollResponse {
        host_id,
        certificate_pem,
        ca_pem: st.ca.cert_pem().to_string(),
    }))
}
