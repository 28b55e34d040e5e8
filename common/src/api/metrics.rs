//! Host monitoring: the recent history of the seed's 14 host metrics, as the coordinator's
//! `GET /v1/hosts/{id}/metrics` and the agent's `GET /v1/metrics/history` return it.

use crate::metrics::HostSeries;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsSource {
    /// The agent's in-memory ring (the last hour by default).
    Agent,
    /// A Prometheus server that scrapes the agent's `/metrics`.
    Prometheus,
}

/// Series of one host, oldest point first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostMetrics {
    pub host_id: String,
    pub source: MetricsSource,
    /// Seconds between points (a point may be missing where nothing was collected).
    pub step_s: u32,
    pub series: Vec<MetricSeries>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MetricSeries {
    pub name: HostSeries,
    /// bytes/s, packets/s, ops/s, percent, load, connections or processes.
    pub unit: String,
    pub points: Vec<MetricPoint>,
}

/// One value: `t` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricPoint {
    pub t: i64,
    pub v: f64,
}

/// Which instance belongs to which tenant, for the tenant label of per-instance metrics; the
/// coordinator sends it with each heartbeat acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceOwner {
    pub instance_id: String,
    pub tenant_id: String,
}
