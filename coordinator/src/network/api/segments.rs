//! `/v1/segments` (SPEC §6): the admin records external segments (CIDR, gateway, NIC, VLAN,
//! route policy) and says which tenants may use each; tenants list the ones they may use.

use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::PageQuery;
use crate::network;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use plinth_common::api::{
    ErrorBody, NewSegment, Segment, SegmentPage, SetSegmentPermission, UpdateSegment,
};
use plinth_common::ids::SegmentId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/segments", get(list).post(create))
        .route("/v1/segments/{id}", get(show).patch(update).delete(delete))
        .route("/v1/segments/{id}/permissions", put(set_permissions))
}

/// Segments: admins see all; a tenant sees those it may use.
#[utoipa::path(get, operation_id = "list_segments", path = "/v1/segments", tag = "segments", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = SegmentPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<SegmentPage>> {
    let page = q.page::<String>("segments")?;
    let (rows, total) = st
        .store
        .list_segments(caller.tenant_id(), page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish(rows, |s| (s.name.clone(), s.id.clone()));
    Ok(ApiJson(SegmentPage {
        items,
        total,
        next_cursor,
    }))
}

/// Add a segment (admins). It must not overlap another; a NIC and VLAN carry at most one
/// IPv4 and one IPv6 segment.
#[utoipa::path(post, operation_id = "create_segment", path = "/v1/segments", tag = "segments", security(("bearer" = [])), request_body = NewSegment,
    responses((status = 201, body = Segment), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiJson(req): ApiJson<NewSegment>,
) -> ApiResult<(StatusCode, ApiJson<Segment>)> {
    let segment = network::create_segment(&st, &caller.actor(), &req).await?;
    Ok((StatusCode::CREATED, ApiJson(segment)))
}

#[utoipa::path(get, operation_id = "show_segment", path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    responses((status = 200, body = Segment), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<SegmentId>,
) -> ApiResult<ApiJson<Segment>> {
    st.store
        .segment(&id, caller.tenant_id())
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::not_found("segment", &id))
}

/// Change a segment (admins): name, gateway, NIC, VLAN, route policy and routes, state. The
/// CIDR and IP version cannot change. Bound instances get the new routes and gateway.
#[utoipa::path(patch, operation_id = "update_segment", path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])), request_body = UpdateSegment,
    responses((status = 200, body = Segment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<SegmentId>,
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
    let segment = network::update_segment(&st, &caller.actor(), &id, &req).await?;
    Ok(ApiJson(segment))
}

/// Delete a segment (admins); refused while any EIP is allocated from it.
#[utoipa::path(delete, operation_id = "delete_segment", path = "/v1/segments/{id}", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<SegmentId>,
) -> ApiResult<StatusCode> {
    network::delete_segment(&st, &caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set who may use a segment (admins): every tenant, or a list. EIPs already allocated stay
/// with their tenants; a tenant left out cannot allocate there again.
#[utoipa::path(put, path = "/v1/segments/{id}/permissions", params(("id" = String, Path, description = "segment id")), tag = "segments", security(("bearer" = [])),
    request_body = SetSegmentPermission,
    responses((status = 200, body = Segment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_permissions(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<SegmentId>,
    ApiJson(req): ApiJson<SetSegmentPermission>,
) -> ApiResult<ApiJson<Segment>> {
    let segment = network::set_segment_permission(&st, &caller.actor(), &id, &req).await?;
    Ok(ApiJson(segment))
}
