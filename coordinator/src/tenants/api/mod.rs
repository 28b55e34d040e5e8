//! `/v1/tenants`: who owns instances, images and addresses.

pub mod audit;
pub mod quotas;
pub mod sessions;
pub mod tokens;

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::http::text::{NAME, text};
use crate::state::AppState;
use crate::tenants;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use plinth_common::api::{CreateTenant, ErrorBody, Tenant, TenantPage};
use plinth_common::ids::TenantId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list).post(create))
        .route("/v1/tenants/{id}", get(show))
}

fn validate_email(email: &str) -> ApiResult<()> {
    let bad = || ApiError::field("email", format!("'{email}' is not an email address"));
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    if ok { Ok(()) } else { Err(bad()) }
}

/// List tenants, by email.
#[utoipa::path(get, operation_id = "list_tenants", path = "/v1/tenants", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = TenantPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<TenantPage>> {
    let page = q.page::<String>("tenants")?;
    let (rows, total) = st
        .store
        .list_tenants(page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish(rows, |t| (t.email.clone(), t.id.clone()));
    Ok(ApiJson(TenantPage {
        items,
        total,
        next_cursor,
    }))
}

/// Create a tenant.
#[utoipa::path(post, operation_id = "create_tenant", path = "/v1/tenants", tag = "admin", security(("bearer" = [])), request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, ApiJson<Tenant>)> {
    let email = req.email.trim().to_lowercase();
    validate_email(&email)?;
    let name = &text("name", NAME, &req.name)?;
    let tenant = tenants::create_tenant(&st, &admin.0.actor(), &email, name).await?;
    Ok((StatusCode::CREATED, ApiJson(tenant)))
}

/// One tenant: admins see any, a tenant only itself.
#[utoipa::path(get, operation_id = "show_tenant", path = "/v1/tenants/{id}", params(("id" = String, Path, description = "tenant id")), tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<ApiJson<Tenant>> {
    // Another tenant's id is "not found", not "forbidden": tenants learn nothing of each other.
    if caller.tenant_id().is_some_and(|own| own != id.as_str()) {
        return Err(ApiError::not_found("tenant", &id));
    }
    let tenant = st.store.get_tenant(&id).await?;
    tenant
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("tenant", &id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails() {
        for good in ["ops@example.com", "a.b+c@sub.example.org"] {
            assert!(super::validate_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "x",
            "@example.com",
            "a@b",
            "a@.com",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(super::validate_email(bad).is_err(), "{bad}");
        }
    }
}
