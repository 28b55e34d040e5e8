//! Enrollment: an agent with a one-time token and a CSR becomes a host with a certificate.
//! `GET /v1/ca` is public so an agent can fetch the CA and check it against its pinned hash.

use crate::hosts::{self, Enrollment, HostError};
use crate::http::auth::split_token;
use crate::http::error::{ApiError, ApiJson, ApiResult};
use crate::state::AppState;
use crate::tenants::EnrollmentTokenStatus;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use plinth_common::api::{EnrollRequest, EnrollResponse, ErrorBody};
use plinth_common::ids::validate_slug;

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

/// Checks an enrollment request's fields.
fn enrollment(req: &EnrollRequest) -> ApiResult<Enrollment<'_>> {
    let (token_id, secret) =
        split_token(&req.token).ok_or(HostError::Token(EnrollmentTokenStatus::Invalid))?;
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
    Ok(Enrollment {
        token_id,
        secret,
        cluster_id: &req.cluster_id,
        hostname,
        address: req.address,
        csr_pem: &req.csr_pem,
    })
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
    let enrollment = enrollment(&req)?;
    Ok(ApiJson(hosts::enroll(&st, &enrollment).await?))
}
