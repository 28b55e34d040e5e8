//! Preparing a bare-metal server: route it to an online IPMI agent, have that agent open a
//! session with the BMC and read device id, FRU and power, then record `running` — or
//! `failed` with the agent's words (unreachable, bad credentials, privilege too low).
//! Resumable: the store's `preparing` rows are the job list.

use crate::agents::AgentError;
use crate::baremetal::store::{BaremetalRecord, Prepared};
use crate::hosts::store::AgentEndpoint;
use crate::state::AppState;
use anyhow::Context;
use plinth_common::api::AgentBmc;
use plinth_common::baremetal::{BaremetalState, PowerState};
use plinth_common::timefmt::now_ms;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// How often a preparation without an online agent looks again.
const RETRY: Duration = Duration::from_secs(1);

pub const NO_AGENT: &str =
    "no online agent speaks IPMI (agent config ipmi = true) to reach this server's BMC";

/// The BMC as the agent gets it: address and credentials, the password unsealed.
pub fn bmc_of(st: &AppState, rec: &BaremetalRecord) -> anyhow::Result<AgentBmc> {
    let password = st
        .images
        .secrets
        .unseal(&rec.password_sealed)
        .with_context(|| format!("unsealing the IPMI password of {}", rec.server.id))?;
    Ok(AgentBmc {
        ip: rec.server.ipmi_ip.clone(),
        port: 623,
        username: rec.username.clone(),
        password,
    })
}

/// The online agent that speaks to this server's BMC, assigning one first when it has none
/// or its agent is offline; `None` when no IPMI agent is online.
pub async fn route(
    st: &AppState,
    rec: &BaremetalRecord,
) -> anyhow::Result<Option<(String, AgentEndpoint)>> {
    let now = now_ms();
    if let Some(host) = &rec.server.agent_host_id
        && let Some(ep) = st.store.agent_endpoint(host, now).await?
        && ep.online
    {
        return Ok(Some((host.clone(), ep)));
    }
    crate::baremetal::sync::reassign(st).await?;
    let Some(fresh) = st.store.baremetal(&rec.server.id).await? else {
        return Ok(None);
    };
    let Some(host) = fresh.server.agent_host_id else {
        return Ok(None);
    };
    Ok(st
        .store
        .agent_endpoint(&host, now_ms())
        .await?
        .filter(|ep| ep.online)
        .map(|ep| (host, ep)))
}

pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for id in st.store.preparing_baremetal().await? {
        info!(baremetal = %id, "Preparing a bare-metal server the last run left preparing.");
        st.jobs
            .spawn("bare-metal preparation", prepare(st.clone(), id));
    }
    Ok(())
}

/// Prepares `id` to its end; never leaves it `preparing` unless it was deleted meanwhile.
pub async fn prepare(st: AppState, id: String) {
    if let Err(err) = run(&st, &id).await {
        warn!(baremetal = %id, error = ?err, "Preparing a bare-metal server failed.");
        let reason = "preparation failed inside the coordinator; its log has the cause".into();
        if let Err(e) = st
            .store
            .finish_prepare(&id, &Prepared::Failed(reason), now_ms())
            .await
        {
            warn!(baremetal = %id, error = %e, "Could not record the failure.");
        }
    }
}

async fn fail(st: &AppState, id: &str, reason: String) -> anyhow::Result<()> {
    if st
        .store
        .finish_prepare(id, &Prepared::Failed(reason.clone()), now_ms())
        .await?
    {
        info!(baremetal = %id, reason = %reason, "Bare-metal server failed to prepare.");
        st.store
            .audit("coordinator", "baremetal failed", id, &reason)
            .await?;
    }
    Ok(())
}

async fn run(st: &AppState, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + st.settings.baremetal.prepare_deadline;
    loop {
        let Some(rec) = st.store.baremetal(id).await? else {
            return Ok(());
        };
        if rec.server.state != BaremetalState::Preparing {
            return Ok(());
        }
        let late = Instant::now() >= deadline;
        let Some((host, ep)) = route(st, &rec).await? else {
            if late {
                return fail(st, id, NO_AGENT.into()).await;
            }
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let bmc = bmc_of(st, &rec)?;
        match st.agents.bmc_probe(&ep, &bmc).await {
            Ok(p) => {
                let outcome = Prepared::Ok {
                    sn: p.serial.clone(),
                    model: p.model.clone(),
                    manufacturer: p.manufacturer.clone(),
                    power: PowerState::from_on(p.power_on),
                };
                if st.store.finish_prepare(id, &outcome, now_ms()).await? {
                    let detail = format!(
                        "via {host}: sn {}, model {}, cipher suite {}",
                        p.serial.as_deref().unwrap_or("unknown"),
                        p.model.as_deref().unwrap_or("unknown"),
                        p.cipher_suite
                    );
                    info!(baremetal = %id, agent = %host, "Bare-metal server prepared.");
                    st.store
                        .audit("coordinator", "baremetal running", id, &detail)
                        .await?;
                    read_inventory(st, id, &ep, &bmc).await;
                }
                return Ok(());
            }
            // The agent reached (or tried) the BMC and says why not: final.
            Err(AgentError::Refused { code, message, .. }) if is_bmc_failure(&code) => {
                return fail(st, id, message).await;
            }
            Err(err) if late => {
                let reason = format!("agent {host} could not be asked: {}", err.explain());
                return fail(st, id, reason).await;
            }
            Err(err) => {
                warn!(baremetal = %id, agent = %host, error = %err.explain(), "Probe failed; trying again.");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Whether the agent's error code says it reached (or tried) the BMC and why not: every
/// IPMI failure the agent answers has a `bmc_` code (agent/src/api/error.rs).
pub fn is_bmc_failure(code: &str) -> bool {
    code.starts_with("bmc_")
}

/// Hardware inventory from the BMC's Redfish service (through the agent), after the server is
/// running: slow, optional, and never a reason to fail it.
async fn read_inventory(st: &AppState, id: &str, ep: &AgentEndpoint, bmc: &AgentBmc) {
    let inventory = match st.agents.bmc_inventory(ep, bmc).await {
        Ok(inv) => inv,
        Err(err) => plinth_common::api::Inventory {
            source: "unknown".into(),
            note: Some(format!("the agent could not read it: {}", err.explain())),
            ..Default::default()
        },
    };
    if let Err(err) = st.store.set_baremetal_inventory(id, &inventory).await {
        warn!(baremetal = %id, error = %err, "Recording the inventory failed.");
    }
}
