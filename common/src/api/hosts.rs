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
    /// The host's NICs an external segment may name (what the agent reports; `*` on libvirt's
    /// test driver, whose make-believe network reaches every segment).
    pub nics: Vec<String>,
    /// The external segments on those NICs: instances with their EIPs may run here.
    pub segments: Vec<String>,
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

/// Where an agent certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// Accepted.
    Current,
    /// Replaced by a renewal; accepted until `revoked_at` (a short grace).
    Revoking,
    Revoked,
    Expired,
}

/// `GET /v1/hosts/{id}/certificates`: one certificate the CA issued to the host's agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostCertificate {
    /// Lowercase hex.
    pub serial: String,
    pub status: CertificateStatus,
    pub issued_at: String,
    pub expires_at: String,
    /// When it is (or was) refused from.
    pub revoked_at: Option<String>,
    /// renewed, re-enrolled, host removed, or the reason an admin gave.
    pub reason: Option<String>,
}

/// `DELETE /v1/hosts/{id}` query: only an empty host is removed unless forced with a reason.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveHost {
    /// Remove the host although instances are placed on it; they end in `error`.
    #[serde(default)]
    pub force: bool,
    /// Why (required with `force`; recorded in the audit log and the instances' reason).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a removal did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostRemoved {
    pub id: String,
    /// Instances that were on the host (forced removal), now in `error`.
    pub orphaned_instances: Vec<String>,
    /// Certificates revoked with it.
    pub revoked_certificates: u64,
    /// Bare-metal servers whose BMC this host's agent spoke to; another agent takes them.
    pub reassigned_baremetal: u64,
}

/// `POST /v1/hosts/{id}/certificates/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificates {
    pub reason: String,
}

/// `POST /v1/hosts/{id}/reenroll`: a one-time token bound to the host.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReenrollHost {
    /// Lifetime such as `1h` (default 1h, at most 7d).
    #[serde(default)]
    pub ttl: Option<String>,
}

/// `GET /v1/hosts/{id}/certificates`: a page of the host's certificates, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HostCertificatePage {
    pub items: Vec<HostCertificate>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
