//! Enrollment, heartbeat and certificate renewal: what agents send the coordinator, and the
//! facts the agent API returns.

use crate::api::Domain;
use crate::host::HostState;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// `POST /v1/enroll`: a one-time token and a CSR for a key made on the host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollRequest {
    pub token: String,
    /// PEM certificate signing request; only its public key is used.
    pub csr_pem: String,
    pub cluster_id: String,
    /// The address the coordinator reaches the agent at; it goes into the certificate's SANs.
    #[schema(value_type = String)]
    pub address: IpAddr,
    pub hostname: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub host_id: String,
    pub certificate_pem: String,
    pub ca_pem: String,
}

/// `POST /v1/agent/hosts/{id}/renew`, over mTLS with the current certificate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewRequest {
    pub csr_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RenewResponse {
    pub certificate_pem: String,
}

/// What the agent knows of its host; sent on every heartbeat and served by the agent API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostFacts {
    pub hostname: String,
    pub cpu_model: String,
    pub total_cores: u32,
    pub total_memory_bytes: u64,
    pub libvirt_uri: String,
    /// libvirt's driver type, e.g. `QEMU` or `TEST`.
    pub hypervisor: String,
    pub agent_version: String,
    /// The libvirt URI other hosts' libvirtd reach this one's at for live migration (`None`
    /// from an agent older than migration).
    #[serde(default)]
    pub migration_uri: Option<String>,
    /// Where QEMU on this host listens for a migrating guest (`tcp://host`), when not the
    /// address libvirt would pick.
    #[serde(default)]
    pub migrate_uri: Option<String>,
    /// The id of the shared storage this host keeps instance disks on (the same id on every
    /// host that mounts it); `None` when disks are local.
    #[serde(default)]
    pub shared_storage: Option<String>,
    /// Whether this agent may speak IPMI to bare-metal BMCs (agent config `ipmi`); agents
    /// older than bare metal say nothing and are taken as willing.
    #[serde(default = "willing")]
    pub ipmi: bool,
    /// The host's network interfaces an external segment may name as its NIC (every link but
    /// loopback and what plinth made itself); the host serves the segments on these.
    #[serde(default)]
    pub nics: Vec<String>,
}

fn willing() -> bool {
    true
}

/// `POST /v1/agent/hosts/{id}/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Heartbeat {
    pub facts: HostFacts,
    pub domains: Vec<Domain>,
    /// Port of the agent's mTLS API on its enrolled address.
    pub api_port: u16,
    /// How often the agent beats; the coordinator marks it offline after three missed.
    pub interval_ms: u64,
    /// The host's USB devices, GPUs and vGPUs: sent when they changed since the last beat
    /// the coordinator took (and on the first), absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<crate::api::DeviceInventory>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAck {
    pub host_id: String,
    pub state: HostState,
    /// The tenant of each instance placed on (or migrating to) the host, for the labels of
    /// its metrics (empty from a coordinator older than monitoring).
    #[serde(default)]
    pub owners: Vec<crate::api::InstanceOwner>,
    /// Serials of the coordinator's own certificates that were rotated out: the agent refuses
    /// them from now on, as client and as server.
    #[serde(default)]
    pub revoked_coordinator_serials: Vec<String>,
    /// Every segment's uplink (NIC and VLAN): the agent keeps the bridges of these and removes
    /// the unused bridges it made for any other (a deleted segment's).
    #[serde(default)]
    pub uplinks: Vec<Uplink>,
    /// The NICs of the instances on (or migrating to) the host, with their EIPs and routes as
    /// now: the agent's DHCP servers answer these MACs and no others.
    #[serde(default)]
    pub leases: Vec<crate::api::AgentNic>,
}

/// What a host on libvirt's test driver reports as its NICs: its network is make-believe and
/// reaches every segment.
pub const ANY_NIC: &str = "*";

/// Whether a host with `nics` (its facts) reaches a segment on `nic`.
pub fn has_nic(nics: &[String], nic: &str) -> bool {
    nics.iter().any(|n| n == nic || n == ANY_NIC)
}

/// Where an external segment leaves a host: its NIC, tagged with the VLAN when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Uplink {
    pub nic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// The agent API's `GET /v1/facts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentFacts {
    pub host_id: String,
    pub facts: HostFacts,
    pub domains: Vec<Domain>,
}
