//! What the agent sees of its host: facts and the metrics history it keeps.

use super::{AgentClient, AgentError, CALL, NO_BODY};
use crate::agents::AgentEndpoint;
use plinth_common::api::agent_routes as routes;
use plinth_common::api::{AgentFacts, HostMetrics};
use reqwest::Method;

impl AgentClient {
    /// The agent's host metrics history: `names` comma-separated (all when empty).
    pub async fn metrics_history(
        &self,
        ep: &AgentEndpoint,
        names: &str,
        since_ms: Option<i64>,
    ) -> Result<HostMetrics, AgentError> {
        let mut query = vec![("names", names.to_string())];
        if let Some(since) = since_ms {
            query.push(("since_ms", since.to_string()));
        }
        self.call(
            ep,
            Method::GET,
            routes::METRICS_HISTORY,
            &query,
            NO_BODY,
            CALL,
        )
        .await
    }

    /// What the agent sees now (not the last heartbeat).
    pub async fn facts(&self, ep: &AgentEndpoint) -> Result<AgentFacts, AgentError> {
        self.call(ep, Method::GET, routes::FACTS, &[], NO_BODY, CALL)
            .await
    }
}
