//! Live migration, both ends. The target prepares the instance's files as a create would
//! (no domain); the source migrates the running domain peer to peer into them, in the
//! background, and keeps the outcome. The migration does not hold the instance's turn while
//! it runs (a read still answers; other operations are refused as `Migrating`), and is
//! aborted when it overruns its time: the domain then stays here.

use super::dest_xml::{self, Here};
use super::error::libvirt;
use super::files::Reuse;
use super::migrations::{Abort, Migrations, drive};
use super::request::{CreateSpec, MigrateSpec, check_name};
use super::{CALL, CoordinatorLink, DISK, InstanceError, Instances, SEED, remove_dir};
use crate::libvirt::{Libvirt, Migration};
use plinth_common::api::{AgentCreateInstance, AgentMigrate, AgentMigration, AgentPrepared};
use plinth_common::instance::domain_name;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// How often a migration to abort is asked again until it has ended (libvirt forgets an
/// abort that comes while the job still connects to the target).
const ABORT_RETRY: Duration = Duration::from_secs(2);
/// Reading a job's numbers must not hold up a poll's answer, or the outcome, for long.
const STATS_CALL: Duration = Duration::from_secs(5);
/// The longest a status request waits for a migration to end.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

impl Instances {
    /// On the target: fetches the image and makes the instance's files, exactly as a create
    /// would, but defines no domain. Files already there that match `req` are kept, so a
    /// repeat answers the same. Refused when the instance has a domain here. With `shared`
    /// (the id of the storage the source keeps the disks on), the files are the source's,
    /// on storage this host mounts too: they must be there, and nothing is made.
    pub async fn prepare_migration(
        &self,
        req: AgentCreateInstance,
        link: &CoordinatorLink,
        shared: Option<&str>,
    ) -> Result<AgentPrepared, InstanceError> {
        let spec = CreateSpec::check(req)?;
        let id = spec.instance_id.as_str();
        let _turn = self.turn(id).await?;
        if self
            .libvirt
            .domain(domain_name(id), CALL)
            .await
            .map_err(libvirt("looking up"))?
            .is_some()
        {
            return Err(InstanceError::Exists(id.to_string()));
        }
        let files = match shared {
            None => self.make_files(&spec, link, Reuse::IfMatching).await?,
            Some(storage) => self.shared_files(&spec, storage).await?,
        };
        // The incoming domain's NICs join the same bridges here (named by their uplinks).
        if !self.simulated().await? {
            drop(self.network.prepare(&spec.nics).await?);
        }
        info!(instance = %id, "Files prepared for an incoming migration.");
        Ok(files.prepared())
    }

    /// On the source: starts migrating the running domain to `req.dest_uri` into the files
    /// the target prepared, and answers at once (`running`).
    pub async fn migrate(
        &self,
        id: &str,
        req: AgentMigrate,
    ) -> Result<AgentMigration, InstanceError> {
        check_name("instance id", id)?;
        let spec = MigrateSpec::check(req)?;
        if spec.shared_storage && self.shared.is_none() {
            return Err(InstanceError::NotMigratable {
                id: id.to_string(),
                reason: "this host keeps its disks locally, not on shared storage".into(),
            });
        }
        let _turn = self.turn(id).await?;
        let name = domain_name(id);
        let dom = self
            .libvirt
            .domain(name, CALL)
            .await
            .map_err(libvirt("looking up"))?
            .ok_or_else(|| InstanceError::NotFound(id.to_string()))?;
        if dom.state != "running" {
            return Err(InstanceError::BadState {
                id: id.to_string(),
                state: dom.state.to_string(),
                action: "live migration",
            });
        }
        let xml = self
            .libvirt
            .migratable_xml(name, CALL)
            .await
            .map_err(libvirt("describing"))?;
        let dir = self.dir_of(id);
        let (disk, seed) = (dir.join(DISK), dir.join(SEED));
        let here = Here {
            disk: &disk,
            seed: &seed,
        };
        let dest_xml = dest_xml::retarget(&xml, &here, &spec.prepared).map_err(|reason| {
            InstanceError::NotMigratable {
                id: id.to_string(),
                reason,
            }
        })?;
        // Under the turn, so nothing else began one since the turn's own check.
        let (started, wake) = self
            .migrations
            .begin(id)
            .ok_or_else(|| InstanceError::Migrating(id.to_string()))?;
        let job = Job {
            wake,
            libvirt: self.libvirt.clone(),
            migrations: self.migrations.clone(),
            id: id.to_string(),
            // On shared storage the files are the target's now too.
            dir: (!spec.shared_storage).then_some(dir),
            timeout: spec.timeout,
            migration: Migration {
                domain: name.to_string(),
                dest_uri: spec.dest_uri,
                migrate_uri: spec.migrate_uri,
                dest_xml,
                bandwidth_mib_s: spec.bandwidth_mib_s,
                copy_storage: !spec.shared_storage,
            },
        };
        info!(instance = %id, target = %job.migration.dest_uri, timeout_s = spec.timeout.as_secs(), "Live migration started.");
        tokio::spawn(job.run());
        Ok(started)
    }

