//! `/v1/tokens` (admin and tenant API tokens) and `/v1/enrollment-tokens` (one-time tokens
//! agents enroll with).

use crate::auth::{Admin, Caller, new_token};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use plinth_common::api::{
    ApiToken, CreateEnrollmentToken, CreateToken, CreatedToken, EnrollmentToken, ErrorBody,
    TokenRole,
};
use plinth_common::timefmt::{now_ms, parse_duration, rfc3339};
use plinth_common::tls::ca_hash;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{id}", delete(revoke))
        .route("/v1/enrollment-tokens", post(create_enrollment))
}

pub(crate) const MAX_ENROLLMENT_TTL: Duration = Duration::from_secs(7 * 86_400);

pub(crate) fn ttl_ms(field: &'static str, ttl: &str, max: Option<Duration>) -> ApiResult<i64> {
    let d = parse_duration(ttl).map_err(|m| ApiError::field(field, m))?;
    if d.is_zero() {
        return Err(ApiError::field(field, "must be longer than zero"));
    }
    if let Some(max) = max.filter(|m| d > *m) {
        return Err(ApiError::field(
            field,
            format!("must be at most {}s", max.as_secs()),
        ));
    }
    i64::try_from(d.as_millis()).map_err(|_| ApiError::field(field, "is too long"))
}

/// List live tokens: admins see all, a tenant its own.
#[utoipa::path(get, path = "/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiToken>)))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Vec<ApiToken>>> {
    Ok(ApiJson(st.store.list_api_tokens(caller.tenant_id()).await?))
}

/// Create an API token. The secret is in this response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "admin", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, ApiJson<CreatedToken>)> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1-200 characters"));
    }
    let tenant_id = match (req.role, req.tenant_id.as_deref()) {
        (TokenRole::Admin, Some(_)) => {
            return Err(ApiError::field(
                "tenant_id",
                "admin tokens belong to no tenant",
            ));
        }
        (TokenRole::Admin, None) => {
            caller.require_admin()?;
            None
        }
        (TokenRole::Tenant, None) => {
            return Err(ApiError::field(
                "tenant_id",
                "tenant tokens need a tenant_id",
            ));
        }
        (TokenRole::Tenant, Some(tenant)) => {
            if caller.tenant_id().is_some_and(|own| own != tenant) {
                return Err(ApiError::not_found("tenant", tenant));
            }
            if st.store.get_tenant(tenant).await?.is_none() {
                return Err(ApiError::field(
                    "tenant_id",
                    format!("tenant {tenant} does not exist"),
                ));
            }
            Some(tenant)
        }
    };
    let now = now_ms();
    let expires_at = req
        .ttl
        .as_deref()
        .map(|ttl| ttl_ms("ttl", ttl, None).map(|ms| now.saturating_add(ms)))
        .transpose()?;
    let (id, token, secret_hash) = new_token("tok");
    let actor = caller.actor();
    let stored = st
        .store
        .insert_api_token(&crate::store::tokens::NewApiToken {
            id: &id,
            secret_hash: &secret_hash,
            role: req.role,
            tenant_id,
            name,
            created_at: now,
            expires_at,
            created_by: &actor,
        })
        .await?;
    st.store.audit(&actor, "create token", &id, name).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedToken {
            token: stored,
            secret: token,
        }),
    ))
}

/// Revoke a token (a tenant only its own).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if !st
        .store
        .revoke_api_token(&id, caller.tenant_id(), now_ms())
        .await?
    {
        return Err(ApiError::not_found("token", &id));
    }
    st.store
        .audit(&caller.actor(), "revoke token", &id, "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a one-time enrollment token for `plinth-agent enroll`.
#[utoipa::path(post, path = "/v1/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    request_body = CreateEnrollmentToken,
    responses((status = 201, body = EnrollmentToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_enrollment(
    State(st): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, ApiJson<EnrollmentToken>)> {
    let ttl = ttl_ms("ttl", &req.ttl, Some(MAX_ENROLLMENT_TTL))?;
    let token = issue_enrollment_token(&st, ttl, &req.description, &admin.0.actor(), None).await?;
    Ok((StatusCode::CREATED, ApiJson(token)))
}

/// Makes and stores an enrollment token; shared by the API and `plinth-coordinator token create`.
pub async fn issue_enrollment_token(
    st: &AppState,
    ttl_ms: i64,
    description: &str,
    actor: &str,
    host_id: Option<&str>,
) -> ApiResult<EnrollmentToken> {
    let (id, token, hash) = new_token("enr");
    let now = now_ms();
    let expires_at = now.saturating_add(ttl_ms);
    st.store
        .insert_enrollment_token(&id, &hash, description, now, expires_at, host_id)
        .await?;
    let action = match host_id {
        None => "create enrollment token",
        Some(_) => "create re-enrollment token",
    };
    st.store
        .audit(
            actor,
            action,
            host_id.unwrap_or(&id),
            &format!("token {id}; {description}"),
        )
        .await?;
    Ok(EnrollmentToken {
        id,
        token,
        expires_at: rfc3339(expires_at),
        ca_hash: ca_hash(st.ca.cert_pem()).map_err(|e| ApiError::Internal(e.into()))?,
        host_id: host_id.map(str::to_string),
    })
}
