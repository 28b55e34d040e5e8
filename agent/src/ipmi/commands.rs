//! Commands on an open session and what their answers mean: Get Device ID, Get Chassis
//! Status, Chassis Control, Get Session Info.

use super::IpmiError;
use super::session::{NETFN_APP, NETFN_CHASSIS, Session};
use serde::{Deserialize, Serialize};

fn short(command: &'static str, need: usize, got: usize) -> IpmiError {
    IpmiError::Malformed {
        command,
        detail: format!("{got} data bytes, need {need}"),
    }
}

/// Get Device ID's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceId {
    pub device_id: u8,
    pub device_revision: u8,
    /// `major.minor` (minor is BCD).
    pub firmware: String,
    /// `major.minor` of the IPMI spec the BMC implements.
    pub ipmi_version: String,
    /// IANA enterprise number.
    pub manufacturer_id: u32,
    pub product_id: u16,
}

/// What the chassis reports about its power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChassisStatus {
    pub power_on: bool,
    pub power_overload: bool,
    pub power_fault: bool,
    pub power_control_fault: bool,
}

/// Chassis Control's actions (IPMI v2.0 §28.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChassisControl {
    PowerDown,
    PowerUp,
    PowerCycle,
    HardReset,
    /// ACPI soft shutdown through the OS.
    SoftShutdown,
}

impl ChassisControl {
    fn code(self) -> u8 {
        match self {
            ChassisControl::PowerDown => 0x00,
            ChassisControl::PowerUp => 0x01,
            ChassisControl::PowerCycle => 0x02,
            ChassisControl::HardReset => 0x03,
            ChassisControl::SoftShutdown => 0x05,
        }
    }
}

/// Get Session Info for the current session: how many sessions the BMC has open, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub possible: u8,
    pub active: u8,
}

impl Session {
    pub async fn device_id(&mut self) -> Result<DeviceId, IpmiError> {
        const NAME: &str = "get device id";
        let d = self.command(NAME, NETFN_APP, 0x01, &[]).await?;
        if d.len() < 11 {
            return Err(short(NAME, 11, d.len()));
        }
        Ok(DeviceId {
            device_id: d[0],
            device_revision: d[1] & 0x0f,
            firmware: format!("{}.{:02x}", d[2] & 0x7f, d[3]),
            ipmi_version: format!("{}.{}", d[4] & 0x0f, d[4] >> 4),
            manufacturer_id: u32::from_le_bytes([d[6], d[7], d[8] & 0x0f, 0]),
            product_id: u16::from_le_bytes([d[9], d[10]]),
        })
    }

    pub async fn chassis_status(&mut self) -> Result<ChassisStatus, IpmiError> {
        const NAME: &str = "get chassis status";
        let d = self.command(NAME, NETFN_CHASSIS, 0x01, &[]).await?;
        let Some(&b) = d.first() else {
            return Err(short(NAME, 1, 0));
        };
        Ok(ChassisStatus {
            power_on: b & 0x01 != 0,
            power_overload: b & 0x02 != 0,
            power_fault: b & 0x08 != 0,
            power_control_fault: b & 0x10 != 0,
        })
    }

    pub async fn chassis_control(&mut self, action: ChassisControl) -> Result<(), IpmiError> {
        self.command("chassis control", NETFN_CHASSIS, 0x02, &[action.code()])
            .await
            .map(drop)
    }

    pub async fn session_counts(&mut self) -> Result<SessionCounts, IpmiError> {
        const NAME: &str = "get session info";
        let d = self.command(NAME, NETFN_APP, 0x3d, &[0x00]).await?;
        if d.len() < 3 {
            return Err(short(NAME, 3, d.len()));
        }
        Ok(SessionCounts {
            possible: d[1] & 0x3f,
            active: d[2] & 0x3f,
        })
    }
}
