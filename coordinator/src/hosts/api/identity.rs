//! A host's identity: removing it from the region, its agent's certificates and their
//! revocation, and re-enrollment (a one-time token bound to the host, whose use revokes the
//! host's earlier certificates).

use crate::hosts;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiOptionalJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{
    EnrollmentToken, ErrorBody, HostCertificate, HostCertificatePage, HostRemoved, ReenrollHost,
    RemoveHost, RevokeCertificates,
};
use plinth_common::ids::HostId;

use crate::http::text::text;
use crate::tenants::enrollment_ttl_ms;
use plinth_common::text::REASON;

/// `DELETE /v1/hosts/{id}` is [`remove`], routed with the host's `GET` in hosts.rs.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hosts/{id}/certificates", get(certificates))
        .route("/v1/hosts/{id}/certificates/revoke", post(revoke))
        .route("/v1/hosts/{id}/reenroll", post(reenroll))
}

fn reason(field: &'static str, given: Option<&str>) -> ApiResult<String> {
    text(field, REASON, given.unwrap_or_default())
}

/// Remove a host from the region: its certificates are revoked and its agent refused from its
/// next call. Only a host without instances (after maintenance) unless `force=true` with a
/// `reason`: then its instances end in `error`.
#[utoipa::path(delete, path = "/v1/hosts/{id}", tag = "hosts", security(("bearer" = [])),
    params(("id" = String, Path, description = "host id"), ("force" = Option<bool>, Query, description = "remove although instances are on it"), ("reason" = Option<String>, Query, description = "why (required with force)")),
    responses((status = 200, body = HostRemoved), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn remove(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiQuery(query): ApiQuery<RemoveHost>,
) -> ApiResult<ApiJson<HostRemoved>> {
    let forced = match (query.force, query.reason.as_deref()) {
        (true, given) => Some(reason("reason", given)?),
        (false, Some(_)) => {
            return Err(ApiError::field("reason", "is given with force=true only"));
        }
        (false, None) => None,
    };
    let removed = hosts::remove(&st, &admin.0.actor(), &id, forced.as_deref()).await?;
    Ok(ApiJson(removed))
}

/// The certificates the CA issued to the host's agent, newest first.
#[utoipa::path(get, path = "/v1/hosts/{id}/certificates", tag = "hosts", security(("bearer" = [])),
    params(("id" = String, Path, description = "host id"), PageQuery),
    responses((status = 200, body = HostCertificatePage), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn certificates(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<HostCertificatePage>> {
    let page = q.page("certificates")?;
    Ok(ApiJson(hosts::certificates(&st, &id, &page).await?))
}

/// Revoke every certificate of the host at once (a compromised host): its agent is refused
/// from its next call; the host and its instances stay until it re-enrolls or is removed.
#[utoipa::path(post, operation_id = "revoke_host_certificates", path = "/v1/hosts/{id}/certificates/revoke", tag = "hosts", security(("bearer" = [])),
    params(("id" = String, Path, description = "host id")), request_body = RevokeCertificates,
    responses((status = 200, body = Vec<HostCertificate>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiJson(req): ApiJson<RevokeCertificates>,
) -> ApiResult<ApiJson<Vec<HostCertificate>>> {
    let why = reason("reason", Some(&req.reason))?;
    let certs = hosts::revoke_certificates(&st, &admin.0.actor(), &id, &why).await?;
    Ok(ApiJson(certs))
}

/// A one-time token that re-enrolls this host (same id, same cluster): give it to
/// `plinth-agent enroll` on the host. Its use revokes every earlier certificate of the host.
#[utoipa::path(post, path = "/v1/hosts/{id}/reenroll", tag = "hosts", security(("bearer" = [])),
    params(("id" = String, Path, description = "host id")), request_body = ReenrollHost,
    responses((status = 201, body = EnrollmentToken), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reenroll(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiOptionalJson(req): ApiOptionalJson<ReenrollHost>,
) -> ApiResult<(StatusCode, ApiJson<EnrollmentToken>)> {
    let ttl = enrollment_ttl_ms(req.ttl.as_deref().unwrap_or("1h"))?;
    let token = hosts::reenrollment_token(&st, &admin.0.actor(), &id, ttl).await?;
    Ok((StatusCode::CREATED, ApiJson(token)))
}
