//! `/v1/bmc/*`: what the coordinator asks of the bare-metal servers assigned to this agent —
//! probe (preparation), power actions, power-status sweeps, and forgetting a BMC. Each call
//! runs in its own task, so a coordinator that hangs up never cuts an IPMI exchange short.

use super::error;
use crate::ipmi::commands::ChassisControl;
use crate::ipmi::{Ipmi, IpmiError, Password, Target};
use crate::runtime::Agent;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_common::api::{
    AgentBmc, AgentPower, AgentPowerReading, AgentPowerState, AgentPowerSweep, AgentProbe,
    AgentSolIo, AgentSolOutput, Inventory,
};
use plinth_common::baremetal::PowerAction;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

type Body<T> = Result<Json<T>, JsonRejection>;
/// A request refused before any IPMI: the answer to send.
type Refused = Box<Response>;

/// How long a soft reboot waits for the OS to power the chassis off before giving up.
const SOFT_OFF_WAIT: Duration = Duration::from_secs(300);
const SOFT_OFF_POLL: Duration = Duration::from_secs(1);
const MAX_SWEEP_CONCURRENCY: u32 = 256;

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn ipmi_of(agent: &Agent) -> Result<Arc<Ipmi>, Refused> {
    agent.ipmi.clone().ok_or_else(|| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ipmi_disabled",
            "this agent is configured with ipmi = false".into(),
        ))
    })
}

fn target(bmc: &AgentBmc) -> Result<Target, Refused> {
    let ip: IpAddr = bmc.ip.parse().map_err(|_| {
        Box::new(bad_request(format!(
            "bmc ip '{}' is not an IP address",
            bmc.ip
        )))
    })?;
    Ok(Target {
        addr: SocketAddr::new(ip, bmc.port),
        username: bmc.username.clone(),
        password: Password::new(bmc.password.clone()),
        suite: None,
    })
}

fn failure(err: &IpmiError) -> Response {
    error(StatusCode::BAD_GATEWAY, err.code(), err.to_string())
}

fn body<T>(body: Body<T>) -> Result<T, Refused> {
    body.map(|Json(b)| b)
        .map_err(|r| Box::new(bad_request(format!("request body: {}", r.body_text()))))
}

/// Runs `work` in its own task and answers its outcome.
async fn detached<T: serde::Serialize + Send + 'static>(
    work: impl Future<Output = Result<T, IpmiError>> + Send + 'static,
) -> Response {
    match tokio::spawn(work).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(err)) => failure(&err),
        Err(join) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the IPMI task failed: {join}"),
        ),
    }
}

