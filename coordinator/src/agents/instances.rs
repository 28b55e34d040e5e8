//! The agent's instances: create, read, start/stop/reboot, delete, export, NICs.

use super::{AgentClient, AgentError, LONG_CALL, NO_BODY};
use crate::agents::AgentEndpoint;
use plinth_common::api::agent_routes as routes;
use plinth_common::api::{
    AgentCreateInstance, AgentExport, AgentExported, AgentInstance, AgentNic, AgentStop,
};
use plinth_common::instance::InstanceAction;
use reqwest::Method;
use serde::de::IgnoredAny;
use std::time::Duration;

/// A delete destroys the domain (forcing it off after a while) and removes its files.
const DELETE_CALL: Duration = Duration::from_secs(180);

impl AgentClient {
    pub async fn create_instance(
        &self,
        ep: &AgentEndpoint,
        req: &AgentCreateInstance,
    ) -> Result<AgentInstance, AgentError> {
        self.call(
            ep,
            Method::POST,
            routes::INSTANCES,
            &[],
            Some(req),
            LONG_CALL,
        )
        .await
    }

    /// The instance's domain as the agent sees it; `None` when it has none.
    pub async fn instance(
        &self,
        ep: &AgentEndpoint,
        id: &str,
    ) -> Result<Option<AgentInstance>, AgentError> {
        let path = routes::instance(id);
        match self
            .call(ep, Method::GET, &path, &[], NO_BODY, super::CALL)
            .await
        {
            Ok(instance) => Ok(Some(instance)),
            Err(err) if err.code() == Some("instance_not_found") => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `start`, `reboot` or `stop` (with the graceful timeout).
    pub async fn instance_action(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        action: InstanceAction,
        stop_timeout_s: u64,
    ) -> Result<AgentInstance, AgentError> {
        let body = AgentStop {
            timeout_s: stop_timeout_s,
        };
        let deadline = Duration::from_secs(stop_timeout_s + 60);
        let path = routes::instance_action(id, action);
        self.call(ep, Method::POST, &path, &[], Some(&body), deadline)
            .await
    }

    pub async fn delete_instance(&self, ep: &AgentEndpoint, id: &str) -> Result<(), AgentError> {
        let path = routes::instance(id);
        self.call::<IgnoredAny>(ep, Method::DELETE, &path, &[], NO_BODY, DELETE_CALL)
            .await
            .map(drop)
    }

    /// Gives the instance a NIC (live when it runs, and in its definition).
    pub async fn attach_nic(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        nic: &AgentNic,
    ) -> Result<AgentInstance, AgentError> {
        let path = routes::instance_nics(id);
        self.call(ep, Method::POST, &path, &[], Some(nic), super::CALL)
            .await
    }

    /// Takes the NIC with `mac` off the instance (one it lacks is already off).
    pub async fn detach_nic(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        mac: &str,
    ) -> Result<AgentInstance, AgentError> {
        let path = routes::instance_nic(id, mac);
        self.call(ep, Method::DELETE, &path, &[], NO_BODY, super::CALL)
            .await
    }

    pub async fn export_instance(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        req: &AgentExport,
    ) -> Result<AgentExported, AgentError> {
        let path = routes::instance_export(id);
        self.call(ep, Method::POST, &path, &[], Some(req), LONG_CALL)
            .await
    }
}
