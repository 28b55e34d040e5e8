//! Instances on this host: each is a libvirt domain named by its instance id, with its disk and
//! cloud-init seed in `<data_dir>/instances/<id>/`, its image in the host's cache. Operations on
//! one instance take turns; a create that fails at any step leaves nothing behind. A running
//! instance can live-migrate to another host, whose agent prepared its files first
//! (migrate.rs).

mod cache;
mod dest_xml;
mod disk;
pub mod domain_xml;
mod error;
mod export;
mod files;
mod link;
mod locks;
mod migrate;
mod migrations;
mod modes;
mod request;
mod seed;
mod storage;
pub(crate) mod tool;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use error::InstanceError;
pub use link::CoordinatorLink;

use crate::libvirt::Libvirt;
use crate::network::host::Network;
use cache::ImageCache;
use domain_xml::DomainSpec;
use error::libvirt;
use files::Reuse;
use locks::{KeyGuard, KeyedLocks};
use migrations::Migrations;
use plinth_common::api::{AgentCreateInstance, AgentExported, AgentInstance, AgentNic};
use plinth_common::instance::domain_name;
use request::{CreateSpec, check_name};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Defining and starting a domain can take a while on a busy host.
const LONG_CALL: Duration = Duration::from_secs(60);
const CALL: Duration = Duration::from_secs(30);
/// How often a stop looks whether the guest has powered off.
const STOP_POLL: Duration = Duration::from_millis(250);

const DISK: &str = "disk.qcow2";
const SEED: &str = "seed.iso";
/// Where exports flatten disks before uploading them.
const EXPORTS: &str = "exports";

pub struct Instances {
    libvirt: Libvirt,
    data_dir: PathBuf,
    /// Where instance directories are: `<data_dir>/instances`, or on the shared storage.
    instances_dir: PathBuf,
    /// The shared storage's id when disks live there.
    shared: Option<String>,
    cache: ImageCache,
    /// One operation at a time per instance id.
    busy: KeyedLocks,
    /// Live migrations out of this host: the one in flight per instance, and the last outcome.
    migrations: Migrations,
    /// Bridges and filters for the instances' NICs.
    pub network: Arc<Network>,
}

/// QEMU under `qemu:///system` runs as an unprivileged user (libvirt hands it the disk files),
/// so it must be able to pass through the storage directory to reach `instances/` and
/// `images/` (modes.rs). The directories may be traversed but not listed; the agent's key and
/// seeds stay 0600.
fn traversable(root: &Path) {
    for dir in [
        root.to_path_buf(),
        root.join("instances"),
        root.join("images"),
    ] {
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        if let Err(err) = modes::traversable_dir(&dir) {
            warn!(path = %dir.display(), error = %err, "Could not set a storage directory's mode.");
        }
    }
}

impl Instances {
    pub fn new(libvirt: Libvirt, data_dir: &Path) -> Instances {
        Self::at(libvirt, data_dir, data_dir, None)
    }

    /// With `shared`, instance disks and the image cache live on that shared storage (every
    /// host of the cluster mounts it at the same path); its id is read from it, or made when
    /// this host is the first there.
    pub fn with_storage(
        libvirt: Libvirt,
        data_dir: &Path,
        shared: Option<&Path>,
    ) -> anyhow::Result<Instances> {
        Ok(match shared {
            None => Self::new(libvirt, data_dir),
            Some(root) => {
                let root = std::path::absolute(root)?;
                let id = storage::shared_id(&root)?;
                Self::at(libvirt, data_dir, &root, Some(id))
            }
        })
    }

    fn at(libvirt: Libvirt, data_dir: &Path, root: &Path, shared: Option<String>) -> Instances {
        let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let cache = ImageCache::new(root.join("images"));
        let _ = std::fs::remove_dir_all(data_dir.join(EXPORTS));
        // Transfers and creates a crash interrupted leave files nothing else would remove; on
        // shared storage they may be another host's, in progress.
        if shared.is_none() {
            cache.remove_partials();
            files::remove_staging(&root.join("instances"));
        }
        traversable(&data_dir);
        traversable(&root);
        Instances {
            cache,
            network: Arc::new(Network::new(libvirt.clone(), &data_dir)),
            libvirt,
            data_dir,
            instances_dir: root.join("instances"),
            shared,
            busy: KeyedLocks::default(),
            migrations: Migrations::default(),
        }
    }

