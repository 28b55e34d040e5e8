//! `/v1/segments` (SPEC §6): the admin records external segments (CIDR, gateway, NIC, VLAN,
//! route policy) and says which tenants may use each; tenants list the ones they may use.

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::network::store::segments::{Permission, SegmentRefused};
use crate::network::validate::{self, Clash, Invalid, SegmentInput};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use plinth_common::api::{ErrorBody, NewSegment, Segment, SetSegmentPermission, UpdateSegment};
use plinth_common::ids::new_id;
use plinth_common::timefmt::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/segments", get(list).post(create))
        .route("/v1/segments/{id}", get(show).patch(update).delete(delete))
        .route("/v1/segments/{id}/permissions", put(set_permissions))
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::field(e.field, e.message)
    }
}

fn refused(id: &str, cidr: &str, r: SegmentRefused) -> ApiError {
    match r {
        SegmentRefused::NotFound => ApiError::not_found("segment", id),
        SegmentRefused::Clash(clash) => {
            let code = match clash {
                Clash::Name { .. } => "segment_name_taken",
                Clash::Overlap { .. } => "segment_overlap",
                Clash::SameNetwork { .. } => "segment_network_taken",
            };
            ApiError::Conflict {
                code,
                message: format!("segment {cidr}: {clash}"),
            }
        }
        SegmentRefused::GatewayAllocated { eip } => ApiError::Conflict {
            code: "gateway_allocated",
            message: format!("the new gateway is allocated as EIP {eip}; release it first"),
        },
        SegmentRefused::InUse { allocated } => ApiError::Conflict {
            code: "segment_in_use",
            message: format!(
                "segment {id} has {allocated} EIP{} allocated; release {} before deleting it",
                if allocated == 1 { "" } else { "s" },
                if allocated == 1 { "it" } else { "them" },
            ),
        },
    }
}

/// Resolves a permission's tenants (ids or emails) to ids.
async fn permission(st: &AppState, p: &SetSegmentPermission) -> ApiResult<Permission> {
    if p.all_tenants && !p.tenants.is_empty() {
        return Err(ApiError::field(
            "tenants",
            "must be empty when all_tenants is true",
        ));
    }
    match st.store.resolve_tenants(&p.tenants).await? {
        Ok(tenant_ids) => Ok(Permission {
            all_tenants: p.all_tenants,
            tenant_ids,
        }),
        Err(unknown) => Err(ApiError::field(
            "tenants",
            format!("'{unknown}' is neither a tenant id nor a tenant's email"),
        )),
    }
}

/// Segments: admins see all; a tenant sees those it may use.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = Vec<Segment>)))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<ApiJson<Vec<Segment>>> {
    Ok(ApiJson(st.store.list_segments(caller.tenant_id()).await?))
}

/// Add a segment (admins). It must not overlap another; a NIC and VLAN carry at most one
/// IPv4 and one IPv6 segment.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", security(("bearer" = [])), request_body = NewSegment,
    responses((status = 201, body = Segment), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiJson(req): ApiJson<NewSegment>,
) -> ApiResult<(StatusCode, ApiJson<Segment>)> {
    let spec = validate::spec(&SegmentInput {
        name: &req.name,
        ip_version: req.ip_version,
        cidr: &req.cidr,
        gateway: &req.gateway,
        nic: &req.nic,
        vlan: req.vlan,
        route_policy: req.route_policy,
        routes: &req.routes,
    })?;
    let permission = match &req.permission {
        Some(p) => permission(&st, p).await?,
        None => Permission {
            all_tenants: true,
            tenant_ids: Vec::new(),
        },
    };
    let id = new_id("seg");
    let cidr = spec.net.to_string();
    let segment = st
        .store
        .create_segment(&id, &spec, &permission, now_ms())
        .await?
        .map_err(|r| refused(&id, &cidr, r))?;
    let detail = format!(
        "{} {cidr} gateway {} on {} vlan {} routes {}, for {}",
        segment.name,
        segment.gateway,
        segment.nic,
        segment.vlan.map_or("none".to_string(), |v| v.to_string()),
        segment.route_policy,
        segment.permission
    );
    st.store
        .audit(&caller.actor(), "create segment", &id, &detail)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(segment)))
}

#[utoipa::path(get, path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = Segment), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Segment>> {
    st.store
        .segment(&id, caller.tenant_id())
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("segment", &id))
}

/// Change a segment (admins): name, gateway, NIC, VLAN, route policy and routes, state. The
/// CIDR and IP version cannot change. Bound instances get the new routes and gateway.
#[utoipa::path(patch, path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])), request_body = UpdateSegment,
    responses((status = 200, body = Segment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateSegment>,
) -> ApiResult<ApiJson<Segment>> {
    for (field, present) in [
        ("cidr", req.cidr.is_some()),
        ("ip_version", req.ip_version.is_some()),
    ] {
        if present {
            return Err(ApiError::field(
                field,
                "cannot be changed; delete the segment and add it anew",
            ));
        }
    }
    let current = st
        .store
        .segment_record(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("segment", &id))?;
    let now = &current.spec;
    let cidr = now.net.to_string();
    let gateway = now.gateway.to_string();
    let policy = req.route_policy.unwrap_or(now.route_policy);
    // A new policy drops the old list unless one comes with it.
    let kept: Vec<String> = if policy == now.route_policy {
        now.routes.iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let routes = req.routes.clone().unwrap_or(kept);
    let spec = validate::spec(&SegmentInput {
        name: req.name.as_deref().unwrap_or(&now.name),
        ip_version: None,
        cidr: &cidr,
        gateway: req.gateway.as_deref().unwrap_or(&gateway),
        nic: req.nic.as_deref().unwrap_or(&now.nic),
        vlan: req.vlan.unwrap_or(now.vlan.map(i64::from)),
        route_policy: Some(policy),
        routes: &routes,
    })?;
    let state = req.state.unwrap_or(current.state);
    let segment = st
        .store
        .update_segment(&id, &spec, state, now_ms())
        .await?
        .map_err(|r| refused(&id, &cidr, r))?;
    let detail = serde_json::to_string(&req).unwrap_or_default();
    st.store
        .audit(&caller.actor(), "update segment", &id, &detail)
        .await?;
    Ok(ApiJson(segment))
}

/// Delete a segment (admins); refused while any EIP is allocated from it.
#[utoipa::path(delete, path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    st.store
        .delete_segment(&id)
        .await?
        .map_err(|r| refused(&id, &id, r))?;
    st.store
        .audit(&caller.actor(), "delete segment", &id, "")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set who may use a segment (admins): every tenant, or a list. EIPs already allocated stay
/// with their tenants; a tenant left out cannot allocate there again.
#[utoipa::path(put, path = "/v1/segments/{id}/permissions", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    request_body = SetSegmentPermission,
    responses((status = 200, body = Segment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_permissions(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SetSegmentPermission>,
) -> ApiResult<ApiJson<Segment>> {
    let permission = permission(&st, &req).await?;
    let segment = st
        .store
        .set_segment_permission(&id, &permission, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("segment", &id))?;
    st.store
        .audit(
            &caller.actor(),
            "set segment permission",
            &id,
            &segment.permission.to_string(),
        )
        .await?;
    Ok(ApiJson(segment))
}