    /// The instance's migration from here: the one running (with libvirt's numbers now), or
    /// the last outcome, or `none`. With `wait`, a running one is answered when it ends or
    /// once `wait` has passed, whichever comes first.
    pub async fn migration(
        &self,
        id: &str,
        wait: Option<Duration>,
    ) -> Result<AgentMigration, InstanceError> {
        check_name("instance id", id)?;
        if let Some(wait) = wait {
            self.migrations.wait_end(id, wait.min(MAX_WAIT)).await;
        }
        if self.migrations.is_running(id) {
            match self.libvirt.job_progress(domain_name(id), STATS_CALL).await {
                Ok(Some(now)) => self.migrations.progress(id, now),
                Ok(None) => {}
                Err(err) => debug!(instance = %id, error = %err, "No job progress this time."),
            }
        }
        Ok(self.migrations.get(id))
    }

    /// Has the running migration aborted (its job asks libvirt until the job ends); answers
    /// it as it stands, still `running` until libvirt has rolled it back. Without one,
    /// answers the last outcome, or `none`.
    pub async fn abort_migration(&self, id: &str) -> Result<AgentMigration, InstanceError> {
        check_name("instance id", id)?;
        match self.migrations.aborting(id, Abort::Requested) {
            Some(now) => {
                info!(instance = %id, "Live migration abort requested.");
                Ok(now)
            }
            None => Ok(self.migrations.get(id)),
        }
    }
}

/// One migration in the background, from start to recorded outcome.
struct Job {
    /// Fires when an abort is asked for.
    wake: Arc<Notify>,
    libvirt: Libvirt,
    migrations: Migrations,
    id: String,
    /// The instance's directory here, removed once the domain lives on the target (`None` on
    /// shared storage: the target uses the same files).
    dir: Option<PathBuf>,
    timeout: Duration,
    migration: Migration,
}

impl Job {
    async fn run(self) {
        let Job {
            wake,
            libvirt,
            migrations,
            id,
            dir,
            timeout,
            migration,
        } = self;
        let (name, dest_uri) = (migration.domain.clone(), migration.dest_uri.clone());
        let started = Instant::now();
        let requested = wake.notified();
        let outcome = drive(
            libvirt.migrate(migration),
            timeout,
            requested,
            ABORT_RETRY,
            || {
                let (libvirt, migrations, id, name) = (
                    libvirt.clone(),
                    migrations.clone(),
                    id.clone(),
                    name.clone(),
                );
                async move {
                    // An abort on request keeps its reason: the first one stays.
                    migrations.aborting(&id, Abort::TimedOut(timeout));
                    if let Err(err) = libvirt.abort_job(&name, CALL).await {
                        debug!(instance = %id, error = %err, "Abort refused; trying again.");
                    }
                }
            },
        )
        .await;
        let measured = started.elapsed();
        match outcome {
            Ok(()) => {
                // Known at once to whoever follows it; the cleanup comes after.
                migrations.succeeded(&id, measured);
                info!(instance = %id, target = %dest_uri, libvirt_ms = measured.as_millis() as u64, "Live migration finished.");
                if let Some(dir) = dir
                    && let Err(err) = remove_dir(&dir).await
                {
                    warn!(instance = %id, error = %err, "Could not remove the migrated instance's files.");
                }
            }
            Err(err) => {
                warn!(instance = %id, target = %dest_uri, error = %err, "Live migration failed; the instance stays here.");
                migrations.failed(&id, err.to_string(), measured);
            }
        }
    }
}
