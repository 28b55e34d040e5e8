//! `GET /v1/coordinators`: the region's coordinators and who runs its jobs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One coordinator of the region, as its heartbeats in the store show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoordinatorStatus {
    /// Its name in the region (`coordinator_name`, else hostname and listen address).
    pub name: String,
    /// The address it listens on.
    pub address: String,
    pub started_at: String,
    /// Its last heartbeat, on the database's clock.
    pub heartbeat_at: String,
    /// Whether it beat within two lease TTLs (it beats every third of one).
    pub alive: bool,
    /// Whether it holds the job lease now (it runs the region's jobs).
    pub runs_jobs: bool,
}

/// The job lease: which coordinator runs the region's jobs, in which term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLeaseStatus {
    /// `None` while nobody holds it (between a holder's end and the next's start).
    pub holder: Option<String>,
    /// The term: it goes up each time the lease changes hands.
    pub epoch: i64,
    /// Milliseconds until it expires unless renewed; 0 once expired.
    pub expires_in_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoordinatorList {
    /// By name.
    pub items: Vec<CoordinatorStatus>,
    pub job_lease: JobLeaseStatus,
}