    /// The shared storage's id when instance disks live there.
    pub fn shared_storage(&self) -> Option<&str> {
        self.shared.as_deref()
    }

    /// This instance's turn: waits for the operation on it in progress, and refuses while
    /// it migrates to another host (a migration does not hold the turn while it runs, so
    /// reads still answer).
    async fn turn(&self, id: &str) -> Result<KeyGuard<'_>, InstanceError> {
        let turn = self.busy.lock(id).await;
        if self.migrations.is_running(id) {
            return Err(InstanceError::Migrating(id.to_string()));
        }
        Ok(turn)
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.instances_dir.join(id)
    }

    /// Fetches the image, makes the disk and the seed, defines the domain and starts it. If the
    /// domain exists already, answers it as it is.
    pub async fn create(
        &self,
        req: AgentCreateInstance,
        link: &CoordinatorLink,
    ) -> Result<AgentInstance, InstanceError> {
        self.create_with_hostdevs(req, link, Vec::new()).await
    }

    /// [`Instances::create`] with `<hostdev>` elements in the domain (its vGPU or GPU).
    pub async fn create_with_hostdevs(
        &self,
        req: AgentCreateInstance,
        link: &CoordinatorLink,
        hostdevs: Vec<String>,
    ) -> Result<AgentInstance, InstanceError> {
        let mut spec = CreateSpec::check(req)?;
        spec.hostdevs = hostdevs;
        let id = spec.instance_id.as_str();
        let _turn = self.turn(id).await?;
        if let Some(existing) = self.describe(id).await? {
            return Ok(existing);
        }
        if let Err(err) = self.build(&spec, link).await {
            if let Err(cleanup) = self.discard(id).await {
                warn!(instance = %id, error = %cleanup, "Could not remove what a failed create made.");
            }
            return Err(err);
        }
        info!(instance = %id, "Instance created and started.");
        self.describe(id)
            .await?
            .ok_or_else(|| InstanceError::NotFound(id.to_string()))
    }

    async fn build(&self, spec: &CreateSpec, link: &CoordinatorLink) -> Result<(), InstanceError> {
        let id = spec.instance_id.as_str();
        let files = self.make_files(spec, link, Reuse::Never).await?;
        let hypervisor = self
            .libvirt
            .hypervisor(CALL)
            .await
            .map_err(libvirt("choosing the hypervisor for"))?;
        let (nics, _bridges) = match hypervisor {
            crate::libvirt::Hypervisor::Test => (self.network.simulated(&spec.nics)?, None),
            _ => {
                let (nics, turn) = self.network.prepare(&spec.nics).await?;
                (nics, Some(turn))
            }
        };
        let xml = domain_xml::render(&DomainSpec {
            name: domain_name(id),
            hypervisor,
            vcpus: spec.vcpus,
            memory_bytes: spec.memory_bytes,
            disk: &files.disk,
            seed: &files.seed,
            boot_iso: files.iso.as_deref(),
            hostdevs: &spec.hostdevs,
            shared: self.shared.is_some(),
            nics: &nics,
        });
        self.libvirt
            .define_domain(xml, LONG_CALL)
            .await
            .map_err(libvirt("defining"))?;
        self.libvirt
            .start_domain(domain_name(id), LONG_CALL)
            .await
            .map_err(libvirt("starting"))?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        self.describe(id)
            .await?
            .ok_or_else(|| InstanceError::NotFound(id.to_string()))
    }

    /// Boots a stopped instance; a running one is left alone. The bridges its NICs are on are
    /// made again first if they are gone (the host rebooted since).
    pub async fn start(&self, id: &str) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        let _turn = self.turn(id).await?;
        let xml = self.xml_of(id, false).await?;
        let _bridges = self
            .network
            .ensure_named(&domain_xml::bridges(&xml))
            .await?;
        self.libvirt
            .start_domain(domain_name(id), LONG_CALL)
            .await
            .map_err(|e| not_found_or(id, e, "starting"))?;
        self.get(id).await
    }

    /// What a heartbeat's answer says of the network: DHCP for the NICs the coordinator lists
    /// (none on libvirt's test driver, whose NICs are bookkeeping), the bridges of removed
    /// segments removed.
    pub async fn tidy_network(
        &self,
        uplinks: &[plinth_common::api::Uplink],
        leases: &[AgentNic],
    ) -> Result<(), InstanceError> {
        let leases = if self.simulated().await? {
            &[][..]
        } else {
            leases
        };
        Ok(self.network.tidy(uplinks, leases).await?)
    }

    /// libvirt's test driver: it can neither hot-plug nor filter, and the host has no bridges
    /// for it, so NICs are only what the coordinator records.
    async fn simulated(&self) -> Result<bool, InstanceError> {
        Ok(self
            .libvirt
            .hypervisor(CALL)
            .await
            .map_err(libvirt("choosing the hypervisor for"))?
            == crate::libvirt::Hypervisor::Test)
    }

    /// The domain's XML: its definition when `inactive`, else what runs.
    async fn xml_of(&self, id: &str, inactive: bool) -> Result<String, InstanceError> {
        self.libvirt
            .domain_xml(domain_name(id), inactive, CALL)
            .await
            .map_err(|e| not_found_or(id, e, "describing"))
    }

    /// Gives the instance `nic`, live when it runs and in its definition, on its uplink's
    /// bridge behind the filter; a NIC with that MAC already there stays as it is.
    pub async fn attach_nic(
        &self,
        id: &str,
        nic: AgentNic,
    ) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        request::check_nic(0, &nic)?;
        let _turn = self.turn(id).await?;
        if self.simulated().await? {
            return self.get(id).await;
        }
        let xml = self.xml_of(id, true).await?;
        if domain_xml::interface_with_mac(&xml, &nic.mac).is_none() {
            let (nics, _bridges) = self.network.prepare(std::slice::from_ref(&nic)).await?;
            for nic in &nics {
                self.libvirt
                    .attach_device(domain_name(id), domain_xml::interface(nic), CALL)
                    .await
                    .map_err(libvirt("attaching a NIC to"))?;
            }
            info!(instance = %id, mac = %nic.mac, address = %nic.address, "NIC attached.");
        }
        self.get(id).await
    }

    /// Takes the NIC with `mac` off the instance, live and from its definition; one it does
    /// not have is already gone.
    pub async fn detach_nic(&self, id: &str, mac: &str) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        let _turn = self.turn(id).await?;
        if self.simulated().await? {
            return self.get(id).await;
        }
        let xml = self.xml_of(id, true).await?;
        if let Some(interface) = domain_xml::interface_with_mac(&xml, mac) {
            self.libvirt
                .detach_device(domain_name(id), interface, CALL)
                .await
                .map_err(libvirt("detaching a NIC from"))?;
            info!(instance = %id, mac = %mac, "NIC detached.");
        }
        self.network.forget(&[mac.to_string()]).await;
        self.get(id).await
    }

    pub async fn reboot(&self, id: &str) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        let _turn = self.turn(id).await?;
        let now = self.get(id).await?;
        if !matches!(now.state.as_str(), "running" | "blocked") {
            return Err(InstanceError::BadState {
                id: id.to_string(),
                state: now.state,
                action: "reboot",
            });
        }
        self.libvirt
            .reboot_domain(domain_name(id), CALL)
            .await
            .map_err(|e| not_found_or(id, e, "rebooting"))?;
        self.get(id).await
    }

    /// Asks the guest to power off, waits up to `timeout` for it, then forces it off. A
    /// stopped instance is left alone.
    pub async fn stop(&self, id: &str, timeout: Duration) -> Result<AgentInstance, InstanceError> {
        check_name("instance id", id)?;
        let _turn = self.turn(id).await?;
        let name = domain_name(id);
        if !self.is_active(id).await? {
            return self.get(id).await;
        }
        self.libvirt
            .shutdown_domain(name, CALL)
            .await
            .map_err(|e| not_found_or(id, e, "shutting down"))?;
        let deadline = tokio::time::Instant::now() + timeout;
        while self.is_active(id).await? && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(STOP_POLL).await;
        }
        if self.is_active(id).await? {
            warn!(instance = %id, timeout_s = timeout.as_secs(), "Guest did not power off in time; forcing it off.");
            self.libvirt
                .destroy_domain(name, LONG_CALL)
                .await
                .map_err(|e| not_found_or(id, e, "forcing off"))?;
        }
        self.get(id).await
    }

    /// Removes the domain and the instance's directory; the cached image stays. Deleting what
    /// is not there succeeds.
    pub async fn delete(&self, id: &str) -> Result<(), InstanceError> {
        check_name("instance id", id)?;
        let _turn = self.turn(id).await?;
        let macs = match self.xml_of(id, true).await {
            Ok(xml) => domain_xml::macs(&xml),
            Err(_) => Vec::new(),
        };
        self.discard(id).await?;
        self.network.forget(&macs).await;
        info!(instance = %id, "Instance deleted.");
        Ok(())
    }

    /// Flattens the disk and uploads it to the coordinator as image `image_id`.
    pub async fn export(
        &self,
        id: &str,
        image_id: &str,
        link: &CoordinatorLink,
    ) -> Result<AgentExported, InstanceError> {
        check_name("instance id", id)?;
        check_name("image_id", image_id)?;
        let _turn = self.turn(id).await?;
        let disk = self.dir_of(id).join(DISK);
        if !tokio::fs::try_exists(&disk).await.unwrap_or(false) {
            return Err(InstanceError::NotFound(id.to_string()));
        }
        let running = self.is_active(id).await?;
        export::export(&disk, running, &self.data_dir.join(EXPORTS), link, image_id)
            .await
            .map_err(InstanceError::Export)
    }

    /// The instance as its domain and disk are now; `None` without a domain.
    async fn describe(&self, id: &str) -> Result<Option<AgentInstance>, InstanceError> {
        let Some(dom) = self
            .libvirt
            .domain(domain_name(id), CALL)
            .await
            .map_err(libvirt("looking up"))?
        else {
            return Ok(None);
        };
        let disk = self.dir_of(id).join(DISK);
        let backing_file = match disk::info(&disk).await {
            Ok(info) => info.backing_file().map(str::to_string),
            Err(err) => {
                warn!(instance = %id, error = %err, "Could not read the instance disk.");
                None
            }
        };
        Ok(Some(AgentInstance {
            instance_id: id.to_string(),
            domain_uuid: dom.uuid,
            state: dom.state.to_string(),
            vcpus: dom.vcpus,
            memory_bytes: dom.memory_bytes,
            disk_path: disk.to_string_lossy().into_owned(),
            backing_file,
        }))
    }

    async fn is_active(&self, id: &str) -> Result<bool, InstanceError> {
        match self.libvirt.domain(domain_name(id), CALL).await {
            Ok(Some(dom)) => Ok(dom.active),
            Ok(None) => Err(InstanceError::NotFound(id.to_string())),
            Err(e) => Err(libvirt("looking up")(e)),
        }
    }

    /// Domain off and undefined, directory gone (a migration target's prepared files, with
    /// no domain, too); each step a no-op when already done.
    async fn discard(&self, id: &str) -> Result<(), InstanceError> {
        let name = domain_name(id);
        // On shared storage, files with no domain here may be another host's guest's (this
        // host was the target of a migration that failed): they stay.
        if self.shared.is_some()
            && self
                .libvirt
                .domain(name, CALL)
                .await
                .map_err(libvirt("looking up"))?
                .is_none()
        {
            remove_dir(&self.staging_of(id)).await?;
            return Ok(());
        }
        match self.libvirt.destroy_domain(name, LONG_CALL).await {
            Err(e) if !e.is_no_domain() => return Err(libvirt("destroying")(e)),
            _ => {}
        }
        self.libvirt
            .undefine_domain(name, CALL)
            .await
            .map_err(libvirt("undefining"))?;
        remove_dir(&self.staging_of(id)).await?;
        remove_dir(&self.dir_of(id)).await
    }
}

fn not_found_or(id: &str, err: crate::libvirt::LibvirtError, step: &'static str) -> InstanceError {
    if err.is_no_domain() {
        InstanceError::NotFound(id.to_string())
    } else {
        libvirt(step)(err)
    }
}

async fn remove_dir(dir: &Path) -> Result<(), InstanceError> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(InstanceError::Io {
            what: "removing",
            path: dir.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
