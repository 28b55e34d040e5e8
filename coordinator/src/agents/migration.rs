//! Live migration between two agents: prepare on the target, start, follow and abort on the
//! source.

use super::{AgentClient, AgentError, CALL, LONG_CALL, NO_BODY};
use crate::agents::AgentEndpoint;
use plinth_common::api::agent_routes as routes;
use plinth_common::api::{AgentCreateInstance, AgentMigrate, AgentMigration, AgentPrepared};
use reqwest::Method;
use std::time::Duration;

impl AgentClient {
    /// Live migration, on the target: fetch the image and make the instance's files, without
    /// a domain (it may download an image: a long call).
    pub async fn prepare_migration(
        &self,
        ep: &AgentEndpoint,
        req: &AgentCreateInstance,
        shared_storage: Option<&str>,
    ) -> Result<AgentPrepared, AgentError> {
        let path = routes::instance_prepare_migration(&req.instance_id);
        let query: Vec<_> = shared_storage
            .map(|s| ("shared_storage", s.to_string()))
            .into_iter()
            .collect();
        self.call(ep, Method::POST, &path, &query, Some(req), LONG_CALL)
            .await
    }

    /// Live migration, on the source: starts it and answers at once.
    pub async fn migrate(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        req: &AgentMigrate,
    ) -> Result<AgentMigration, AgentError> {
        let path = routes::instance_migrate(id);
        self.call(ep, Method::POST, &path, &[], Some(req), CALL)
            .await
    }

    /// How the source's migration of `id` goes (or how it ended); with `wait`, the agent
    /// answers when the migration ends or once `wait` has passed.
    pub async fn migration(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        wait: Option<Duration>,
    ) -> Result<AgentMigration, AgentError> {
        let path = routes::instance_migration(id);
        let (query, deadline) = match wait {
            Some(wait) => (
                vec![("wait_ms", wait.as_millis().to_string())],
                wait + Duration::from_secs(10),
            ),
            None => (Vec::new(), CALL),
        };
        self.call(ep, Method::GET, &path, &query, NO_BODY, deadline)
            .await
    }

    /// Aborts the source's migration of `id`; the guest stays on the source.
    pub async fn abort_migration(
        &self,
        ep: &AgentEndpoint,
        id: &str,
    ) -> Result<AgentMigration, AgentError> {
        let path = routes::instance_migration(id);
        self.call(ep, Method::DELETE, &path, &[], NO_BODY, CALL)
            .await
    }
}
