//! Hardware monitoring: every `health_interval`, each agent reads its running servers' sensors
//! and the event-log entries after each server's stored cursor (bounded concurrency, the
//! sweep call's deadline); the store keeps the readings, the health they sum up to, the new
//! entries and the cursor. A BMC that cannot be read is `unknown`, with why in words.

use crate::baremetal::store::{BaremetalRecord, EVENTS_KEPT, HealthRead};
use crate::baremetal::sync::{online_endpoint, sweep_bmcs};
use crate::state::AppState;
use futures_util::future::join_all;
use plinth_common::api::{AgentHealthItem, AgentHealthReading, AgentHealthSweep, SelCursor};
use plinth_common::timefmt::now_ms;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Entries read per server per sweep at most; a longer backlog comes in over the next sweeps.
const MAX_EVENTS: u32 = 256;

/// What a server's health says when its agent could not be asked (the log says why).
const AGENT_UNREACHABLE: &str = "the agent in charge of this server could not be asked";

/// One sweep at a time: a slow one delays the next instead of piling up.
pub async fn run(st: AppState, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(st.settings.baremetal.health_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            done = sweep(&st) => if let Err(err) = done {
                warn!(error = ?err, "Bare-metal health sweep failed.");
            },
        }
    }
}

/// One health read of every running server, all agents at once.
pub async fn sweep(st: &AppState) -> anyhow::Result<()> {
    let by_agent = st.store.baremetal_by_agent().await?;
    let cursors = st.store.baremetal_sel_cursors().await?;
    join_all(
        by_agent
            .into_iter()
            .map(|(agent, servers)| sweep_agent(st, agent, servers, &cursors)),
    )
    .await;
    Ok(())
}

async fn sweep_agent(
    st: &AppState,
    agent: String,
    servers: Vec<BaremetalRecord>,
    cursors: &HashMap<String, SelCursor>,
) {
    let Some(ep) = online_endpoint(st, &agent).await else {
        return;
    };
    let items: Vec<AgentHealthItem> = sweep_bmcs(st, &servers, "health")
        .into_iter()
        .map(|(id, bmc)| AgentHealthItem {
            id: id.to_string(),
            sel_after: cursors.get(id).copied(),
            bmc,
        })
        .collect();
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let req = AgentHealthSweep {
        servers: items,
        concurrency: st.settings.baremetal.sync_concurrency,
        max_events: MAX_EVENTS,
    };
    match st.agents.bmc_health(&ep, &req).await {
        Ok(readings) => {
            for r in &readings {
                record(st, r).await;
            }
        }
        Err(err) => {
            warn!(agent = %agent, error = %err.explain(), "Health sweep on the agent failed.");
            for id in &ids {
                store(st, id, &HealthRead::Failed(AGENT_UNREACHABLE)).await;
            }
        }
    }
}

/// Stores one server's reading: sensors and new entries, or that its BMC could not be read.
async fn record(st: &AppState, r: &AgentHealthReading) {
    let read = match (&r.sensors, &r.error) {
        (Some(sensors), _) => {
            if r.sel_reset {
                info!(baremetal = %r.id, "The BMC's event log was cleared or wrapped; reading it from its start.");
            }
            HealthRead::Read {
                sensors,
                events: &r.events,
                cursor: r.sel_cursor,
                reset: r.sel_reset,
            }
        }
        (None, why) => {
            let why = why.as_deref().unwrap_or("the BMC could not be read");
            warn!(baremetal = %r.id, error = %why, "Health poll failed; health is unknown.");
            HealthRead::Failed(why)
        }
    };
    store(st, &r.id, &read).await;
}

async fn store(st: &AppState, id: &str, read: &HealthRead<'_>) {
    let done = st
        .store
        .record_baremetal_health(id, read, EVENTS_KEPT, now_ms());
    if let Err(err) = crate::metrics::store_transaction("record_baremetal_health", done).await {
        warn!(baremetal = %id, error = %err, "Recording hardware health failed.");
    }
}
