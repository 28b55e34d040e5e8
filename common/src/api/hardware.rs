//! Hardware monitoring of bare-metal servers (issue 24): sensor readings and the BMC's event
//! log as the agent reads them, as the coordinator keeps them, and the health summary a
//! server's list entry carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AgentBmc;

/// A sensor's state against its thresholds, worst last.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SensorStatus {
    Ok,
    /// The BMC has no reading now (sensor absent, scanning off, or not yet read).
    NotAvailable,
    NonCritical,
    Critical,
    NonRecoverable,
}

impl SensorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorStatus::Ok => "ok",
            SensorStatus::NotAvailable => "not_available",
            SensorStatus::NonCritical => "non_critical",
            SensorStatus::Critical => "critical",
            SensorStatus::NonRecoverable => "non_recoverable",
        }
    }

    /// ipmi_exporter's `ipmi_sensor_state`: 0 nominal, 1 warning, 2 critical, NaN unknown.
    pub fn exporter_state(self) -> f64 {
        match self {
            SensorStatus::Ok => 0.0,
            SensorStatus::NonCritical => 1.0,
            SensorStatus::Critical | SensorStatus::NonRecoverable => 2.0,
            SensorStatus::NotAvailable => f64::NAN,
        }
    }
}

/// The thresholds a sensor record gives, converted to the sensor's unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorThresholds {
    pub lower_non_recoverable: Option<f64>,
    pub lower_critical: Option<f64>,
    pub lower_non_critical: Option<f64>,
    pub upper_non_critical: Option<f64>,
    pub upper_critical: Option<f64>,
    pub upper_non_recoverable: Option<f64>,
}

/// One sensor of a server and its current reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sensor {
    pub name: String,
    /// `temperature`, `fan`, `voltage`, `current`, `power`, or the IPMI sensor type in words.
    pub kind: String,
    /// The reading converted with the record's linear formula; null for discrete sensors and
    /// when the BMC has no reading.
    pub value: Option<f64>,
    /// `°C`, `RPM`, `V`, `A`, `W` ...; null when the record names none.
    pub unit: Option<String>,
    pub thresholds: SensorThresholds,
    pub status: SensorStatus,
}

/// One entry of a BMC's system event log, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HardwareEvent {
    /// The BMC's record id (ids restart when the log is cleared).
    pub record_id: u32,
    /// When the BMC logged it (RFC 3339); null when the BMC's clock was not set.
    pub time: Option<String>,
    /// The sensor's name when the SDR has it, else its type and number.
    pub sensor: String,
    /// The sensor type in words (`Temperature`, `Memory` ...).
    pub sensor_type: String,
    /// `assert` or `deassert`.
    pub direction: String,
    /// What happened, in words.
    pub description: String,
}

/// A server's health from its sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Warning,
    Critical,
    /// Not read yet, or the BMC did not answer the last poll.
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Critical => "critical",
            Health::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        [
            Health::Ok,
            Health::Warning,
            Health::Critical,
            Health::Unknown,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }
}

/// What a server's list entry says about its hardware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthSummary {
    pub health: Health,
    /// The worst sensor when health is warning or critical.
    pub worst_sensor: Option<String>,
    /// When the sensors were last read (RFC 3339).
    pub read_at: Option<String>,
}

impl HealthSummary {
    /// A server whose sensors were never read.
    pub fn not_read() -> HealthSummary {
        HealthSummary {
            health: Health::Unknown,
            worst_sensor: None,
            read_at: None,
        }
    }

    /// The summary of a set of readings: the worst status decides, and names its sensor.
    pub fn of(sensors: &[Sensor]) -> (Health, Option<String>) {
        let worst = sensors
            .iter()
            .filter(|s| s.status > SensorStatus::NotAvailable)
            .max_by_key(|s| s.status);
        match worst {
            None => (Health::Ok, None),
            Some(s) if s.status == SensorStatus::NonCritical => {
                (Health::Warning, Some(s.name.clone()))
            }
            Some(s) => (Health::Critical, Some(s.name.clone())),
        }
    }
}

/// `GET /v1/baremetal/{id}/sensors`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SensorList {
    pub health: HealthSummary,
    pub items: Vec<Sensor>,
    /// Why the last poll failed, in words; null when it worked.
    pub error: Option<String>,
}

/// `GET /v1/baremetal/{id}/events`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HardwareEventList {
    pub items: Vec<HardwareEvent>,
}

/// Where the agent left off in a BMC's event log: the last entry read and its timestamp (so
/// a cleared log whose ids restart is told apart from the same entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SelCursor {
    pub record_id: u16,
    pub timestamp: u32,
}

/// `POST /v1/bmc/health` on an agent: read sensors and new SEL entries of many BMCs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentHealthSweep {
    pub servers: Vec<AgentHealthItem>,
    pub concurrency: u32,
    /// SEL entries read per server per sweep at most (the rest next time).
    pub max_events: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentHealthItem {
    pub id: String,
    pub bmc: AgentBmc,
    /// Null: the log was never read; read it from its first entry.
    pub sel_after: Option<SelCursor>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentHealthReading {
    pub id: String,
    /// Null when the BMC could not be read (then `error` says why).
    pub sensors: Option<Vec<Sensor>>,
    /// Entries after the cursor, oldest first.
    #[serde(default)]
    pub events: Vec<HardwareEvent>,
    /// Where to continue next time; null when nothing was read.
    pub sel_cursor: Option<SelCursor>,
    /// The cursor's entry was gone: the log was cleared or wrapped and was read from its start.
    #[serde(default)]
    pub sel_reset: bool,
    pub error: Option<String>,
}
