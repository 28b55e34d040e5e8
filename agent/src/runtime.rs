//! The running agent's shared state: identity, TLS material that renewal swaps, the clients it
//! calls the coordinator with, libvirt, and the instances it runs.

use crate::config::MigrationUris;
use crate::devices::Devices;
use crate::identity::{AgentDir, Enrollment};
use crate::instances::{CoordinatorLink, Instances};
use crate::libvirt::Libvirt;
use crate::metrics::{Metrics, MetricsSettings};
use plinth_common::tls::{ReloadableCert, Revocations, checked_client_config};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub struct Agent {
    pub dir: AgentDir,
    pub enrollment: Enrollment,
    pub ca_pem: String,
    pub libvirt: Libvirt,
    pub heartbeat_interval: Duration,
    /// Reported in the facts; the libvirt URI defaults to TLS on the enrolled address.
    pub migration: MigrationUris,
    /// The certificate the API serves; renewal replaces it in place.
    pub server_cert: Arc<ReloadableCert>,
    pub instances: Instances,
    /// USB devices, GPUs and vGPUs (sysfs at `/` unless [`Agent::with_sysfs_root`]).
    pub devices: Devices,
    /// Host and instance metrics, and the history of the host's.
    pub metrics: Arc<Metrics>,
    /// BMC sessions, when this agent speaks IPMI (config `ipmi`).
    pub ipmi: Option<Arc<crate::ipmi::Ipmi>>,
    /// The Redfish client for BMCs' inventory (with IPMI).
    pub redfish: Option<crate::redfish::Redfish>,
    client: RwLock<reqwest::Client>,
    /// For image downloads and exports, which take as long as their bytes do.
    transfer_client: RwLock<reqwest::Client>,
    cert_pem: RwLock<String>,
    api_port: AtomicU16,
    /// The coordinator's certificates it rotated out: refused as its client and as its server.
    pub revoked_coordinator: Arc<Revocations>,
    /// Refuses calls of an ended term of the coordinators' job lease.
    pub fence: crate::fence::Fence,
    /// Where heartbeats and renewals go: the enrolled coordinator unless configured
    /// ([`Agent::with_coordinators`]).
    pub coordinators: crate::coordinators::Coordinators,
}

/// A client presenting the agent's certificate and trusting only the region CA, refusing a
/// coordinator certificate that was rotated out.
pub fn coordinator_client(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    revoked: &Arc<Revocations>,
) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(ca_pem, cert_pem, key_pem, revoked)?
        .timeout(Duration::from_secs(15))
        .build()?)
}

/// The same TLS for transfers: no total timeout, but a peer silent for five minutes is given
/// up on (the coordinator verifies an upload before it answers, so not much less).
pub fn transfer_client(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    revoked: &Arc<Revocations>,
) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(ca_pem, cert_pem, key_pem, revoked)?
        .read_timeout(Duration::from_secs(300))
        .build()?)
}

fn client_builder(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    revoked: &Arc<Revocations>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let tls = checked_client_config(ca_pem, Some((cert_pem, key_pem)), revoked.clone())?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(5)))
}

