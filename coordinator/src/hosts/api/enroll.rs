//! Enrollment: an agent with a one-time token and a CSR becomes a host with a certificate.
//! `GET /v1/ca` is public so an agent can fetch the CA and check it against its pinned hash.

use crate::hosts::store::NewHost;
use crate::hosts::store::certificates::{CertKind, Issued};
use crate::hosts::store::enrollment::Enrolled;
use crate::http::auth::{hash_secret, split_token};
use crate::http::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use crate::tenants::store::tokens::EnrollmentTokenStatus;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use plinth_common::api::{EnrollRequest, EnrollResponse, ErrorBody};
use plinth_common::ids::{new_id, validate_slug};
use plinth_common::timefmt::now_ms;
use plinth_common::tls::{LeafSpec, Role, cert_not_after, cert_serial};
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

/// An agent certificate as signed: what the store records of it.
pub struct SignedAgentCert {
    pub pem: String,
    pub serial: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl SignedAgentCert {
    pub fn issued<'a>(&'a self, host_id: &'a str) -> Issued<'a> {
        Issued {
            serial: &self.serial,
            kind: CertKind::Agent,
            host_id: Some(host_id),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

/// Signs an agent CSR for `host_id` at `ip`.
pub fn sign_agent_csr(
    st: &AppState,
    csr_pem: &str,
    host_id: &str,
    ip: IpAddr,
) -> ApiResult<SignedAgentCert> {
    let spec = agent_leaf_spec(host_id, ip, st.settings.agent_cert_ttl);
    let pem = st.ca.sign_csr(csr_pem, &spec).map_err(|_| {
        ApiError::field(
            "csr_pem",
            "is not a valid, self-signed PEM certificate request",
        )
    })?;
    let internal = |e: plinth_common::tls::TlsError| ApiError::Internal(e.into());
    let (_, not_after) = cert_not_after(&pem).map_err(internal)?;
    let serial = cert_serial(&pem).map_err(internal)?;
    Ok(SignedAgentCert {
        pem,
        serial,
        // When it was signed (its notBefore is backdated for clock skew, to the second).
        issued_at: plinth_common::timefmt::now_ms(),
        expires_at: not_after.unix_timestamp().saturating_mul(1000),
    })
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
        EnrollmentTokenStatus::Invalid | EnrollmentTokenStatus::Valid { .. } => (
            "invalid_enrollment_token",
            "the enrollment token is not valid",
        ),
    };
    ApiError::Unauthorized {
        code,
        message: message.to_string(),
    }
}

/// Enroll a host: one-time token plus CSR in, host id and certificate out. A plain token makes
/// a new host (an address another host holds is a 409); a token from `POST
/// /v1/hosts/{id}/reenroll` re-keys that host and revokes its earlier certificates.
#[utoipa::path(post, path = "/v1/enroll", tag = "agents", request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
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
    let bound = match st
        .store
        .enrollment_token_status(token_id, &hash_secret(secret), now)
        .await?
    {
        EnrollmentTokenStatus::Valid { host } => host,
        other => return Err(token_error(other)),
    };
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
    // A new identity for every plain token; only a re-enrollment token names an existing one.
    let host_id = bound.clone().unwrap_or_else(|| new_id("host"));
    let cert = sign_agent_csr(&st, &req.csr_pem, &host_id, req.address)?;
    let host = NewHost {
        id: &host_id,
        ip: &ip,
        hostname,
        cluster_id: &req.cluster_id,
        cert_expires_at: cert.expires_at,
        now,
    };
    let revoked = match st
        .store
        .enroll_host(token_id, &host, bound.as_deref(), &cert.issued(&host_id))
        .await?
    {
        Enrolled::Done { revoked } => revoked,
        Enrolled::TokenTaken => return Err(token_error(EnrollmentTokenStatus::Used)),
        Enrolled::AddressHeld { host } => {
            return Err(ApiError::Conflict {
                code: "address_in_use",
                message: format!(
                    "address {ip} belongs to host {host}; a token enrolls a new host only. To give {host} a new certificate, use a token from `plinth hosts reenroll {host}`; to enroll another machine at this address, remove {host} first (`plinth hosts delete {host}`)"
                ),
            });
        }
        Enrolled::HostRemoved => {
            return Err(ApiError::Unauthorized {
                code: "invalid_enrollment_token",
                message: format!("the host this token re-enrolls ({host_id}) was removed"),
            });
        }
        Enrolled::OtherAddress { address } => {
            return Err(ApiError::field(
                "address",
                format!(
                    "host {host_id} is at {address}; re-enrollment keeps a host's address (to move it, remove it and enroll it anew)"
                ),
            ));
        }
        Enrolled::OtherCluster { cluster } => {
            return Err(ApiError::field(
                "cluster_id",
                format!(
                    "host {host_id} is in cluster {cluster}; re-enrollment keeps a host's cluster"
                ),
            ));
        }
    };
    let actor = format!("agent:{host_id}");
    let (action, detail) = match &bound {
        None => (
            "enroll",
            format!("ip {ip}, cluster {}, token {token_id}", req.cluster_id),
        ),
        Some(_) => (
            "re-enroll",
            format!("ip {ip}, token {token_id}, {revoked} earlier certificate(s) revoked"),
        ),
    };
    st.store.audit(&actor, action, &host_id, &detail).await?;
    tracing::info!(host = %host_id, %ip, cluster = %req.cluster_id, reenrolled = bound.is_some(), revoked, "Host enrolled.");
    Ok(ApiJson(EnrollResponse {
        host_id,
        certificate_pem: cert.pem,
        ca_pem: st.ca.cert_pem().to_string(),
    }))
}
