//! Compute hosts as the API shows them (SPEC §2).

use crate::host::HostState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Online,
    Offline,
}

/// One compute host: the seed's ten list fields plus agent connectivity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Host {
    pub id: String,
    pub ip: String,
    pub cluster_id: String,
    pub cpu_model: String,
    pub total_cores: u32,
    pub allocated_cores: u32,
    pub total_memory_bytes: u64,
    pub allocated_memory_bytes: u64,
    /// RFC 3339.
    pub updated_at: String,
    pub state: HostState,
    pub agent: AgentStatus,
    /// RFC 3339 time of the last heartbeat; absent before the first.
    pub last_seen: Option<String>,
    pub hostname: String,
}

/// `GET /v1/hosts/{id}`: the list fields plus what the agent last reported.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostDetail {
    #[serde(flatten)]
    pub host: Host,
    pub created_at: String,
    pub libvirt_uri: String,
    pub hypervisor: String,
    pub agent_version: String,
    /// Where the coordinator reaches the agent's mTLS API.
    pub agent_api: Option<String>,
    /// Expiry (RFC 3339) of the agent certificate the coordinator last issued.
    pub agent_cert_expires_at: Option<String>,
    pub domains: Vec<Domain>,
    /// Domains on the host that no plinth instance accounts for: reported, never deleted.
    pub unknown_domains: Vec<String>,
}

/// A libvirt domain as the agent last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Domain {
    pub uuid: String,
    pub name: String,
    /// libvirt's state: running, paused, shutoff, ...
    pub state: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
}
