//! `/v1/bmc/*`: what the coordinator asks of the bare-metal servers assigned to this agent —
//! probe (preparation), power actions, power-status sweeps, and forgetting a BMC. Each call
//! runs in its own task, so a coordinator that hangs up never cuts an IPMI exchange short.

use super::{ApiError, Body, detached};
use crate::ipmi::{Ipmi, IpmiError, Password, Target};
use crate::runtime::Agent;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use plinth_common::api::{
    AgentBmc, AgentPower, AgentPowerReading, AgentPowerState, AgentPowerSweep, AgentProbe,
    AgentSolIo, AgentSolOutput, Inventory,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

type Answer<T> = Result<Json<T>, ApiError>;

pub(super) const WORKER: &str = "IPMI task";
pub(super) const MAX_SWEEP_CONCURRENCY: u32 = 256;

pub(super) fn ipmi_of(agent: &Agent) -> Result<Arc<Ipmi>, ApiError> {
    agent.ipmi.clone().ok_or(ApiError::IpmiDisabled)
}

fn bmc_ip(bmc: &AgentBmc) -> Result<IpAddr, ApiError> {
    bmc.ip
        .parse()
        .map_err(|_| ApiError::Invalid(format!("bmc ip '{}' is not an IP address", bmc.ip)))
}

pub(super) fn target(bmc: &AgentBmc) -> Result<Target, ApiError> {
    Ok(Target {
        addr: SocketAddr::new(bmc_ip(bmc)?, bmc.port),
        username: bmc.username.clone(),
        password: Password::new(bmc.password.clone()),
        suite: None,
    })
}

/// The body, or a 400 naming it (these routes answer no 415 or 422).
pub(super) fn body<T>(body: Body<T>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|r| ApiError::Invalid(format!("request body: {}", r.body_text())))
}

