//! The coordinator's mTLS client to agents: it presents the `coordinator` certificate and
//! trusts only the region's CA, which names each agent by its address.

use crate::store::hosts::{AgentEndpoint, socket_host};
use plinth_common::api::AgentFacts;
use plinth_common::tls::client_config;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent has not reported its API port yet")]
    NoEndpoint,
    #[error("request to the agent failed")]
    Http(#[from] reqwest::Error),
    #[error("TLS setup failed")]
    Tls(#[from] plinth_common::tls::TlsError),
}

#[derive(Clone, Debug)]
pub struct AgentClient {
    http: reqwest::Client,
}

impl AgentClient {
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<AgentClient, AgentError> {
        let tls = client_config(ca_pem, Some((cert_pem, key_pem)))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(AgentClient { http })
    }

    fn url(ep: &AgentEndpoint, path: &str) -> Result<String, AgentError> {
        let port = ep.port.ok_or(AgentError::NoEndpoint)?;
        Ok(format!("https://{}:{port}{path}", socket_host(&ep.ip)))
    }

    /// What the agent sees now (not the last heartbeat).
    pub async fn facts(&self, ep: &AgentEndpoint) -> Result<AgentFacts, AgentError> {
        let resp = self.http.get(Self::url(ep, "/v1/facts")?).send().await?;
        Ok(resp.error_for_status()?.json().await?)
    }
}
