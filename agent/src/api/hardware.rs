//! `POST /v1/bmc/health`: sensors and new event-log entries of the BMCs the coordinator
//! lists, polled like the power sweep (bounded concurrency, one session per BMC). The last
//! readings stay with the agent for its `/metrics` (ipmi_exporter's series).

use super::baremetal::{MAX_SWEEP_CONCURRENCY, WORKER, body, ipmi_of, target};
use super::{ApiError, Body, detached};
use crate::ipmi::IpmiError;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::State;
use plinth_common::api::{AgentHealthReading, AgentHealthSweep};
use std::collections::HashSet;
use std::sync::Arc;

/// Entries one poll reads from a log at most: a huge backlog comes in over several sweeps.
const MAX_EVENTS: u32 = 512;

pub async fn health(
    State(agent): State<Arc<Agent>>,
    req: Body<AgentHealthSweep>,
) -> Result<Json<Vec<AgentHealthReading>>, ApiError> {
    let req = body(req)?;
    let ipmi = ipmi_of(&agent)?;
    let mut items = Vec::with_capacity(req.servers.len());
    for s in req.servers {
        items.push((s.id, target(&s.bmc)?, s.sel_after));
    }
    let ids: HashSet<String> = items.iter().map(|(id, _, _)| id.clone()).collect();
    let concurrency = req.concurrency.clamp(1, MAX_SWEEP_CONCURRENCY) as usize;
    let max_events = req.max_events.clamp(1, MAX_EVENTS) as usize;
    let metrics = agent.metrics.clone();
    let work = async move {
        let found = crate::ipmi::sweep::health_sweep(&ipmi, items, concurrency, max_events).await;
        metrics.hardware.retain(&ids);
        let readings = found
            .into_iter()
            .map(|(id, outcome)| match outcome {
                Ok((sensors, sel)) => {
                    metrics.hardware.record(&id, Some(sensors.clone()));
                    AgentHealthReading {
                        id,
                        sensors: Some(sensors),
                        events: sel.events,
                        sel_cursor: sel.cursor,
                        sel_reset: sel.reset,
                        error: None,
                    }
                }
                Err(err) => {
                    metrics.hardware.record(&id, None);
                    AgentHealthReading {
                        id,
                        sensors: None,
                        events: Vec::new(),
                        sel_cursor: None,
                        sel_reset: false,
                        error: Some(err.to_string()),
                    }
                }
            })
            .collect::<Vec<_>>();
        Ok::<_, IpmiError>(readings)
    };
    detached(WORKER, work).await.map(Json)
}
