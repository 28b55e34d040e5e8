//! Host facts: cores and memory as the hypervisor sees them (libvirt node info), the CPU model
//! and hostname from the operating system (sysinfo), and where other hosts reach this one for
//! live migration (configuration).

use crate::config::MigrationUris;
use crate::libvirt::{Libvirt, LibvirtError};
use plinth_common::api::HostFacts;
use std::time::Duration;
use sysinfo::{CpuRefreshKind, RefreshKind, System};

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn hostname() -> String {
    System::host_name().unwrap_or_else(|| "localhost".into())
}

/// The CPU brand string (`Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz`), if the OS tells it.
pub fn cpu_model() -> Option<String> {
    let sys =
        System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
    sys.cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
}

pub async fn collect(
    libvirt: &Libvirt,
    migration: &MigrationUris,
    shared_storage: Option<&str>,
    deadline: Duration,
) -> Result<HostFacts, LibvirtError> {
    let node = libvirt.node(deadline).await?;
    Ok(HostFacts {
        hostname: hostname(),
        cpu_model: cpu_model().unwrap_or(node.model),
        total_cores: node.cpus,
        total_memory_bytes: node.memory_bytes,
        libvirt_uri: libvirt.uri().to_string(),
        hypervisor: node.driver,
        agent_version: AGENT_VERSION.to_string(),
        migration_uri: migration.migration_uri.clone(),
        migrate_uri: migration.migrate_uri.clone(),
        shared_storage: shared_storage.map(str::to_string),
        // The caller, which knows the agent's configuration and network, says.
        ipmi: false,
        nics: Vec::new(),
    })
}
