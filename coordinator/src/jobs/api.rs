//! `/v1/operations/{id}`: the progress of long-running work.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use plinth_common::api::{ErrorBody, Operation};
use plinth_common::ids::OperationId;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/operations/{id}", get(show))
}

/// An operation: status, byte progress, the error when it failed.
#[utoipa::path(get, operation_id = "show_operation", path = "/v1/operations/{id}", params(("id" = String, Path, description = "operation id")), tag = "images", security(("bearer" = [])),
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
