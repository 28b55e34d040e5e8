//! `/v1/tokens` (admin and tenant API tokens) and `/v1/enrollment-tokens` (one-time tokens
//! agents enroll with).

use crate::http::auth::{Admin, Caller, new_token};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::http::text::{NAME, NOTE, text};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use plinth_common::api::{
    ApiToken, CreateEnrollmentToken, CreateToken, CreatedToken, EnrollmentToken, ErrorBody,
    TokenRole,
};
use plinth_common::timefmt::{expiry_after, now_ms, parse_duration, rfc3339};
use plinth_common::tls::ca_hash;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{id}", delete(revoke))
        .route("/v1/enrollment-tokens", post(create_enrollment))
}

pub const MAX_ENROLLMENT_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A TTL as typed, more than zero and at most `max`.
pub fn bounded_ttl(ttl: &str, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(ttl)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    if d > max {
        return Err(format!(
            "'{}' is longer than the maximum, {}",
            ttl.trim(),
            duration_text(max)
        ));
    }
    Ok(d)
}

/// An enrollment token's `ttl` as typed, in milliseconds (at most 7 days, so they fit).
pub(crate) fn enrollment_ttl_ms(ttl: &str) -> ApiResult<i64> {
    let ttl = bounded_ttl(ttl, MAX_ENROLLMENT_TTL).map_err(|m| ApiError::field("ttl", m))?;
    i64::try_from(ttl.as_millis()).map_err(|_| ApiError::field("ttl", "is too long"))
}

/// A TTL as typed, bounded by `max`: the expiry timestamp it gives from `now`.
pub fn expiry(ttl: &str, max: Duration, now: i64) -> Result<i64, String> {
    let d = bounded_ttl(ttl, max)?;
    expiry_after(now, d).ok_or_else(|| format!("'{}' is too long", ttl.trim()))
}

/// `7d`, `36h`, `90s`: the largest whole unit (how a maximum is shown to an operator).
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
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
    let name = &text("name", NAME, &req.name)?;
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
        .map(|ttl| {
            expiry(ttl, st.settings.max_token_ttl, now).map_err(|m| ApiError::field("ttl", m))
        })
        .transpose()?;
    let (id, token, secret_hash) = new_token("tok");
    let actor = caller.actor();
    let stored = st
        .store
        .insert_api_token(&crate::tenants::store::tokens::NewApiToken {
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
#[utoipa::path(delete, path = "/v1/tokens/{id}", params(("id" = String, Path, description = "token id")), tag = "admin", security(("bearer" = [])),
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
    let ttl_ms = enrollment_ttl_ms(&req.ttl)?;
    let description = text("description", NOTE, &req.description)?;
    let token = issue_enrollment_token(&st, ttl_ms, &description, &admin.0.actor(), None).await?;
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
    let expires_at = u64::try_from(ttl_ms)
        .ok()
        .and_then(|ms| expiry_after(now, Duration::from_millis(ms)))
        .ok_or_else(|| ApiError::field("ttl", "is out of range"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        let now = 1_700_000_000_000;
        let year = Duration::from_secs(365 * 86_400);
        let cases: [(&str, &str, Duration, Result<i64, &str>); 9] = [
            ("an hour", "1h", year, Ok(now + 3_600_000)),
            (
                "exactly the maximum",
                "365d",
                year,
                Ok(now + 31_536_000_000),
            ),
            (
                "a second over",
                "31536001s",
                year,
                Err("longer than the maximum, 365d"),
            ),
            (
                "the issue's value",
                "99999999999d",
                year,
                Err("longer than the maximum"),
            ),
            ("overflows u64", "213503982334602d", year, Err("too long")),
            ("zero", "0s", year, Err("longer than zero")),
            ("no unit", "10", year, Err("no unit")),
            (
                "enrollment at 7d",
                "7d",
                MAX_ENROLLMENT_TTL,
                Ok(now + 604_800_000),
            ),
            (
                "enrollment at 8d",
                "8d",
                MAX_ENROLLMENT_TTL,
                Err("maximum, 7d"),
            ),
        ];
        for (label, ttl, max, want) in cases {
            match (expiry(ttl, max, now), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{label}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{label}: {got}"),
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }
}
