//! Request and response bodies of the coordinator's HTTP API and the agent API, shared so the
//! servers, the CLI and the tests agree on one shape.

pub mod agent;
pub mod agent_routes;
pub mod auth;
pub mod baremetal;
pub mod coordinators;
pub mod devices;
pub mod error;
pub mod hardware;
pub mod hosts;
pub mod images;
pub mod instances;
pub mod maintenance;
pub mod metrics;
pub mod operation_kinds;
pub mod operations;
pub mod segments;

pub use agent::*;
pub use auth::*;
pub use baremetal::*;
pub use coordinators::*;
pub use devices::*;
pub use error::*;
pub use hardware::*;
pub use hosts::*;
pub use images::*;
pub use instances::*;
pub use maintenance::*;
pub use metrics::*;
pub use operations::*;
pub use segments::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A page of hosts and how many match in all.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostPage {
    pub items: Vec<Host>,
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
