//! Live migration between two agents, as the coordinator drives it: `prepare-migration` on
//! the target (the instance's files, no domain), then `migrate` on the source (202: it runs
//! in the background), `migration` to follow it, and `DELETE migration` to abort it.

use super::instances::WORKER;
use super::{ApiError, Body, detached};
use crate::runtime::Agent;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use plinth_common::api::{AgentCreateInstance, AgentMigrate, AgentMigration, AgentPrepared};
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
) -> Result<Json<AgentPrepared>, ApiError> {
    let shared = query
        .map_err(|r| ApiError::Invalid(format!("shared_storage: {}", r.body_text())))?
        .0
        .shared_storage;
    let Json(req) = body?;
    if req.instance_id != id {
        return Err(ApiError::Invalid(format!(
            "the body's instance_id '{}' is not the path's '{id}'",
            req.instance_id
        )));
    }
    let link = agent.coordinator_link();
    detached(WORKER, async move {
        agent
            .instances
            .prepare_migration(req, &link, shared.as_deref())
            .await
    })
    .await
    .map(Json)
}

pub async fn migrate(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Body<AgentMigrate>,
) -> Result<(StatusCode, Json<AgentMigration>), ApiError> {
    let Json(req) = body?;
    let started = detached(
        WORKER,
        async move { agent.instances.migrate(&id, req).await },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
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
) -> Result<Json<AgentMigration>, ApiError> {
    let wait = query
        .map_err(|r| ApiError::Invalid(format!("wait_ms: {}", r.body_text())))?
        .0
        .wait_ms
        .map(Duration::from_millis);
    Ok(Json(agent.instances.migration(&id, wait).await?))
}

pub async fn abort(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Json<AgentMigration>, ApiError> {
    Ok(Json(agent.instances.abort_migration(&id).await?))
}
