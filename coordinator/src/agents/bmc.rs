//! Bare metal through the agent: probe, power, power and health sweeps, forgetting a BMC, serial over
//! LAN and the Redfish inventory.

use super::{AgentClient, AgentError, CALL};
use crate::agents::AgentEndpoint;
use plinth_common::api::agent_routes as routes;
use plinth_common::api::{
    AgentBmc, AgentHealthReading, AgentHealthSweep, AgentPower, AgentPowerReading, AgentPowerState,
    AgentPowerSweep, AgentProbe, AgentSolIo, AgentSolOutput, Inventory,
};
use reqwest::Method;
use serde::de::IgnoredAny;
use std::time::Duration;

/// A probe opens a session and reads FRU in parts: a few exchanges, each with its deadline.
const BMC_CALL: Duration = Duration::from_secs(120);
/// A soft reboot waits for the OS (up to five minutes), then powers on.
const POWER_CALL: Duration = Duration::from_secs(420);
/// A sweep polls many BMCs with bounded concurrency.
const SWEEP_CALL: Duration = Duration::from_secs(600);
/// Serial over LAN: one activation or one console step.
const SOL_CALL: Duration = Duration::from_secs(60);

impl AgentClient {
    /// Bare metal: the agent reads the BMC's device id, FRU and power (preparation).
    pub async fn bmc_probe(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
    ) -> Result<AgentProbe, AgentError> {
        self.call(
            ep,
            Method::POST,
            routes::BMC_PROBE,
            &[],
            Some(bmc),
            BMC_CALL,
        )
        .await
    }

    /// Bare metal: one power action; a soft reboot waits for the OS (up to five minutes).
    pub async fn bmc_power(
        &self,
        ep: &AgentEndpoint,
        req: &AgentPower,
    ) -> Result<AgentPowerState, AgentError> {
        self.call(
            ep,
            Method::POST,
            routes::BMC_POWER,
            &[],
            Some(req),
            POWER_CALL,
        )
        .await
    }

    /// Bare metal: the power of many BMCs, polled by the agent with bounded concurrency.
    pub async fn bmc_power_status(
        &self,
        ep: &AgentEndpoint,
        req: &AgentPowerSweep,
    ) -> Result<Vec<AgentPowerReading>, AgentError> {
        let path = routes::BMC_POWER_STATUS;
        self.call(ep, Method::POST, path, &[], Some(req), SWEEP_CALL)
            .await
    }

    /// Bare metal: the sensors and new event-log entries of many BMCs, read by the agent with
    /// bounded concurrency.
    pub async fn bmc_health(
        &self,
        ep: &AgentEndpoint,
        req: &AgentHealthSweep,
    ) -> Result<Vec<AgentHealthReading>, AgentError> {
        let path = routes::BMC_HEALTH;
        self.call(ep, Method::POST, path, &[], Some(req), SWEEP_CALL)
            .await
    }

    /// Bare metal: the agent closes its session with this BMC (the server was deleted).
    pub async fn bmc_forget(&self, ep: &AgentEndpoint, bmc: &AgentBmc) -> Result<(), AgentError> {
        let path = routes::BMC_FORGET;
        self.call::<IgnoredAny>(ep, Method::POST, path, &[], Some(bmc), CALL)
            .await
            .map(drop)
    }

    /// Bare metal: activate (`true`) or deactivate the BMC's serial over LAN.
    pub async fn bmc_sol(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
        activate: bool,
    ) -> Result<(), AgentError> {
        let path = if activate {
            routes::BMC_SOL_ACTIVATE
        } else {
            routes::BMC_SOL_DEACTIVATE
        };
        self.call::<IgnoredAny>(ep, Method::POST, path, &[], Some(bmc), SOL_CALL)
            .await
            .map(drop)
    }

    /// Bare metal: CPUs, memory and PCIe devices from the BMC's Redfish service.
    pub async fn bmc_inventory(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
    ) -> Result<Inventory, AgentError> {
        let path = routes::BMC_INVENTORY;
        self.call(ep, Method::POST, path, &[], Some(bmc), BMC_CALL)
            .await
    }

    /// Bare metal: one console step — keys in, serial output out.
    pub async fn bmc_sol_io(
        &self,
        ep: &AgentEndpoint,
        req: &AgentSolIo,
    ) -> Result<AgentSolOutput, AgentError> {
        self.call(
            ep,
            Method::POST,
            routes::BMC_SOL_IO,
            &[],
            Some(req),
            SOL_CALL,
        )
        .await
    }
}