/// `POST /v1/bmc/probe`: device id, FRU (serial, model, manufacturer) and power, on one
/// session — what preparing a server needs to know.
pub async fn probe(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Response {
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&body(req)?)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    detached(async move {
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
}

async fn power_on(ipmi: &Ipmi, t: &Target) -> Result<bool, IpmiError> {
    Ok(ipmi
        .run(t, |s| Box::pin(s.chassis_status()))
        .await?
        .power_on)
}

async fn control(ipmi: &Ipmi, t: &Target, c: ChassisControl) -> Result<(), IpmiError> {
    ipmi.run(t, |s| Box::pin(s.chassis_control(c))).await
}

/// One SPEC §4 power action in chassis-control terms; answers the power state after it.
pub async fn act(
    ipmi: &Ipmi,
    t: &Target,
    action: PowerAction,
    hard: bool,
) -> Result<bool, IpmiError> {
    match action {
        PowerAction::On => control(ipmi, t, ChassisControl::PowerUp).await?,
        PowerAction::Off => control(ipmi, t, ChassisControl::SoftShutdown).await?,
        PowerAction::ForceOff => control(ipmi, t, ChassisControl::PowerDown).await?,
        // Cycling a machine that is off would leave it off on many BMCs: it means "on" then.
        PowerAction::Cycle if !power_on(ipmi, t).await? => {
            control(ipmi, t, ChassisControl::PowerUp).await?
        }
        PowerAction::Cycle => control(ipmi, t, ChassisControl::PowerCycle).await?,
        PowerAction::Reboot if hard => control(ipmi, t, ChassisControl::HardReset).await?,
        PowerAction::Reboot => {
            if power_on(ipmi, t).await? {
                control(ipmi, t, ChassisControl::SoftShutdown).await?;
                let until = Instant::now() + SOFT_OFF_WAIT;
                // The lock is taken per poll: other operations on this BMC go on meanwhile.
                while power_on(ipmi, t).await? {
                    if Instant::now() >= until {
                        return Err(IpmiError::Unsupported(format!(
                            "a soft reboot: the OS did not power off within {}s; reboot with hard, or force_off then on",
                            SOFT_OFF_WAIT.as_secs()
                        )));
                    }
                    tokio::time::sleep(SOFT_OFF_POLL).await;
                }
            }
            control(ipmi, t, ChassisControl::PowerUp).await?
        }
    }
    power_on(ipmi, t).await
}

/// `POST /v1/bmc/power`.
pub async fn power(State(agent): State<Arc<Agent>>, req: Body<AgentPower>) -> Response {
    let req = match body(req) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&req.bmc)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    detached(async move {
        let power_on = act(&ipmi, &t, req.action, req.hard).await?;
        tracing::info!(bmc = %t.addr, action = %req.action, power_on, "Power action done.");
        Ok(AgentPowerState { power_on })
    })
    .await
}

/// `POST /v1/bmc/power-status`: every listed BMC's chassis power, at most `concurrency`
/// BMCs at once (each on its own session; one BMC's operations never overlap).
pub async fn power_status(State(agent): State<Arc<Agent>>, req: Body<AgentPowerSweep>) -> Response {
    let req = match body(req) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let ipmi = match ipmi_of(&agent) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let mut items = Vec::with_capacity(req.servers.len());
    for s in req.servers {
        match target(&s.bmc) {
            Ok(t) => items.push((s.id, t)),
            Err(r) => return *r,
        }
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
    detached(work).await
}

/// `POST /v1/bmc/forget`: close the BMC's session; the server is no longer managed here.
pub async fn forget(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Response {
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&body(req)?)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    ipmi.forget(t.addr).await;
    StatusCode::NO_CONTENT.into_response()
}

/// Longest a console read waits for the serial port to say something.
const MAX_SOL_WAIT: Duration = Duration::from_secs(5);

/// `POST /v1/bmc/sol/activate`: SOL on the BMC's session (taking over a stale one).
pub async fn sol_activate(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Response {
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&body(req)?)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    detached(async move {
        ipmi.run(&t, |s| Box::pin(s.sol_activate())).await?;
        Ok(serde_json::json!({}))
    })
    .await
}

/// `POST /v1/bmc/sol/deactivate`.
pub async fn sol_deactivate(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Response {
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&body(req)?)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    detached(async move {
        ipmi.run(&t, |s| Box::pin(s.sol_deactivate())).await?;
        Ok(serde_json::json!({}))
    })
    .await
}

/// `POST /v1/bmc/sol/io`: one step of a console: the viewer's keys in, the port's bytes out.
/// The BMC's lock is held only for this step, so power polls go on beside a console.
pub async fn sol_io(State(agent): State<Arc<Agent>>, req: Body<AgentSolIo>) -> Response {
    let req = match body(req) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (ipmi, t) = match ipmi_of(&agent).and_then(|i| Ok((i, target(&req.bmc)?))) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Ok(input) = hex::decode(&req.input_hex) else {
        return bad_request("input_hex is not hex".into());
    };
    let wait = Duration::from_millis(u64::from(req.wait_ms)).min(MAX_SOL_WAIT);
    detached(async move {
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
        Ok(AgentSolOutput {
            output_hex: hex::encode(output),
            active,
        })
    })
    .await
}

/// `POST /v1/bmc/inventory`: CPUs, memory and PCIe devices from the BMC's Redfish service on
/// the same address; `unknown` with the reason when it has none (IPMI-only BMCs).
pub async fn inventory(State(agent): State<Arc<Agent>>, req: Body<AgentBmc>) -> Response {
    let bmc = match body(req) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // The Redfish client exists exactly when IPMI is on (main.rs).
    let Some(redfish) = agent.redfish.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ipmi_disabled",
            "this agent is configured with ipmi = false".into(),
        );
    };
    let ip: IpAddr = match bmc.ip.parse() {
        Ok(ip) => ip,
        Err(_) => return bad_request(format!("bmc ip '{}' is not an IP address", bmc.ip)),
    };
    let host = SocketAddr::new(ip, 443).to_string();
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
    Json(inventory).into_response()
}
