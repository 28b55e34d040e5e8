//! `GET /v1/metrics/history`: the host metrics history the agent keeps, for the coordinator's
//! host detail.

use super::ApiError;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::{Query, State};
use plinth_common::api::HostMetrics;
use plinth_common::metrics::HostSeries;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Comma-separated series names; all 14 when absent or empty.
    names: Option<String>,
    /// Only points at or after this time (Unix milliseconds).
    since_ms: Option<i64>,
}

pub async fn history(
    State(agent): State<Arc<Agent>>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HostMetrics>, ApiError> {
    let names =
        HostSeries::parse_list(q.names.as_deref().unwrap_or("")).map_err(ApiError::Invalid)?;
    Ok(Json(agent.metrics.history(
        agent.host_id(),
        &names,
        q.since_ms,
    )))
}
