//! Live migration out of this host: the domain's migratable XML, the peer-to-peer migration
//! itself (it blocks for the whole job, so it has no deadline of its own: the caller aborts
//! the job instead), the job's progress, and the abort.

use super::ffi::{self, JobStats};
use super::{Libvirt, LibvirtError};
use std::time::Duration;
use virt::domain::MigrateParameters;
use virt::sys;

/// Live, driven by the source libvirtd, persistent on the target and gone from here when it
/// succeeds.
const FLAGS: u32 = sys::VIR_MIGRATE_LIVE
    | sys::VIR_MIGRATE_PEER2PEER
    | sys::VIR_MIGRATE_PERSIST_DEST
    | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
/// With local disks: the disk's top qcow2 layer is copied (the target has the backing image
/// and an empty overlay of the same size already). Without it (shared storage), libvirt
/// checks that the disks are on a shared filesystem with no host cache, and refuses else.
const COPY_STORAGE: u32 = sys::VIR_MIGRATE_NON_SHARED_INC;

/// A migration of domain `domain` to the libvirt at `dest_uri`.
#[derive(Debug, Clone)]
pub struct Migration {
    pub domain: String,
    pub dest_uri: String,
    /// Where QEMU sends the guest (`tcp://host`); `None`: the address the target offers.
    pub migrate_uri: Option<String>,
    /// The domain as the target defines it (its disks at the target's paths).
    pub dest_xml: String,
    /// A cap in MiB/s; `None`: unlimited.
    pub bandwidth_mib_s: Option<u64>,
    /// Copy the disks (local storage); `false` on shared storage.
    pub copy_storage: bool,
}

/// A job's numbers as libvirt reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobProgress {
    pub elapsed_ms: u64,
    pub data_total: u64,
    pub data_processed: u64,
    pub data_remaining: u64,
}

impl JobProgress {
    /// `None` for libvirt's "no job".
    fn of(stats: &JobStats) -> Option<JobProgress> {
        (stats.kind != sys::VIR_DOMAIN_JOB_NONE as i32).then(|| JobProgress {
            elapsed_ms: stats.time_elapsed_ms.unwrap_or_default(),
            data_total: stats.data_total.unwrap_or_default(),
            data_processed: stats.data_processed.unwrap_or_default(),
            data_remaining: stats.data_remaining.unwrap_or_default(),
        })
    }
}

impl Libvirt {
    /// The running domain's XML as a migration target must see it (no runtime-only parts).
    pub async fn migratable_xml(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<String, LibvirtError> {
        let name = name.to_string();
        self.call(deadline, move |c| {
            c.lookup_domain_by_name(&name)?
                .xml_desc(sys::VIR_DOMAIN_XML_MIGRATABLE)
        })
        .await
    }

    /// Migrates the domain and returns when libvirt's job has ended, however long that takes:
    /// end it early with [`Libvirt::abort_job`]. On success the domain runs on the target
    /// and is no longer defined here.
    pub async fn migrate(&self, m: Migration) -> Result<(), LibvirtError> {
        let this = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            let conn = this.connection()?;
            let dom = conn.lookup_domain_by_name(&m.domain)?;
            let params = MigrateParameters {
                dest_xml: Some(m.dest_xml),
                uri: m.migrate_uri,
                bandwidth: m.bandwidth_mib_s,
                ..MigrateParameters::default()
            };
            let flags = if m.copy_storage {
                FLAGS | COPY_STORAGE
            } else {
                FLAGS
            };
            dom.migrate_to_uri3(Some(&m.dest_uri), params, flags)
        });
        Ok(job.await??)
    }

    /// The domain's job in progress; `None` when it has none.
    pub async fn job_progress(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<Option<JobProgress>, LibvirtError> {
        let name = name.to_string();
        self.call(deadline, move |c| {
            let stats = ffi::job_stats(&c.lookup_domain_by_name(&name)?, 0)?;
            Ok(JobProgress::of(&stats))
        })
        .await
    }

    /// Asks libvirt to end the domain's job (a migration rolls back; the domain stays here).
    pub async fn abort_job(&self, name: &str, deadline: Duration) -> Result<(), LibvirtError> {
        self.with_domain(name, deadline, ffi::abort_job).await
    }
}