/// `POST /v1/bmc/probe`: device id, FRU (serial, model, manufacturer) and power, on one
/// session — what preparing a server needs to know.
pub async fn probe(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Answer<AgentProbe> {
    let ipmi = ipmi_of(&agent)?;
    let t = target(&body(req)?)?;
    detached(WORKER, async move {
        ipmi.run(&t, |s| {
            Box::pin(async move {
                let id = s.device_id().await?;
                let fru = s.fru(0).await?;
                let status = s.chassis_status().await?;
                Ok(AgentProbe {
                    manufacturer_id: id.manufacturer_id,
                    product_id: id.product_id,
                    firmware: id.firmware,
                    serial: fru.serial().map(String::from),
                    model: fru.model().map(String::from),
                    manufacturer: fru.manufacturer().map(String::from),
                    power_on: status.power_on,
                    cipher_suite: s.suite().id(),
                })
            })
        })
        .await
    })
    .await
    .map(Json)
}

/// `POST /v1/bmc/power`.
pub async fn power(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentPower>,
) -> Answer<AgentPowerState> {
    let req = body(req)?;
    let ipmi = ipmi_of(&agent)?;
    let t = target(&req.bmc)?;
    detached(WORKER, async move {
        let power_on = crate::ipmi::power::act(&ipmi, &t, req.action, req.hard).await?;
        tracing::info!(bmc = %t.addr, action = %req.action, power_on, "Power action done.");
        Ok::<_, IpmiError>(AgentPowerState { power_on })
    })
    .await
    .map(Json)
}

/// `POST /v1/bmc/power-status`: every listed BMC's chassis power, at most `concurrency`
/// BMCs at once (each on its own session; one BMC's operations never overlap).
pub async fn power_status(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentPowerSweep>,
) -> Answer<Vec<AgentPowerReading>> {
    let req = body(req)?;
    let ipmi = ipmi_of(&agent)?;
    let mut items = Vec::with_capacity(req.servers.len());
    for s in req.servers {
        items.push((s.id, target(&s.bmc)?));
    }
    let concurrency = req.concurrency.clamp(1, MAX_SWEEP_CONCURRENCY) as usize;
    let work = async move {
        let readings = crate::ipmi::sweep::power_sweep(&ipmi, items, concurrency)
            .await
            .into_iter()
            .map(|(id, outcome)| match outcome {
                Ok(on) => AgentPowerReading {
                    id,
                    power_on: Some(on),
                    error: None,
                },
                Err(err) => AgentPowerReading {
                    id,
                    power_on: None,
                    error: Some(err.to_string()),
                },
            })
            .collect::<Vec<_>>();
        Ok::<_, IpmiError>(readings)
    };
    detached(WORKER, work).await.map(Json)
}

/// `POST /v1/bmc/forget`: close the BMC's session; the server is no longer managed here.
pub async fn forget(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentBmc>,
) -> Result<StatusCode, ApiError> {
    let ipmi = ipmi_of(&agent)?;
    let t = target(&body(req)?)?;
    ipmi.forget(t.addr).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Longest a console read waits for the serial port to say something.
const MAX_SOL_WAIT: Duration = Duration::from_secs(5);

/// `POST /v1/bmc/sol/activate`: SOL on the BMC's session (taking over a stale one).
pub async fn sol_activate(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentBmc>,
) -> Answer<serde_json::Value> {
    sol_switch(&agent, req, true).await
}

/// `POST /v1/bmc/sol/deactivate`.
pub async fn sol_deactivate(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentBmc>,
) -> Answer<serde_json::Value> {
    sol_switch(&agent, req, false).await
}

async fn sol_switch(agent: &Agent, req: Body<AgentBmc>, on: bool) -> Answer<serde_json::Value> {
    let ipmi = ipmi_of(agent)?;
    let t = target(&body(req)?)?;
    detached(WORKER, async move {
        if on {
            ipmi.run(&t, |s| Box::pin(s.sol_activate())).await?;
        } else {
            ipmi.run(&t, |s| Box::pin(s.sol_deactivate())).await?;
        }
        Ok::<_, IpmiError>(serde_json::json!({}))
    })
    .await
    .map(Json)
}

/// `POST /v1/bmc/sol/io`: one step of a console: the viewer's keys in, the port's bytes out.
/// The BMC's lock is held only for this step, so power polls go on beside a console.
pub async fn sol_io(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentSolIo>,
) -> Answer<AgentSolOutput> {
    let req = body(req)?;
    let ipmi = ipmi_of(&agent)?;
    let t = target(&req.bmc)?;
    let input = hex::decode(&req.input_hex)
        .map_err(|_| ApiError::Invalid("input_hex is not hex".into()))?;
    let wait = Duration::from_millis(u64::from(req.wait_ms)).min(MAX_SOL_WAIT);
    detached(WORKER, async move {
        let (output, active) = ipmi
            .run(&t, |s| {
                let input = input.clone();
                Box::pin(async move {
                    if !s.sol_is_active() {
                        return Ok((Vec::new(), false));
                    }
                    let mut out = if input.is_empty() {
                        Vec::new()
                    } else {
                        s.sol_send(&input).await?
                    };
                    if out.is_empty() {
                        out = s.sol_recv(wait).await?;
                    }
                    Ok((out, s.sol_is_active()))
                })
            })
            .await?;
        Ok::<_, IpmiError>(AgentSolOutput {
            output_hex: hex::encode(output),
            active,
        })
    })
    .await
    .map(Json)
}

/// `POST /v1/bmc/inventory`: CPUs, memory and PCIe devices from the BMC's Redfish service on
/// the same address; `unknown` with the reason when it has none (IPMI-only BMCs).
pub async fn inventory(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Answer<Inventory> {
    let bmc = body(req)?;
    // The Redfish client exists exactly when IPMI is on (main.rs).
    let redfish = agent.redfish.clone().ok_or(ApiError::IpmiDisabled)?;
    let host = SocketAddr::new(bmc_ip(&bmc)?, 443).to_string();
    let found =
        tokio::spawn(async move { redfish.inventory(&host, &bmc.username, &bmc.password).await })
            .await;
    let inventory = match found {
        Ok(Ok(inv)) => inv,
        Ok(Err(err)) => Inventory {
            source: "unknown".into(),
            note: Some(err.to_string()),
            ..Inventory::default()
        },
        Err(join) => Inventory {
            source: "unknown".into(),
            note: Some(format!("the Redfish task failed: {join}")),
            ..Inventory::default()
        },
    };
    Ok(Json(inventory))
}
