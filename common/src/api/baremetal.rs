//! Bare metal (SPEC §4): the coordinator's `/v1/baremetal` bodies and the agent API's BMC
//! calls. IPMI passwords travel only inward (add, import, coordinator→agent over mTLS) and
//! are never part of an answer; the types that carry one print it as `..`.

use super::HealthSummary;
use crate::baremetal::{BaremetalState, ConsoleState, PowerAction, PowerState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/baremetal`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBaremetal {
    /// The owning tenant's email (admins must give it; a tenant adds for itself).
    #[serde(default)]
    pub tenant_email: Option<String>,
    pub name: String,
    /// The BMC's address (IPv4 or IPv6); it must be reachable from an IPMI-enabled agent.
    pub ipmi_ip: String,
    pub ipmi_username: String,
    /// Sealed at rest; never returned.
    pub ipmi_password: String,
    pub rack_location: String,
    #[serde(default)]
    pub label: Option<String>,
}

impl std::fmt::Debug for NewBaremetal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewBaremetal")
            .field("tenant_email", &self.tenant_email)
            .field("name", &self.name)
            .field("ipmi_ip", &self.ipmi_ip)
            .field("ipmi_username", &self.ipmi_username)
            .field("ipmi_password", &"..")
            .field("rack_location", &self.rack_location)
            .field("label", &self.label)
            .finish()
    }
}

/// A bare-metal server as listed: the seed's eleven columns and what explains them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Baremetal {
    pub id: String,
    pub name: String,
    pub state: BaremetalState,
    /// Why the server is `failed`, in words.
    pub reason: Option<String>,
    /// Serial number from the FRU (product, else board, else chassis).
    pub sn: Option<String>,
    pub ipmi_ip: String,
    pub tenant_id: String,
    pub tenant_email: String,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
    pub rack_location: String,
    pub label: Option<String>,
    pub power_state: PowerState,
    /// When the power state last changed as plinth saw it.
    pub power_changed_at: Option<String>,
    pub console_state: ConsoleState,
    /// What its sensors sum up to (`GET /v1/baremetal/{id}/sensors` lists them).
    pub health: HealthSummary,
    /// The host whose agent speaks to this server's BMC.
    pub agent_host_id: Option<String>,
    /// The preparation, as an operation (`GET /v1/operations/{id}`).
    pub operation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaremetalPage {
    pub items: Vec<Baremetal>,
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `PATCH /v1/baremetal/{id}`: rack location and label only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBaremetal {
    pub rack_location: Option<String>,
    /// An empty string clears it.
    pub label: Option<String>,
}

/// `POST /v1/baremetal/{id}/power`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    pub action: PowerAction,
    /// With `reboot`: a hard reset instead of soft off then on.
    #[serde(default)]
    pub hard: bool,
}

/// One power-state change as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PowerChange {
    pub at: String,
    pub power_state: PowerState,
    /// `sync` (seen by the periodic poll), `action` (after a power request), `prepare`.
    pub source: String,
}

/// The detail view (SPEC §4): basics from IPMI, hardware from Redfish where the BMC has it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaremetalDetail {
    #[serde(flatten)]
    pub server: Baremetal,
    /// The last power changes, newest first.
    pub power_history: Vec<PowerChange>,
    pub inventory: Inventory,
}

/// Hardware the BMC describes; `source` says where it came from (`redfish`) or `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Inventory {
    pub source: String,
    pub cpus: Option<Vec<CpuInfo>>,
    pub memory: Option<Vec<MemoryModule>>,
    pub pcie_devices: Option<Vec<PcieDevice>>,
    /// Why it is unknown, when it is.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CpuInfo {
    pub model: Option<String>,
    pub cores: Option<u32>,
    pub rated_power_watts: Option<u32>,
    pub l1_cache_kb: Option<u32>,
    pub l2_cache_kb: Option<u32>,
    pub l3_cache_kb: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryModule {
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub capacity_gb: Option<f64>,
    pub speed_mhz: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PcieDevice {
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
}

/// One CSV row's outcome in an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub name: String,
    /// What is wrong with the row; empty when it is fine.
    pub errors: Vec<String>,
    /// The new server's id (only when the whole file was imported).
    pub id: Option<String>,
}

/// `POST /v1/baremetal/import`: all rows or none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub imported: u64,
    pub rows: Vec<ImportRow>,
}

/// `POST /v1/baremetal/import` refused: why, and for a file whose rows were checked, what is
/// wrong with each (`rows` is absent when the request itself is wrong, e.g. no tenant).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportRefused {
    pub error: crate::api::ErrorDetail,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<ImportRow>>,
}

/// `POST /v1/baremetal/{id}/console/prepare`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsoleTicket {
    /// A one-time WebSocket URL (wss://), valid until `expires_at`.
    pub url: String,
    pub expires_at: String,
}

// ---- agent API (mTLS) ----

/// A BMC and its credentials, as the coordinator hands them to an agent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentBmc {
    pub ip: String,
    /// 623 unless a lab says otherwise.
    #[serde(default = "ipmi_port")]
    pub port: u16,
    pub username: String,
    pub password: String,
}

fn ipmi_port() -> u16 {
    623
}

impl std::fmt::Debug for AgentBmc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AgentBmc({}:{} as {})",
            self.ip, self.port, self.username
        )
    }
}

/// What an agent read from a BMC when preparing a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentProbe {
    pub manufacturer_id: u32,
    pub product_id: u16,
    pub firmware: String,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
    pub power_on: bool,
    /// The cipher suite the BMC accepted (3 or 17).
    pub cipher_suite: u8,
}

/// `POST /v1/bmc/power` on an agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentPower {
    pub bmc: AgentBmc,
    pub action: PowerAction,
    #[serde(default)]
    pub hard: bool,
}

/// The chassis power after an action or a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPowerState {
    pub power_on: bool,
}

/// `POST /v1/bmc/power-status`: poll many BMCs, at most `concurrency` at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentPowerSweep {
    pub servers: Vec<AgentSweepItem>,
    pub concurrency: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSweepItem {
    pub id: String,
    pub bmc: AgentBmc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPowerReading {
    pub id: String,
    pub power_on: Option<bool>,
    pub error: Option<String>,
}

/// `POST /v1/bmc/sol/io` on an agent: send `input`, then return what the serial port says
/// (waiting up to `wait_ms` for the first byte). Bytes travel as hex.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSolIo {
    pub bmc: AgentBmc,
    pub input_hex: String,
    pub wait_ms: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentSolOutput {
    pub output_hex: String,
    /// `false` once the BMC ended SOL or the session was replaced: the console is over.
    pub active: bool,
}
