//! Instances as the coordinator's API shows them (SPEC §3), tenant quotas, and the agent API's
//! instance calls (coordinator → agent over mTLS).

use crate::instance::{InstanceKind, InstanceState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub kind: InstanceKind,
    pub tenant_id: String,
    pub tenant_email: String,
    /// The host it is placed on; none while unplaced (a stopped instance of a drained host).
    pub host_id: Option<String>,
    pub host_ip: Option<String>,
    pub image_id: Option<String>,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    /// A vGPU type or GPU model, when one was asked for.
    pub gpu_type: Option<String>,
    /// Devices attached to it (USB and PCI addresses); managed by the devices API.
    pub devices: Vec<String>,
    pub state: InstanceState,
    /// Why it is in `error`, or what reconciliation noticed.
    pub state_reason: Option<String>,
    /// The libvirt domain's UUID on its host: the seed's "resource id".
    pub resource_id: Option<String>,
    /// The job working on it now, if any.
    pub operation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<Instance>,
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `POST /v1/instances`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstance {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: InstanceKind,
    /// Admins name the tenant; a tenant's own token implies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub image_id: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// Defaults to the image's target size, or its virtual size, whichever is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Place it in this cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Set for the guest's administrator through cloud-init; stored sealed, never returned.
    pub admin_password: String,
    /// EIPs of the tenant's (allocated, not bound) to bind at create: the instance gets a NIC
    /// on each one's segment, configured by cloud-init at first boot, and is placed only on a
    /// host that reaches those segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eips: Vec<String>,
}

fn default_kind() -> InstanceKind {
    InstanceKind::Vm
}

/// `POST /v1/instances/{id}/stop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInstance {
    /// Seconds the guest gets to shut down before it is forced off (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

/// `POST /v1/instances/{id}/export-image`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInstance {
    pub name: String,
}

/// Per-tenant limits (`PUT /v1/tenants/{id}/quota`); none means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub cores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub instances: Option<u64>,
}

/// What a tenant's instances hold now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaUsage {
    pub cores: u64,
    pub memory_bytes: u64,
    pub instances: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantQuota {
    pub tenant_id: String,
    pub quota: Quota,
    pub usage: QuotaUsage,
}

// ---- agent API -------------------------------------------------------------------------------

/// The image an instance boots from, as the agent fetches it from the coordinator
/// (`GET /v1/agent/images/{id}/content`) into its cache, keyed by `sha256`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentImage {
    pub id: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// `qcow2` or `iso`: a qcow2 is the backing file of the instance's disk; an ISO is attached
    /// as a CD-ROM in front of an empty disk.
    pub format: String,
}

/// Agent API `POST /v1/instances`: make the disk, the cloud-init seed and the domain, and
/// start it. Idempotent: a repeat for an instance whose domain exists answers what exists.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentCreateInstance {
    pub instance_id: String,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub image: AgentImage,
    pub admin_password: String,
    /// Devices the domain is defined with: `vgpu:<mdev uuid or VF address>`, `gpu:<PCI
    /// address>` (USB devices are attached later, by assignment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// One virtio NIC per bound EIP, in binding order, on the bridge of its segment's uplink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<AgentNic>,
}

/// One NIC of an instance: the EIP it carries and what the guest is configured with for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentNic {
    /// Recorded by the coordinator with the binding, so it stays the same across hosts.
    pub mac: String,
    pub uplink: crate::api::Uplink,
    /// The EIP, e.g. `203.0.113.10`.
    pub address: String,
    pub prefix_len: u8,
    pub gateway: String,
    /// Destinations reached through the gateway (the segment's route policy): `0.0.0.0/0` or
    /// `::/0` for `default`, the admin's CIDRs for `specified`, none for `none`.
    pub routes: Vec<String>,
}

/// The domain behind an instance, as the agent sees it now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstance {
    pub instance_id: String,
    pub domain_uuid: String,
    /// libvirt's state: running, shutoff, paused, ...
    pub state: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// The instance disk and its backing file (the cached image), when it has one.
    pub disk_path: String,
    pub backing_file: Option<String>,
}

/// Agent API `POST /v1/instances/{id}/stop`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentStop {
    pub timeout_s: u64,
}

/// Agent API `POST /v1/instances/{id}/export`: flatten the disk with `qemu-img convert` and PUT
/// it to the coordinator at `PUT /v1/agent/images/{image_id}/content`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentExport {
    pub image_id: String,
}

/// The agent's answer to an export: what it uploaded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentExported {
    pub image_id: String,
    pub size_bytes: u64,
    pub sha256: String,
}
