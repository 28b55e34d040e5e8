//! `GET /v1/facts`: what this host is and runs, read now.

use super::error;
use crate::facts;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_common::api::AgentFacts;
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(5);

pub async fn facts(State(agent): State<Arc<Agent>>) -> Response {
    let collected = async {
        let mut facts = facts::collect(
            &agent.libvirt,
            &agent.migration,
            agent.instances.shared_storage(),
            DEADLINE,
        )
        .await?;
        facts.ipmi = agent.ipmi.is_some();
        let domains = agent.libvirt.domains(DEADLINE).await?;
        Ok::<_, crate::libvirt::LibvirtError>(AgentFacts {
            host_id: agent.host_id().to_string(),
            facts,
            domains,
        })
    };
    match collected.await {
        Ok(body) => Json(body).into_response(),
        Err(err) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "libvirt_unavailable",
            err.to_string(),
        ),
    }
}
