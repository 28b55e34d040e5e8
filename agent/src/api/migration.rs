//! Live migration between two agents, as the coordinator drives it: `prepare-migration` on
//! the target (the instance's files, no domain), then `migrate` on the source (202: it runs
//! in the background), `migration` to follow it, and `DELETE migration` to abort it.

use super::error;
use super::instances::{Body, answer, bad_body, detached, detached_as};
use crate::runtime::Agent;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use plinth_common::api::{AgentCreateInstance, AgentMigrate};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `?shared_storage=ID`: the source keeps the disks on that shared storage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareQuery {
    shared_storage: Option<String>,
}

pub async fn prepare(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    query: Result<Query<PrepareQuery>, QueryRejection>,
    body: Body<AgentCreateInstance>,
) -> Response {
    let shared = match query {
        Ok(Query(q)) => q.shared_storage,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("shared_storage: {}", rejection.body_text()),
            );
        }
    };
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    if req.instance_id != id {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the body's instance_id '{}' is not the path's '{id}'",
                req.instance_id
            ),
        );
    }
    let link = agent.coordinator_link();
    detached(async move {
        agent
            .instances
            .prepare_migration(req, &link, shared.as_deref())
            .await
    })
    .await
}

pub async fn migrate(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Body<AgentMigrate>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    detached_as(StatusCode::ACCEPTED, async move {
        agent.instances.migrate(&id, req).await
    })
    .await
}

/// `?wait_ms=N`: answer once the migration ends, or after N ms (at most 30 s).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    wait_ms: Option<u64>,
}

pub async fn status(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    let wait = match query {
        Ok(Query(q)) => q.wait_ms.map(Duration::from_millis),
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("wait_ms: {}", rejection.body_text()),
            );
        }
    };
    answer(agent.instances.migration(&id, wait).await)
}

pub async fn abort(State(agent): State<Arc<Agent>>, Path(id): Path<String>) -> Response {
    answer(agent.instances.abort_migration(&id).await)
}
