//! Reports the host to the coordinator: at start, then every interval. A failed beat is logged
//! and the next one tried on schedule; the coordinator marks the host offline after three.

use crate::facts;
use crate::runtime::Agent;
use plinth_common::api::{Heartbeat, HeartbeatAck};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// libvirt gets this long to answer per beat, so a hung hypervisor never stalls the heartbeat.
const LIBVIRT_DEADLINE: Duration = Duration::from_secs(5);

pub async fn beat_once(agent: &Agent) -> anyhow::Result<HeartbeatAck> {
    let mut facts = facts::collect(
        &agent.libvirt,
        &agent.migration,
        agent.instances.shared_storage(),
        LIBVIRT_DEADLINE,
    )
    .await?;
    facts.ipmi = agent.ipmi.is_some();
    facts.nics = match agent.instances.network.nics().await {
        Ok(nics) => nics,
        Err(err) => {
            warn!(error = %err, "Listing the host's NICs failed; reporting none this beat.");
            Vec::new()
        }
    };
    if facts.hypervisor == "TEST" {
        // libvirt's test driver: a make-believe network that reaches every segment.
        facts.nics = vec![plinth_common::api::ANY_NIC.to_string()];
    }
    let domains = match agent.libvirt.domains(LIBVIRT_DEADLINE).await {
        Ok(domains) => domains,
        Err(err) => {
            warn!(error = %err, "Listing domains failed; reporting none this beat.");
            Vec::new()
        }
    };
    let devices = match agent.devices.settled_inventory().await {
        Ok(Some(inventory)) => agent.devices.unreported(inventory),
        // A change is under way; its end is reported next beat.
        Ok(None) => None,
        Err(err) => {
            warn!(error = %err, "Reading the devices failed; reporting them next beat.");
            None
        }
    };
    let body = Heartbeat {
        facts,
        domains,
        api_port: agent.api_port(),
        interval_ms: agent.heartbeat_interval.as_millis() as u64,
        devices,
    };
    let path = plinth_common::api::agent_routes::coordinator::heartbeat(agent.host_id());
    let resp = agent.post_to_coordinator(&path, &body).await?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        if refused_identity(&text) {
            tracing::error!(host = %agent.host_id(), answer = %text, "The coordinator refuses this agent's certificate: the host was removed, re-enrolled elsewhere, or its certificates revoked. Enroll it again (plinth hosts reenroll, then plinth-agent enroll).");
        }
        anyhow::bail!("coordinator answered {status}: {text}");
    }
    let ack: HeartbeatAck = resp.json().await?;
    if let Err(err) = agent
        .instances
        .tidy_network(&ack.uplinks, &ack.leases)
        .await
    {
        warn!(error = %err, "Could not look for bridges of removed segments.");
    }
    agent.metrics.owners.replace(ack.owners.clone());
    agent.note_revoked_coordinator(&ack.revoked_coordinator_serials)?;
    if let Some(inventory) = body.devices {
        agent.devices.reported(inventory);
    }
    Ok(ack)
}

/// Whether the coordinator's answer says this agent's identity is void (not a passing fault).
pub fn refused_identity(answer: &str) -> bool {
    serde_json::from_str::<plinth_common::api::ErrorBody>(answer).is_ok_and(|b| {
        matches!(
            b.error.code.as_str(),
            "certificate_revoked" | "host_removed" | "certificate_unknown"
        )
    })
}

pub async fn run(agent: Arc<Agent>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(agent.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match beat_once(&agent).await {
            Ok(ack) if failing => {
                failing = false;
                info!(host = %ack.host_id, state = %ack.state, "Heartbeat delivered again.");
            }
            Ok(_) => {}
            Err(err) => {
                if !failing {
                    warn!(error = %err, "Heartbeat failed; retrying every interval.");
                }
                failing = true;
            }
        }
    }
}
