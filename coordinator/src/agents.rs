//! The coordinator's mTLS client to agents: it presents the `coordinator` certificate and
//! trusts only the region's CA, which names each agent by its address.

use crate::store::hosts::{AgentEndpoint, socket_host};
use plinth_common::api::{
    AgentBmc, AgentCreateInstance, AgentExport, AgentExported, AgentFacts, AgentInstance,
    AgentMigrate, AgentMigration, AgentPower, AgentPowerReading, AgentPowerState, AgentPowerSweep,
    AgentPrepared, AgentProbe, AgentSolIo, AgentSolOutput, AgentStop, HostMetrics, Inventory,
};
use plinth_common::instance::InstanceAction;
use plinth_common::tls::{Revocations, checked_client_config};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent has not reported its API port yet")]
    NoEndpoint,
    #[error("request to the agent failed")]
    Http(#[from] reqwest::Error),
    #[error("TLS setup failed")]
    Tls(#[from] plinth_common::tls::TlsError),
    #[error("the agent answered {status}: {message}")]
    Refused { status: u16, message: String },
}

impl AgentError {
    /// A message for an operator: the agent's own words when it answered, else the cause
    /// chain of the transport error.
    pub fn explain(&self) -> String {
        use std::error::Error as _;
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// Long agent calls: a create fetches an image, an export uploads one.
const LONG_CALL: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct AgentClient {
    ca_pem: Arc<str>,
    /// Agent certificates refused as servers (the store keeps it current).
    revoked: Arc<Revocations>,
    /// Rebuilt when the coordinator's own certificate is rotated ([`AgentClient::reload`]).
    http: Arc<RwLock<reqwest::Client>>,
}

impl AgentClient {
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<AgentClient, AgentError> {
        Self::with_revocations(ca_pem, cert_pem, key_pem, Revocations::new())
    }

    /// A client that also refuses agents presenting a certificate in `revoked`.
    pub fn with_revocations(
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        revoked: Arc<Revocations>,
    ) -> Result<AgentClient, AgentError> {
        let http = Self::build(ca_pem, cert_pem, key_pem, &revoked)?;
        Ok(AgentClient {
            ca_pem: ca_pem.into(),
            revoked,
            http: Arc::new(RwLock::new(http)),
        })
    }

    fn build(
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        revoked: &Arc<Revocations>,
    ) -> Result<reqwest::Client, AgentError> {
        let tls = checked_client_config(ca_pem, Some((cert_pem, key_pem)), revoked.clone())?;
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// Presents a new client certificate from now on; connections open with the old one are
    /// dropped with the old client.
    pub fn reload(&self, cert_pem: &str, key_pem: &str) -> Result<(), AgentError> {
        let next = Self::build(&self.ca_pem, cert_pem, key_pem, &self.revoked)?;
        // A poisoned lock means a panic mid-swap; the client in it is still whole.
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    pub(crate) fn http(&self) -> reqwest::Client {
        self.http.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn url(ep: &AgentEndpoint, path: &str) -> Result<String, AgentError> {
        let port = ep.port.ok_or(AgentError::NoEndpoint)?;
        Ok(format!("https://{}:{port}{path}", socket_host(&ep.ip)))
    }

    /// The answer's body, or the agent's error message as [`AgentError::Refused`].
    pub(crate) async fn answer<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, AgentError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.json().await?);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<plinth_common::api::ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or(text);
        Err(AgentError::Refused {
            status: status.as_u16(),
            message,
        })
    }

    pub async fn create_instance(
        &self,
        ep: &AgentEndpoint,
        req: &AgentCreateInstance,
    ) -> Result<AgentInstance, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/instances")?)
            .timeout(LONG_CALL)
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// The instance's domain as the agent sees it; `None` when it has none.
    pub async fn instance(
        &self,
        ep: &AgentEndpoint,
        id: &str,
    ) -> Result<Option<AgentInstance>, AgentError> {
        let resp = self
            .http()
            .get(Self::url(ep, &format!("/v1/instances/{id}"))?)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::answer(resp).await.map(Some)
    }

    /// `start`, `reboot` or `stop` (with the graceful timeout).
    pub async fn instance_action(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        action: InstanceAction,
        stop_timeout_s: u64,
    ) -> Result<AgentInstance, AgentError> {
        let url = Self::url(ep, &format!("/v1/instances/{id}/{action}"))?;
        let resp = self
            .http()
            .post(url)
            .timeout(Duration::from_secs(stop_timeout_s + 60))
            .json(&AgentStop {
                timeout_s: stop_timeout_s,
            })
            .send()
            .await?;
        Self::answer(resp).await
    }

    pub async fn delete_instance(&self, ep: &AgentEndpoint, id: &str) -> Result<(), AgentError> {
        let resp = self
            .http()
            .delete(Self::url(ep, &format!("/v1/instances/{id}"))?)
            .timeout(Duration::from_secs(180))
            .send()
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::answer::<serde_json::Value>(resp).await.map(|_| ())
    }

    pub async fn export_instance(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        req: &AgentExport,
    ) -> Result<AgentExported, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, &format!("/v1/instances/{id}/export"))?)
            .timeout(LONG_CALL)
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

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
        let resp = self
            .http()
            .get(Self::url(ep, "/v1/metrics/history")?)
            .query(&query)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// What the agent sees now (not the last heartbeat).
    pub async fn facts(&self, ep: &AgentEndpoint) -> Result<AgentFacts, AgentError> {
        let resp = self.http().get(Self::url(ep, "/v1/facts")?).send().await?;
        Ok(resp.error_for_status()?.json().await?)
    }

    /// Live migration, on the target: fetch the image and make the instance's files, without
    /// a domain (it may download an image: a long call).
    pub async fn prepare_migration(
        &self,
        ep: &AgentEndpoint,
        req: &AgentCreateInstance,
        shared_storage: Option<&str>,
    ) -> Result<AgentPrepared, AgentError> {
        let mut url = Self::url(
            ep,
            &format!("/v1/instances/{}/prepare-migration", req.instance_id),
        )?;
        if let Some(storage) = shared_storage {
            // Storage ids are letters, digits and dashes (the agent makes them so).
            url = format!("{url}?shared_storage={storage}");
        }
        let resp = self
            .http()
            .post(url)
            .timeout(LONG_CALL)
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Live migration, on the source: starts it and answers at once.
    pub async fn migrate(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        req: &AgentMigrate,
    ) -> Result<AgentMigration, AgentError> {
        let url = Self::url(ep, &format!("/v1/instances/{id}/migrate"))?;
        let resp = self.http().post(url).json(req).send().await?;
        Self::answer(resp).await
    }

    /// How the source's migration of `id` goes (or how it ended); with `wait`, the agent
    /// answers when the migration ends or once `wait` has passed.
    pub async fn migration(
        &self,
        ep: &AgentEndpoint,
        id: &str,
        wait: Option<Duration>,
    ) -> Result<AgentMigration, AgentError> {
        let url = Self::url(ep, &format!("/v1/instances/{id}/migration"))?;
        let req = match wait {
            Some(wait) => self
                .http()
                .get(format!("{url}?wait_ms={}", wait.as_millis()))
                .timeout(wait + Duration::from_secs(10)),
            None => self.http().get(url),
        };
        Self::answer(req.send().await?).await
    }

    /// Aborts the source's migration of `id`; the guest stays on the source.
    pub async fn abort_migration(
        &self,
        ep: &AgentEndpoint,
        id: &str,
    ) -> Result<AgentMigration, AgentError> {
        let url = Self::url(ep, &format!("/v1/instances/{id}/migration"))?;
        let resp = self.http().delete(url).send().await?;
        Self::answer(resp).await
    }

    /// Bare metal: the agent reads the BMC's device id, FRU and power (preparation).
    pub async fn bmc_probe(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
    ) -> Result<AgentProbe, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/probe")?)
            .timeout(BMC_CALL)
            .json(bmc)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Bare metal: one power action; a soft reboot waits for the OS (up to five minutes).
    pub async fn bmc_power(
        &self,
        ep: &AgentEndpoint,
        req: &AgentPower,
    ) -> Result<AgentPowerState, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/power")?)
            .timeout(Duration::from_secs(420))
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Bare metal: the power of many BMCs, polled by the agent with bounded concurrency.
    pub async fn bmc_power_status(
        &self,
        ep: &AgentEndpoint,
        req: &AgentPowerSweep,
    ) -> Result<Vec<AgentPowerReading>, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/power-status")?)
            .timeout(Duration::from_secs(600))
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Bare metal: the agent closes its session with this BMC (the server was deleted).
    pub async fn bmc_forget(&self, ep: &AgentEndpoint, bmc: &AgentBmc) -> Result<(), AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/forget")?)
            .json(bmc)
            .send()
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Self::answer::<serde_json::Value>(resp).await.map(|_| ())
    }
}

impl AgentClient {
    /// Bare metal: activate (`true`) or deactivate the BMC's serial over LAN.
    pub async fn bmc_sol(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
        activate: bool,
    ) -> Result<(), AgentError> {
        let path = if activate {
            "/v1/bmc/sol/activate"
        } else {
            "/v1/bmc/sol/deactivate"
        };
        let resp = self
            .http()
            .post(Self::url(ep, path)?)
            .timeout(Duration::from_secs(60))
            .json(bmc)
            .send()
            .await?;
        Self::answer::<serde_json::Value>(resp).await.map(drop)
    }

    /// Bare metal: CPUs, memory and PCIe devices from the BMC's Redfish service.
    pub async fn bmc_inventory(
        &self,
        ep: &AgentEndpoint,
        bmc: &AgentBmc,
    ) -> Result<Inventory, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/inventory")?)
            .timeout(BMC_CALL)
            .json(bmc)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Bare metal: one console step — keys in, serial output out.
    pub async fn bmc_sol_io(
        &self,
        ep: &AgentEndpoint,
        req: &AgentSolIo,
    ) -> Result<AgentSolOutput, AgentError> {
        let resp = self
            .http()
            .post(Self::url(ep, "/v1/bmc/sol/io")?)
            .timeout(Duration::from_secs(60))
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }
}

/// A probe opens a session and reads FRU in parts: a few exchanges, each with its deadline.
const BMC_CALL: Duration = Duration::from_secs(120);
