//! `GET /v1/facts`: what this host is and runs, read now.

use super::ApiError;
use crate::facts;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::State;
use plinth_common::api::AgentFacts;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(5);

pub async fn facts(State(agent): State<Arc<Agent>>) -> Result<Json<AgentFacts>, ApiError> {
    let collected = async {
        let mut facts = facts::collect(
            &agent.libvirt,
            &agent.migration,
            agent.instances.shared_storage(),
            DEADLINE,
        )
        .await?;
        facts.ipmi = agent.ipmi.is_some();
        facts.nics = agent.instances.network.nics().await.unwrap_or_default();
        let domains = agent.libvirt.domains(DEADLINE).await?;
        Ok::<_, crate::libvirt::LibvirtError>(AgentFacts {
            host_id: agent.host_id().to_string(),
            facts,
            domains,
        })
    };
    collected
        .await
        .map(Json)
        .map_err(ApiError::LibvirtUnavailable)
}
