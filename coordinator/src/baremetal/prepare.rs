//! Preparing a bare-metal server: route it to an online IPMI agent, have that agent open a
//! session with the BMC and read device id, FRU and power, then end it `running` — or
//! `failed` with the BMC's words (unreachable, bad credentials, privilege too low) — through
//! [`finish_prepare`]. Resumable: the store's `preparing` rows are the job list.

use crate::agents::AgentEndpoint;
use crate::agents::AgentError;
use crate::baremetal::store::PREPARE;
use crate::baremetal::{NO_AGENT, PrepareOutcome, bmc_of, finish_prepare, is_bmc_failure, route};
use crate::state::AppState;
use plinth_common::api::AgentBmc;
use plinth_common::baremetal::BaremetalState;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// How often a preparation without an online agent looks again.
const RETRY: Duration = Duration::from_secs(1);

/// A failure inside the coordinator, as the tenant reads it (the log has the cause).
const INTERNAL: &str = "preparation failed inside the coordinator; its log has the cause";
/// The server's agent never answered before the deadline (which agent, and why, are logged).
const AGENT_SILENT: &str =
    "the agent that reaches this server's BMC could not be asked before the deadline";

/// Starts the preparations the lease's term does not run yet.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for running in st.store.running_operations(PREPARE).await? {
        let (op, id) = (running.op.id, running.op.target_id);
        info!(baremetal = %id, operation = %op, "Preparing a bare-metal server.");
        crate::jobs::lease::run(st, &op, "bare-metal preparation", prepare(st.clone(), id));
    }
    Ok(())
}

/// Prepares `id` to its end; never leaves it `preparing` unless it was deleted meanwhile.
pub async fn prepare(st: AppState, id: String) {
    if let Err(err) = run(&st, &id).await {
        warn!(baremetal = %id, error = ?err, "Preparing a bare-metal server failed.");
        if let Err(e) = fail(&st, &id, INTERNAL.into()).await {
            warn!(baremetal = %id, error = ?e, "Could not record the failure.");
        }
    }
}

async fn fail(st: &AppState, id: &str, reason: String) -> anyhow::Result<()> {
    finish_prepare(st, id, &PrepareOutcome::Failed(reason)).await?;
    Ok(())
}

async fn run(st: &AppState, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + st.settings.baremetal.prepare_deadline;
    // The agent last told of in a step: a step per agent tried, not per retry.
    let mut told: Option<String> = None;
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
        if let Some(op) = &rec.server.operation_id
            && told.as_deref() != Some(host.as_str())
        {
            let step = "an IPMI agent is opening a session with the BMC and reading it";
            crate::jobs::operations::step(&st.store, op, step).await;
            told = Some(host.clone());
        }
        match st.agents.bmc_probe(&ep, &bmc).await {
            Ok(probe) => {
                let outcome = PrepareOutcome::Prepared {
                    via: host.clone(),
                    probe,
                };
                if finish_prepare(st, id, &outcome).await? {
                    read_inventory(st, id, &ep, &bmc).await;
                }
                return Ok(());
            }
            // The agent reached (or tried) the BMC and says why not: final.
            Err(AgentError::Refused { code, message, .. }) if is_bmc_failure(&code) => {
                return fail(st, id, message).await;
            }
            Err(err) if late => {
                warn!(baremetal = %id, agent = %host, error = %err.explain(), "The agent could not be asked before the deadline.");
                return fail(st, id, AGENT_SILENT.into()).await;
            }
            Err(err) => {
                warn!(baremetal = %id, agent = %host, error = %err.explain(), "Probe failed; trying again.");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Hardware inventory from the BMC's Redfish service (through the agent), after the server is
/// running: slow, optional, and never a reason to fail it. When the agent answers why not
/// (no Redfish service, a page missing), its words are the note; a transport failure is
/// logged and the note says only that the agent could not be asked.
async fn read_inventory(st: &AppState, id: &str, ep: &AgentEndpoint, bmc: &AgentBmc) {
    let inventory = match st.agents.bmc_inventory(ep, bmc).await {
        Ok(inv) => inv,
        Err(err) => {
            let note = match &err {
                AgentError::Refused { message, .. } => {
                    format!("the agent could not read it: {message}")
                }
                other => {
                    warn!(baremetal = %id, error = %other.explain(), "Reading the inventory failed.");
                    "the agent could not be asked; the coordinator log has the cause".to_string()
                }
            };
            plinth_common::api::Inventory {
                source: "unknown".into(),
                note: Some(note),
                ..Default::default()
            }
        }
    };
    if let Err(err) = st.store.set_baremetal_inventory(id, &inventory).await {
        warn!(baremetal = %id, error = %err, "Recording the inventory failed.");
    }
}
