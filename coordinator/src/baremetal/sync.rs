//! Keeps bare-metal servers with a live agent and their power state current: every second,
//! servers whose agent went offline (or stopped speaking IPMI) move to the least-loaded
//! online IPMI agent, and agents whose counts differ by two or more are evened out; every
//! `sync_interval`, each agent polls its servers' power with bounded concurrency and every
//! change is recorded with its time.

use crate::agents::AgentEndpoint;
use crate::baremetal::store::{BaremetalRecord, MoveReason, Swap};
use crate::state::AppState;
use futures_util::future::join_all;
use plinth_common::api::{AgentBmc, AgentPowerSweep, AgentSweepItem};
use plinth_common::baremetal::PowerEvent;
use plinth_common::timefmt::now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct BaremetalSettings {
    pub sync_interval: Duration,
    /// How often sensors and event logs are read (health.rs).
    pub health_interval: Duration,
    /// BMCs one agent polls at once (power and health sweeps alike).
    pub sync_concurrency: u32,
    /// How long preparation waits for an agent before the server is `failed`.
    pub prepare_deadline: Duration,
}

impl Default for BaremetalSettings {
    fn default() -> BaremetalSettings {
        BaremetalSettings {
            sync_interval: Duration::from_secs(60),
            health_interval: Duration::from_secs(60),
            sync_concurrency: 16,
            prepare_deadline: Duration::from_secs(120),
        }
    }
}

/// Moves servers off agents that are gone and evens agents out; logs and audits each move,
/// and asks the agent a server left (when it is still there) to close its BMC session.
pub async fn reassign(st: &AppState) -> anyhow::Result<()> {
    let assign = st.store.assign_baremetal_agents(now_ms());
    for m in crate::metrics::store_transaction("assign_baremetal_agents", assign).await? {
        let (server, to) = (&m.server, &m.to);
        let Some(from) = &m.from else {
            info!(baremetal = %server, agent = %to, "Bare-metal server assigned to an agent.");
            continue;
        };
        let why = if m.why == MoveReason::Rebalance {
            info!(baremetal = %server, from = %from, to = %to, "Bare-metal server moved to an agent with fewer.");
            "to even out agents"
        } else {
            warn!(baremetal = %server, from = %from, to = %to, "Bare-metal server moved to another agent: its agent is offline.");
            "its agent is offline"
        };
        st.store
            .audit(
                "coordinator",
                "baremetal reassigned",
                server,
                &format!("from {from} to {to}: {why}"),
            )
            .await?;
        if m.why == MoveReason::Rebalance
            && let Some(rec) = st.store.baremetal(server).await?
        {
            let (st, from) = (st.clone(), from.clone());
            st.jobs.clone().spawn(
                "bmc forget",
                async move { forget_on(&st, &from, &rec).await },
            );
        }
    }
    Ok(())
}

/// Best effort: an agent no longer in charge of a server closes its session with the BMC (it
/// would close it anyway once idle).
pub async fn forget_on(st: &AppState, agent: &str, rec: &BaremetalRecord) {
    let Ok(Some(ep)) = st.store.agent_endpoint(agent, now_ms()).await else {
        return;
    };
    if let Ok(bmc) = crate::baremetal::bmc_of(st, rec)
        && let Err(err) = st.agents.bmc_forget(&ep, &bmc).await
    {
        tracing::debug!(agent = %agent, error = %err.explain(), "The agent could not close its BMC session.");
    }
}

pub async fn run(st: AppState, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweeping = Arc::new(AtomicBool::new(false));
    let interval = st.settings.baremetal.sync_interval;
    let mut next_sweep = Instant::now() + interval;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(err) = reassign(&st).await {
            warn!(error = ?err, "Reassigning bare-metal servers failed; retrying.");
        }
        // One sweep at a time: a slow one delays the next instead of piling up.
        if Instant::now() >= next_sweep && !sweeping.swap(true, Ordering::AcqRel) {
            next_sweep = Instant::now() + interval;
            let (st, flag) = (st.clone(), sweeping.clone());
            st.jobs.clone().spawn("bare-metal power sweep", async move {
                if let Err(err) = sweep(&st).await {
                    warn!(error = ?err, "Bare-metal power sweep failed.");
                }
                flag.store(false, Ordering::Release);
            });
        }
    }
}

/// One power poll of every running server, all agents at once.
pub async fn sweep(st: &AppState) -> anyhow::Result<()> {
    let by_agent = st.store.baremetal_by_agent().await?;
    join_all(
        by_agent
            .into_iter()
            .map(|(agent, servers)| sweep_agent(st, agent, servers)),
    )
    .await;
    Ok(())
}

/// The agent's endpoint when it is online; `None` (logged) otherwise: the next tick moves the
/// servers of an offline agent.
pub(crate) async fn online_endpoint(st: &AppState, agent: &str) -> Option<AgentEndpoint> {
    match st.store.agent_endpoint(agent, now_ms()).await {
        Ok(Some(ep)) if ep.online => Some(ep),
        Ok(_) => None,
        Err(err) => {
            warn!(agent = %agent, error = %err, "Reading the agent's endpoint failed.");
            None
        }
    }
}

/// Each server's id and BMC for a sweep (`what`), without those whose credentials cannot be
/// unsealed (logged).
pub(crate) fn sweep_bmcs<'a>(
    st: &AppState,
    servers: &'a [BaremetalRecord],
    what: &str,
) -> Vec<(&'a str, AgentBmc)> {
    let mut items = Vec::with_capacity(servers.len());
    for rec in servers {
        match crate::baremetal::bmc_of(st, rec) {
            Ok(bmc) => items.push((rec.server.id.as_str(), bmc)),
            Err(err) => {
                warn!(baremetal = %rec.server.id, sweep = %what, error = ?err, "Skipped in a sweep.")
            }
        }
    }
    items
}

async fn sweep_agent(st: &AppState, agent: String, servers: Vec<BaremetalRecord>) {
    let Some(ep) = online_endpoint(st, &agent).await else {
        return;
    };
    let items = sweep_bmcs(st, &servers, "power")
        .into_iter()
        .map(|(id, bmc)| AgentSweepItem {
            id: id.to_string(),
            bmc,
        })
        .collect();
    let req = AgentPowerSweep {
        servers: items,
        concurrency: st.settings.baremetal.sync_concurrency,
    };
    let readings = match st.agents.bmc_power_status(&ep, &req).await {
        Ok(r) => r,
        Err(err) => {
            warn!(agent = %agent, error = %err.explain(), "Power sweep on the agent failed.");
            return;
        }
    };
    for r in readings {
        let event = r.power_on.map_or(PowerEvent::Unreadable, PowerEvent::read);
        if let Some(err) = &r.error {
            warn!(baremetal = %r.id, error = %err, "Power poll failed; power is unknown.");
        }
        match crate::baremetal::record_power(st, &r.id, event, "sync").await {
            Ok(Some(Swap { from, to })) if from != to => {
                info!(baremetal = %r.id, from = %from, to = %to, "Bare-metal power changed.");
            }
            Ok(_) => {}
            Err(err) => warn!(baremetal = %r.id, error = %err, "Recording power failed."),
        }
    }
}