impl Agent {
    pub fn load(
        dir: AgentDir,
        libvirt: Libvirt,
        heartbeat_interval: Duration,
        migration: MigrationUris,
        shared_storage_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Agent> {
        let enrollment = dir.load_enrollment()?;
        let migration = migration.or_default(enrollment.address);
        let ca_pem = std::fs::read_to_string(dir.ca())?;
        let (cert_pem, key_pem) = dir.load_credentials()?;
        let revoked = Revocations::new();
        revoked.replace(dir.load_revoked_coordinator()?);
        Ok(Agent {
            server_cert: ReloadableCert::new(&cert_pem, &key_pem)?,
            client: RwLock::new(coordinator_client(&ca_pem, &cert_pem, &key_pem, &revoked)?),
            transfer_client: RwLock::new(transfer_client(&ca_pem, &cert_pem, &key_pem, &revoked)?),
            revoked_coordinator: revoked,
            fence: crate::fence::Fence::load(dir.job_epoch()),
            coordinators: crate::coordinators::Coordinators::new(vec![
                enrollment.coordinator.clone(),
            ])?,
            devices: Devices::new(
                std::path::Path::new(crate::config::DEFAULT_SYSFS_ROOT),
                dir.root(),
                libvirt.clone(),
            ),
            instances: Instances::with_storage(libvirt.clone(), dir.root(), shared_storage_dir)?,
            metrics: Arc::new(Metrics::new(libvirt.clone(), MetricsSettings::default())),
            ipmi: None,
            redfish: None,
            cert_pem: RwLock::new(cert_pem),
            api_port: AtomicU16::new(0),
            dir,
            enrollment,
            ca_pem,
            libvirt,
            heartbeat_interval,
            migration,
        })
    }

    /// Reports to `urls` (in order of preference) instead of the enrolled coordinator only.
    pub fn with_coordinators(mut self, urls: &[String]) -> anyhow::Result<Agent> {
        if !urls.is_empty() {
            self.coordinators = crate::coordinators::Coordinators::new(urls.to_vec())?;
        }
        Ok(self)
    }

    /// Reads and slices devices under `root` instead of `/`.
    pub fn with_sysfs_root(mut self, root: &std::path::Path) -> Agent {
        self.devices = Devices::new(root, self.dir.root(), self.libvirt.clone());
        self
    }

    /// The same agent with metrics collected as `settings` say.
    pub fn with_metrics(mut self, settings: MetricsSettings) -> Agent {
        self.metrics = Arc::new(Metrics::new(self.libvirt.clone(), settings));
        self
    }

    pub fn host_id(&self) -> &str {
        &self.enrollment.host_id
    }

    pub fn client(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The transfer client and where the coordinator is, for image bytes.
    pub fn coordinator_link(&self) -> CoordinatorLink {
        CoordinatorLink {
            client: self
                .transfer_client
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            base_url: self.coordinator_url(""),
        }
    }

    pub fn cert_pem(&self) -> String {
        self.cert_pem
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `path` on the coordinator in use.
    pub fn coordinator_url(&self, path: &str) -> String {
        format!("{}{path}", self.coordinators.current())
    }

    /// POSTs `body` as JSON to `path` on the coordinator in use, or on the next that answers
    /// ([`crate::coordinators::Coordinators::send`]).
    pub async fn post_to_coordinator(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<reqwest::Response> {
        let client = self.client();
        self.coordinators
            .send(|base| client.post(format!("{base}{path}")).json(body))
            .await
    }

    pub fn set_api_port(&self, port: u16) {
        self.api_port.store(port, Ordering::Relaxed);
    }

    pub fn api_port(&self) -> u16 {
        self.api_port.load(Ordering::Relaxed)
    }

    /// Saves a renewed certificate and key, then serves and presents them.
    pub fn install_credentials(&self, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        let client =
            coordinator_client(&self.ca_pem, cert_pem, key_pem, &self.revoked_coordinator)?;
        let transfers =
            transfer_client(&self.ca_pem, cert_pem, key_pem, &self.revoked_coordinator)?;
        self.dir.save_credentials(cert_pem, key_pem)?;
        self.server_cert.replace(cert_pem, key_pem)?;
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
        *self
            .transfer_client
            .write()
            .unwrap_or_else(|p| p.into_inner()) = transfers;
        *self.cert_pem.write().unwrap_or_else(|p| p.into_inner()) = cert_pem.to_string();
        Ok(())
    }
}

impl Agent {
    /// Takes the coordinator's list of its rotated-out certificates (every heartbeat): refused
    /// from now on, and remembered across restarts. Entries the list no longer carries have
    /// expired.
    pub fn note_revoked_coordinator(&self, serials: &[String]) -> anyhow::Result<()> {
        let mut current: Vec<String> = self
            .revoked_coordinator
            .snapshot()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let mut wanted = serials.to_vec();
        current.sort();
        wanted.sort();
        wanted.dedup();
        if current == wanted {
            return Ok(());
        }
        let now = plinth_common::timefmt::now_ms();
        let entries: Vec<(String, i64)> = wanted.into_iter().map(|s| (s, now)).collect();
        self.dir.save_revoked_coordinator(&entries)?;
        self.revoked_coordinator.replace(entries);
        tracing::info!(
            count = serials.len(),
            "The coordinator's rotated-out certificates are refused from now on."
        );
        Ok(())
    }
}
