//! `/v1/eips` (SPEC §6): tenants allocate public addresses from the segments they may use,
//! bind them to their own instances, unbind and release them; admins see and act on all.
//! `GET /v1/instances/{id}/network` is what an instance's metadata carries of them.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging;
use crate::instances::api as instances;
use crate::network;
use crate::network::store::eips::{BindRefused, EipFilter};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{BindEip, Eip, EipPage, ErrorBody, InstanceNetwork, NewEip};
use plinth_common::ids::{EipId, InstanceId};
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/eips", get(list).post(allocate))
        .route("/v1/eips/{id}", get(show).delete(release))
        .route("/v1/eips/{id}/bind", post(bind))
        .route("/v1/eips/{id}/unbind", post(unbind))
        .route("/v1/instances/{id}/network", get(network))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Tenant id (admins only; a tenant always sees its own).
    pub tenant: Option<String>,
    pub segment: Option<String>,
    /// Only the EIPs bound to this instance.
    pub instance: Option<String>,
    /// EIPs on the page, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    pub cursor: Option<String>,
}

/// The EIP if the caller may see it; a 404 otherwise.
async fn find(st: &AppState, caller: &Caller, id: &EipId) -> ApiResult<Eip> {
    Ok(network::visible_eip(st, caller.tenant_id(), id).await?)
}

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError::Conflict { code, message }
}

fn bound(id: &str, instance_id: &str) -> ApiError {
    conflict(
        "eip_bound",
        format!("EIP {id} is bound to instance {instance_id}; unbind it first"),
    )
}

/// Allocate an EIP. A tenant allocates for itself; an admin names the tenant. Without a
/// segment or address, the tenant's available segment of the version (default 4) with the
/// most free addresses serves it.
#[utoipa::path(post, path = "/v1/eips", tag = "eips", security(("bearer" = [])), request_body = NewEip,
    responses((status = 201, body = Eip), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn allocate(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewEip>,
) -> ApiResult<(StatusCode, ApiJson<Eip>)> {
    let tenant_id = match (caller.tenant_id(), &req.tenant_id) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::Forbidden(
                "a tenant allocates addresses for itself only".into(),
            ));
        }
        (Some(own), _) => own.to_string(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => {
            return Err(ApiError::field(
                "tenant_id",
                "an admin must name the tenant the address is for",
            ));
        }
    };
    let eip = network::allocate_eip(&st, &caller, &tenant_id, &req).await?;
    Ok((StatusCode::CREATED, ApiJson(eip)))
}

/// List EIPs: a tenant its own (also those from segments it may no longer use), admins all.
#[utoipa::path(get, operation_id = "list_eips", path = "/v1/eips", tag = "eips", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = EipPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<EipPage>> {
    // Listed by segment name, then address.
    let page = paging::request("eips", q.limit, q.cursor.as_deref())?;
    let tenant = caller.list_scope(q.tenant, "addresses")?;
    let filter = EipFilter {
        tenant,
        segment: q.segment,
        instance: q.instance,
        limit: page.fetch(),
        after: page.after.clone(),
    };
    let (rows, total) = st.store.list_eips(&filter).await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(ApiJson(EipPage {
        items,
        total,
        next_cursor,
    }))
}

#[utoipa::path(get, operation_id = "show_eip", path = "/v1/eips/{id}", params(("id" = String, Path, description = "EIP id")), tag = "eips", security(("bearer" = [])),
    responses((status = 200, body = Eip), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<EipId>,
) -> ApiResult<ApiJson<Eip>> {
    Ok(ApiJson(find(&st, &caller, &id).await?))
}

/// A refusal of the store to bind EIP `id` to `inst`, in the API's words.
fn bind_refused(id: &str, inst: &plinth_common::api::Instance, r: BindRefused) -> ApiError {
    match r {
        BindRefused::EipNotFound => ApiError::not_found("eip", id),
        BindRefused::InstanceNotFound => ApiError::not_found("instance", &inst.id),
        BindRefused::OtherTenant => conflict(
            "other_tenant",
            format!(
                "instance {} belongs to {}, not to the EIP's tenant",
                inst.id, inst.tenant_email
            ),
        ),
        BindRefused::InstanceDeleting => conflict(
            "invalid_instance_state",
            format!("instance {} is being deleted", inst.id),
        ),
        BindRefused::BoundElsewhere { instance_id } => bound(id, &instance_id),
    }
}

/// Bind an EIP to an instance of its tenant (not one being deleted). An EIP is bound to one
/// instance at a time: unbind it first to move it. An instance on a host gets a NIC for it
/// at once (hot-plugged when it runs); its host must have the segment's NIC.
#[utoipa::path(post, path = "/v1/eips/{id}/bind", params(("id" = String, Path, description = "EIP id")), tag = "eips", security(("bearer" = [])), request_body = BindEip,
    responses((status = 200, body = Eip), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn bind(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<EipId>,
    ApiJson(req): ApiJson<BindEip>,
) -> ApiResult<ApiJson<Eip>> {
    let before = find(&st, &caller, &id).await?;
    // A tenant learns nothing of another's instance: it is "not found".
    let inst = instances::find(&st, &caller, &req.instance_id).await?;
    if before.instance_id.as_deref() != Some(req.instance_id.as_str()) {
        network::check_pluggable(&st, &before, &inst.instance).await?;
    }
    let eip = st
        .store
        .bind_eip(&id, &req.instance_id, now_ms())
        .await?
        .map_err(|r| bind_refused(&id, &inst.instance, r))?;
    if before.instance_id.is_none() {
        network::plug(&st, &eip, &inst.instance).await?;
    }
    st.store
        .audit(
            &caller.actor(),
            "bind eip",
            &id,
            &format!("{} to instance {}", eip.address, req.instance_id),
        )
        .await?;
    Ok(ApiJson(eip))
}

/// Unbind an EIP from its instance; one not bound stays as it is. The instance's NIC for it
/// is removed first (live when it runs).
#[utoipa::path(post, path = "/v1/eips/{id}/unbind", params(("id" = String, Path, description = "EIP id")), tag = "eips", security(("bearer" = [])),
    responses((status = 200, body = Eip), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn unbind(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<EipId>,
) -> ApiResult<ApiJson<Eip>> {
    let eip = network::unbind_eip(&st, &caller.actor(), caller.tenant_id(), &id).await?;
    Ok(ApiJson(eip))
}

/// Release an EIP back to its segment; refused while it is bound.
#[utoipa::path(delete, path = "/v1/eips/{id}", params(("id" = String, Path, description = "EIP id")), tag = "eips", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn release(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<EipId>,
) -> ApiResult<StatusCode> {
    network::release_eip(&st, &caller.actor(), caller.tenant_id(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An instance's public addresses with the gateway, prefix and routes of each (what its
/// metadata carries).
#[utoipa::path(get, path = "/v1/instances/{id}/network", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 200, body = InstanceNetwork), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn network(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<InstanceId>,
) -> ApiResult<ApiJson<InstanceNetwork>> {
    instances::find(&st, &caller, &id).await?;
    let addresses = st.store.instance_addresses(&id).await?;
    Ok(ApiJson(InstanceNetwork {
        instance_id: id.into_string(),
        addresses,
    }))
}
