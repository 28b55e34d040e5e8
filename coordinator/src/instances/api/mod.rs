//! Instances (SPEC §3): create, list and show, start/stop/reboot, delete, and the per-host
//! view. Tenants see and act on their own only. The handlers parse and map; the operations
//! (quota, placement, claim, then the job) are in `instances::lifecycle`.

pub mod export;
pub mod input;

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiOptionalJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::{self, PageRequest};
use crate::instances;
use crate::instances::api::input as instance_input;
/// Other resources check an instance the caller may see through this (a 404 otherwise).
pub use crate::instances::lifecycle::find;
use crate::instances::store::InstanceFilter;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{ErrorBody, Instance, InstancePage, NewInstance, StopInstance};
use plinth_common::ids::{HostId, InstanceId};
use plinth_common::instance::{
    DEFAULT_STOP_TIMEOUT_S, InstanceAction, InstanceState, MAX_STOP_TIMEOUT_S,
};
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/instances", post(create).get(list))
        .route("/v1/instances/{id}", get(show).delete(delete))
        .route("/v1/instances/{id}/start", post(start))
        .route("/v1/instances/{id}/stop", post(stop))
        .route("/v1/instances/{id}/reboot", post(reboot))
        .route("/v1/hosts/{id}/instances", get(host_instances))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Fuzzy match on name, id, tenant email and image id.
    pub q: Option<String>,
    /// Tenant id (admins only; a tenant always sees its own).
    pub tenant: Option<String>,
    pub host: Option<String>,
    pub state: Option<String>,
    /// Instances on the page, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    pub cursor: Option<String>,
}

/// Create an instance: checked, placed, claimed and recorded before this answers; the host's
/// agent builds it afterwards (follow `state` or the operation).
#[utoipa::path(post, operation_id = "create_instance", path = "/v1/instances", tag = "instances", security(("bearer" = [])), request_body = NewInstance,
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let plan = instance_input::check_new(&st, &caller, &req).await?;
    let inst = instances::create(&st, &caller, &plan, &req).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst)))
}

/// The store's filter and the page asked for (instances are listed newest first).
fn filter_from(q: ListQuery, caller: &Caller) -> ApiResult<(InstanceFilter, PageRequest<i64>)> {
    let state = q
        .state
        .as_deref()
        .map(|s| {
            InstanceState::parse(s).ok_or_else(|| {
                ApiError::field("state", format!("must be {}", InstanceState::choices()))
            })
        })
        .transpose()?;
    let page = paging::request("instances", q.limit, q.cursor.as_deref())?;
    let tenant = caller.list_scope(q.tenant, "instances")?;
    let filter = InstanceFilter {
        q: q.q,
        tenant,
        host: q.host,
        state,
        limit: page.fetch(),
        after: page.after.clone(),
    };
    Ok((filter, page))
}

/// One page of the instances `filter` matches.
async fn page_of(
    st: &AppState,
    (filter, page): (InstanceFilter, PageRequest<i64>),
) -> ApiResult<ApiJson<InstancePage>> {
    let (rows, total) = st.store.list_instances(&filter).await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(ApiJson(InstancePage {
        items,
        total,
        next_cursor,
    }))
}

/// List instances; tenants see only theirs.
#[utoipa::path(get, operation_id = "list_instances", path = "/v1/instances", tag = "instances", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = InstancePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<InstancePage>> {
    page_of(&st, filter_from(q, &caller)?).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostInstancesQuery {
    /// Fuzzy match on name, id, tenant email and image id.
    pub q: Option<String>,
    /// Instances on the page, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    pub cursor: Option<String>,
}

/// The instances on one host (admins).
#[utoipa::path(get, path = "/v1/hosts/{id}/instances", tag = "hosts", security(("bearer" = [])), params(("id" = String, Path, description = "host id"), HostInstancesQuery),
    responses((status = 200, body = InstancePage), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn host_instances(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<HostId>,
    ApiQuery(q): ApiQuery<HostInstancesQuery>,
) -> ApiResult<ApiJson<InstancePage>> {
    if st.store.get_host(&id, now_ms()).await?.is_none() {
        return Err(ApiError::not_found("host", &id));
    }
    let filter = filter_from(
        ListQuery {
            q: q.q,
            tenant: None,
            host: Some(id.into_string()),
            state: None,
            limit: q.limit,
            cursor: q.cursor,
        },
        &caller,
    )?;
    page_of(&st, filter).await
}

#[utoipa::path(get, operation_id = "show_instance", path = "/v1/instances/{id}", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<ApiJson<Instance>> {
    Ok(ApiJson(find(&st, &caller, &id).await?.instance))
}

/// Runs `action` on the instance and answers it as the action left it.
async fn act(
    st: &AppState,
    caller: &Caller,
    id: &InstanceId,
    action: InstanceAction,
    stop_timeout_s: u64,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let inst = instances::act(st, caller, id, action, stop_timeout_s).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst)))
}

#[utoipa::path(post, path = "/v1/instances/{id}/start", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn start(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    act(
        &st,
        &caller,
        &id,
        InstanceAction::Start,
        DEFAULT_STOP_TIMEOUT_S,
    )
    .await
}

/// Stop: the guest is asked to shut down and forced off after `timeout_s` (default 60).
#[utoipa::path(post, path = "/v1/instances/{id}/stop", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body(content = StopInstance, content_type = "application/json"),
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stop(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
    ApiOptionalJson(req): ApiOptionalJson<StopInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let timeout = req.timeout_s.unwrap_or(DEFAULT_STOP_TIMEOUT_S);
    if timeout > MAX_STOP_TIMEOUT_S {
        return Err(ApiError::field(
            "timeout_s",
            format!("must be at most {MAX_STOP_TIMEOUT_S}"),
        ));
    }
    act(&st, &caller, &id, InstanceAction::Stop, timeout).await
}

#[utoipa::path(post, path = "/v1/instances/{id}/reboot", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn reboot(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    act(
        &st,
        &caller,
        &id,
        InstanceAction::Reboot,
        DEFAULT_STOP_TIMEOUT_S,
    )
    .await
}

/// Delete: the domain is undefined and the disk removed on the host, then the instance and its
/// claim go. Allowed in a settled state (running, stopped, error).
#[utoipa::path(delete, operation_id = "delete_instance", path = "/v1/instances/{id}", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let inst = instances::delete(&st, &caller, &id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst)))
}
