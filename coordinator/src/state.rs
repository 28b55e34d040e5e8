//! What every handler shares.

use crate::agents::AgentClient;
use crate::db::Store;
use crate::images::ImageServices;
use crate::scheduler::{Overcommit, Policy};
use plinth_common::tls::Ca;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub ca: Arc<Ca>,
    pub agents: AgentClient,
    pub images: ImageServices,
    pub settings: Arc<Settings>,
    /// Live migrations in flight: their progress and the per-cluster slots.
    pub moves: Arc<crate::maintenance::Moves>,
    /// One-time console URLs and the consoles being watched.
    pub consoles: Arc<crate::baremetal::console::Consoles>,
    /// Every background task starts here; shutdown cancels and waits for them.
    pub jobs: crate::jobs::Jobs,
    /// The change feed (`GET /v1/events`).
    pub events: crate::events::Events,
}

/// Runtime settings handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of the certificates issued to agents (they renew at two thirds of it).
    pub agent_cert_ttl: Duration,
    /// How long a renewed agent certificate stays accepted after its replacement was issued.
    pub renewed_cert_grace: Duration,
    pub overcommit: Overcommit,
    pub policy: Policy,
    pub drains: crate::maintenance::DrainSettings,
    /// Where host metrics history comes from when not from the agents.
    pub prometheus: Option<crate::hosts::prometheus::Prometheus>,
    pub baremetal: crate::baremetal::sync::BaremetalSettings,
    /// The longest TTL an API token may be given (`max_token_ttl`).
    pub max_token_ttl: Duration,
    /// How long browser sessions live (`session_ttl`, `session_idle_timeout`).
    pub sessions: crate::tenants::sessions::SessionSettings,
    /// This coordinator's id in the region (`jobs::lease::Identity`).
    pub coordinator: String,
    pub job_lease_ttl: Duration,
    /// When this process started (Unix ms): what the store holds from before is a past run's.
    pub started_at: i64,
}
