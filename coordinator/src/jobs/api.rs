//! `/v1/operations`: the progress and steps of long-running work. A tenant sees its own
//! operations only; an admin sees every one, and may filter by tenant.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging;
use crate::jobs::operations::OperationFilter;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{ErrorBody, Operation, OperationPage, OperationStatus, operation_kinds};
use plinth_common::ids::{OperationId, TenantId};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operations", get(list))
        .route("/v1/operations/{id}", get(show))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationQuery {
    /// Only this kind (`image_import`, `instance_create`, `host_drain`, `baremetal_power`...).
    pub kind: Option<String>,
    /// Only `running`, `succeeded` or `failed` ones.
    pub status: Option<String>,
    /// Only those working on this resource (an image, instance, host or server id).
    pub resource: Option<String>,
    /// Only this tenant's (admins; a tenant sees its own only).
    pub tenant: Option<String>,
    /// How many, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The list's filters, checked: each bad value is refused naming its field.
pub fn filter(
    caller: &Caller,
    q: OperationQuery,
) -> ApiResult<(OperationFilter, paging::PageRequest<i64>)> {
    let page = paging::request::<i64>("operations", q.limit, q.cursor.as_deref())?;
    let kind = q.kind.filter(|k| !k.is_empty());
    if let Some(k) = &kind
        && !operation_kinds::ALL.contains(&k.as_str())
    {
        let known = operation_kinds::ALL.join(", ");
        return Err(ApiError::field(
            "kind",
            format!("'{k}' is not a kind of operation: one of {known}"),
        ));
    }
    let status = q
        .status
        .filter(|s| !s.is_empty())
        .map(|s| {
            OperationStatus::parse(&s).ok_or_else(|| {
                ApiError::field(
                    "status",
                    format!("'{s}' is not running, succeeded or failed"),
                )
            })
        })
        .transpose()?;
    let target = q.resource.filter(|r| !r.is_empty());
    if let Some(r) = &target
        && (r.len() > 64
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(ApiError::field(
            "resource",
            "is not a resource id (letters, digits and '-')",
        ));
    }
    let asked = q.tenant.filter(|t| !t.is_empty());
    if let Some(t) = &asked
        && TenantId::parse(t).is_none()
    {
        return Err(ApiError::field(
            "tenant",
            format!("'{t}' is not a tenant id (tenant- and hexadecimal digits)"),
        ));
    }
    let filter = OperationFilter {
        kind,
        status,
        target,
        tenant: caller.list_scope(asked, "operations")?,
        after: page.after.clone(),
        fetch: page.fetch(),
    };
    Ok((filter, page))
}

/// Operations, newest first, with filters; paged by `limit` and `cursor`. Items carry no
/// steps: `GET /v1/operations/{id}` has them.
#[utoipa::path(get, operation_id = "list_operations", path = "/v1/operations", params(OperationQuery), tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = OperationPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OperationQuery>,
) -> ApiResult<ApiJson<OperationPage>> {
    let (filter, page) = filter(&caller, q)?;
    let (rows, total) = st.store.list_operations(&filter).await?;
    let (rows, next_cursor) = page.finish(rows, |r| (r.created_ms, r.op.id.clone()));
    let items = rows.into_iter().map(|r| r.op).collect();
    Ok(ApiJson(OperationPage {
        items,
        total,
        next_cursor,
    }))
}

/// An operation: status, progress, its steps, the error when it failed.
#[utoipa::path(get, operation_id = "show_operation", path = "/v1/operations/{id}", params(("id" = String, Path, description = "operation id")), tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Operation), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<OperationId>,
) -> ApiResult<ApiJson<Operation>> {
    let op = st.store.get_operation(&id, caller.tenant_id()).await?;
    op.map(ApiJson)
        .ok_or_else(|| ApiError::not_found("operation", &id))
}
