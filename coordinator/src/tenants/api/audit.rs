//! `/v1/audit`: who did what, newest first.

use crate::http::auth::Admin;
use crate::http::error::{ApiJson, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{AuditPage, ErrorBody};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list))
}

/// The audit log, newest first.
#[utoipa::path(get, operation_id = "list_audit", path = "/v1/audit", tag = "admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<AuditPage>> {
    let page = q.page::<String>("audit")?;
    let (rows, total) = st
        .store
        .list_audit(page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(ApiJson(AuditPage {
        items,
        total,
        next_cursor,
    }))
}
