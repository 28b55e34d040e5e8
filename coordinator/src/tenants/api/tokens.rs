//! `/v1/tokens` (admin and tenant API tokens) and `/v1/enrollment-tokens` (one-time tokens
//! agents enroll with).

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::http::text::{NAME, NOTE, text};
use crate::state::AppState;
use crate::tenants::{self, NewToken};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use plinth_common::api::{
    ApiTokenPage, CreateEnrollmentToken, CreateToken, CreatedToken, EnrollmentToken, ErrorBody,
    TokenRole,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{id}", delete(revoke))
        .route("/v1/enrollment-tokens", post(create_enrollment))
}

// The token operations live in the folder's mod.rs; the names stay reachable here for the
// coordinator's command line.
pub use crate::tenants::{MAX_ENROLLMENT_TTL, bounded_ttl, expiry, issue_enrollment_token};

/// Who an API token of `role` belongs to, as `caller` may make it: an admin token (admins
/// only) has no tenant, a tenant token one (a tenant only its own).
fn token_owner<'a>(
    caller: &Caller,
    role: TokenRole,
    tenant_id: Option<&'a str>,
) -> ApiResult<Option<&'a str>> {
    match (role, tenant_id) {
        (TokenRole::Admin, Some(_)) => Err(ApiError::field(
            "tenant_id",
            "admin tokens belong to no tenant",
        )),
        (TokenRole::Admin, None) => {
            caller.require_admin()?;
            Ok(None)
        }
        (TokenRole::Tenant, None) => Err(ApiError::field(
            "tenant_id",
            "tenant tokens need a tenant_id",
        )),
        (TokenRole::Tenant, Some(tenant)) => {
            if caller.tenant_id().is_some_and(|own| own != tenant) {
                return Err(ApiError::not_found("tenant", tenant));
            }
            Ok(Some(tenant))
        }
    }
}

/// List live tokens, oldest first: admins see all, a tenant its own.
#[utoipa::path(get, operation_id = "list_tokens", path = "/v1/tokens", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = ApiTokenPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<ApiTokenPage>> {
    let page = q.page::<i64>("tokens")?;
    let (rows, total) = st
        .store
        .list_api_tokens(caller.tenant_id(), page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(ApiJson(ApiTokenPage {
        items,
        total,
        next_cursor,
    }))
}

/// Create an API token. The secret is in this response only.
#[utoipa::path(post, operation_id = "create_token", path = "/v1/tokens", tag = "admin", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, ApiJson<CreatedToken>)> {
    let name = &text("name", NAME, &req.name)?;
    let token = NewToken {
        role: req.role,
        tenant_id: token_owner(&caller, req.role, req.tenant_id.as_deref())?,
        name,
        ttl: req.ttl.as_deref(),
    };
    let created = tenants::create_token(&st, &caller.actor(), &token).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Revoke a token (a tenant only its own).
#[utoipa::path(delete, operation_id = "revoke_token", path = "/v1/tokens/{id}", params(("id" = String, Path, description = "token id")), tag = "admin", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    tenants::revoke_token(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a one-time enrollment token for `plinth-agent enroll`.
#[utoipa::path(post, path = "/v1/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    request_body = CreateEnrollmentToken,
    responses((status = 201, body = EnrollmentToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_enrollment(
    State(st): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, ApiJson<EnrollmentToken>)> {
    let ttl_ms = tenants::enrollment_ttl_ms(&req.ttl)?;
    let description = text("description", NOTE, &req.description)?;
    let token = issue_enrollment_token(&st, ttl_ms, &description, &admin.0.actor(), None).await?;
    Ok((StatusCode::CREATED, ApiJson(token)))
}
