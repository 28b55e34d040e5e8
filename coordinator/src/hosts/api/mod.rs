//! `/v1/hosts`: the host registry, its search, and lock/unlock.

pub mod agent;
pub mod clusters;
pub mod enroll;
pub mod identity;
pub mod metrics;

use crate::hosts;
use crate::hosts::store::HostFilter;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::{self, PageRequest};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use plinth_common::api::{AgentFacts, AgentStatus, ErrorBody, Host, HostDetail, HostPage};
use plinth_common::host::{HostEvent, HostState};
use plinth_common::ids::{HostId, validate_slug};
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hosts", get(list))
        .route(
            "/v1/hosts/{id}",
            get(show).delete(crate::hosts::api::identity::remove),
        )
        .route("/v1/hosts/{id}/lock", post(lock))
        .route("/v1/hosts/{id}/unlock", post(unlock))
        .route("/v1/hosts/{id}/agent", get(agent_facts))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostQuery {
    /// Case-insensitive substring of id, ip, cluster or CPU model.
    q: Option<String>,
    cluster: Option<String>,
    /// available, locked, entering_maintenance or maintenance.
    state: Option<String>,
    /// online or offline.
    agent: Option<String>,
    /// Hosts on the page, 1-1000 (default 100).
    limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    cursor: Option<String>,
}

impl HostQuery {
    /// The store's filter and the page asked for (hosts are listed by cluster, then id).
    fn into_filter(self) -> ApiResult<(HostFilter, PageRequest<String>)> {
        let page = paging::request("hosts", self.limit, self.cursor.as_deref())?;
        if let Some(q) = &self.q
            && (q.chars().count() > 200 || q.chars().any(char::is_control))
        {
            return Err(ApiError::field(
                "q",
                "must be at most 200 printable characters",
            ));
        }
        if let Some(cluster) = &self.cluster {
            validate_slug("cluster", cluster).map_err(|m| ApiError::field("cluster", m))?;
        }
        let state = self
            .state
            .map(|s| {
                HostState::parse(&s).ok_or_else(|| {
                    ApiError::field(
                        "state",
                        format!("'{s}' is not a host state (available, locked, entering_maintenance, maintenance)"),
                    )
                })
            })
            .transpose()?;
        let agent = self
            .agent
            .map(|a| match a.as_str() {
                "online" => Ok(AgentStatus::Online),
                "offline" => Ok(AgentStatus::Offline),
                _ => Err(ApiError::field(
                    "agent",
                    format!("'{a}' is neither online nor offline"),
                )),
            })
            .transpose()?;
        let filter = HostFilter {
            q: self.q,
            cluster: self.cluster,
            state,
            agent,
            limit: page.fetch(),
            after: page.after.clone(),
        };
        Ok((filter, page))
    }
}

/// List hosts, with fuzzy search and filters.
#[utoipa::path(get, operation_id = "list_hosts", path = "/v1/hosts", tag = "hosts", params(HostQuery),
    security(("bearer" = [])),
    responses((status = 200, body = HostPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<HostQuery>,
) -> ApiResult<ApiJson<HostPage>> {
    let (filter, page) = query.into_filter()?;
    let (items, total) = st.store.list_hosts(&filter, now_ms()).await?;
    let (items, next_cursor) = page.finish(items, |h| (h.cluster_id.clone(), h.id.clone()));
    Ok(ApiJson(HostPage {
        items,
        total,
        next_cursor,
    }))
}

/// One host with what its agent last reported.
#[utoipa::path(get, operation_id = "show_host", path = "/v1/hosts/{id}", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = HostDetail), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<HostDetail>> {
    let host = st.store.get_host(&id, now_ms()).await?;
    host.map(ApiJson)
        .ok_or_else(|| ApiError::not_found("host", &id))
}

/// A state change of host `id` by `admin`, for callers that hold the id as text (the
/// maintenance API): a malformed id is "not found". The operation is [`hosts::transition`].
pub(crate) async fn transition(
    st: &AppState,
    admin: &Admin,
    id: &str,
    event: HostEvent,
) -> ApiResult<Host> {
    let id = HostId::parse(id).ok_or_else(|| ApiError::not_found("host", id))?;
    Ok(hosts::transition(st, &admin.0.actor(), &id, event).await?)
}

/// Lock a host: it gets no new instances; those on it run on.
#[utoipa::path(post, path = "/v1/hosts/{id}/lock", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn lock(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<Host>> {
    let host = hosts::transition(&st, &admin.0.actor(), &id, HostEvent::Lock).await?;
    Ok(ApiJson(host))
}

/// Unlock a locked host.
#[utoipa::path(post, path = "/v1/hosts/{id}/unlock", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn unlock(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<Host>> {
    let host = hosts::transition(&st, &admin.0.actor(), &id, HostEvent::Unlock).await?;
    Ok(ApiJson(host))
}

/// Ask the host's agent, over mTLS, what it sees now.
#[utoipa::path(get, path = "/v1/hosts/{id}/agent", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = AgentFacts), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn agent_facts(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<AgentFacts>> {
    Ok(ApiJson(hosts::agent_facts(&st, &id).await?))
}
