//! `plinth hosts`: list and search the host registry, show one host, lock and unlock it, ask
//! its agent what it sees now, and list the instances placed on it (maintenance is in
//! maintenance.rs).

use crate::client::Client;
use crate::devices::{self, GpusArgs, UsbArgs};
use crate::format::{ago, cores, local_time, memory, or_dash, size, when};
use crate::host_identity;
use crate::instances;
use crate::maintenance::{self, MaintenanceCommand};
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use clap::Subcommand;
use plinth_common::api::{AgentFacts, AgentStatus, Domain, Host, HostDetail, HostFacts, HostPage};

#[derive(Subcommand)]
pub enum HostsCommand {
    /// List hosts, with search and filters.
    List(ListArgs),
    /// Show one host with its domains.
    Show { id: String },
    /// Lock a host: no new instances go there; running ones stay.
    Lock { id: String },
    /// Unlock a locked host.
    Unlock { id: String },
    /// Ask the host's agent, live, for its facts and domains.
    Agent { id: String },
    /// List the instances placed on a host.
    Instances {
        id: String,
        /// Text to find in name, id, tenant email or image id.
        #[arg(short = 'q', long = "q", value_name = "TEXT")]
        q: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// A host's USB devices; `assign` / `release` one to or from an instance.
    Usb(UsbArgs),
    /// A host's GPUs; `slice` one into vGPUs, `restore` it.
    Gpus(GpusArgs),
    /// A host's vGPUs.
    Vgpus { id: String },
    /// The host's 14 metrics: current values and a trend of the recent history.
    Metrics(crate::metrics::MetricsArgs),
    /// Maintenance: drain a locked host, follow or plan the drain, exit maintenance.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// Remove a host from the region and revoke its certificates. Only a host without
    /// instances (after maintenance) unless --force with --reason: its instances end in error.
    Delete {
        id: String,
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why (with --force; recorded in the audit log and the instances' reason).
        #[arg(long, requires = "force")]
        reason: Option<String>,
    },
    /// The certificates the CA issued to the host's agent, and which are accepted.
    Certs {
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke every certificate of the host now (a compromised host); it can re-enroll.
    RevokeCerts {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// A one-time token that re-enrolls the host with a new key (same id and cluster); its
    /// use revokes the host's earlier certificates.
    Reenroll {
        id: String,
        /// How long the token stays valid (at most 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Case-insensitive text to find in id, ip, cluster or CPU model.
    #[arg(long, value_name = "TEXT")]
    q: Option<String>,
    /// Only hosts in this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Only hosts in this state.
    #[arg(long, value_parser = ["available", "locked", "entering_maintenance", "maintenance"])]
    state: Option<String>,
    /// Only hosts whose agent is online or offline.
    #[arg(long, value_parser = ["online", "offline"])]
    agent: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let text = [
            ("q", &self.q),
            ("cluster", &self.cluster),
            ("state", &self.state),
            ("agent", &self.agent),
        ];
        text.into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
            .collect()
    }
}

pub async fn run(client: &Client, out: &Output, command: HostsCommand) -> anyhow::Result<()> {
    match command {
        HostsCommand::List(args) => out.emit(
            client
                .list(&["v1", "hosts"], &args.query(), &args.page)
                .await?,
            render_page,
        ),
        HostsCommand::Show { id } => {
            out.emit(client.get(&["v1", "hosts", &id]).await?, render_detail)
        }
        HostsCommand::Lock { id } => out.emit(
            client.post_empty(&["v1", "hosts", &id, "lock"]).await?,
            render_state,
        ),
        HostsCommand::Unlock { id } => out.emit(
            client.post_empty(&["v1", "hosts", &id, "unlock"]).await?,
            render_state,
        ),
        HostsCommand::Agent { id } => out.emit(
            client.get(&["v1", "hosts", &id, "agent"]).await?,
            render_agent,
        ),
        HostsCommand::Instances { id, q, page } => {
            let query: Vec<(&str, String)> = q.map(|q| ("q", q)).into_iter().collect();
            out.emit(
                client
                    .list(&["v1", "hosts", &id, "instances"], &query, &page)
                    .await?,
                instances::render_page,
            )
        }
        HostsCommand::Metrics(args) => crate::metrics::run(client, out, args).await,
        HostsCommand::Maintenance { command } => maintenance::run(client, out, command).await,
        HostsCommand::Usb(args) => devices::usb(client, out, args).await,
        HostsCommand::Gpus(args) => devices::gpus(client, out, args).await,
        HostsCommand::Vgpus { id } => devices::vgpus(client, out, id).await,
        HostsCommand::Delete { id, force, reason } => {
            host_identity::delete(client, out, &id, force, reason).await
        }
        HostsCommand::Certs { id, page } => host_identity::certs(client, out, &id, &page).await,
        HostsCommand::RevokeCerts { id, reason } => {
            host_identity::revoke(client, out, &id, reason).await
        }
        HostsCommand::Reenroll { id, ttl } => host_identity::reenroll(client, out, &id, ttl).await,
    }
}

fn render_page(page: &HostPage) -> String {
    let mut table = Table::new(&[
        "id",
        "ip",
        "cluster",
        "state",
        "agent",
        "cores",
        "memory",
        "cpu model",
        "last seen",
        "updated",
    ]);
    for h in &page.items {
        table.row(vec![
            h.id.clone(),
            h.ip.clone(),
            h.cluster_id.clone(),
            h.state.as_str().to_string(),
            agent_status(h),
            cores(h.allocated_cores, h.total_cores),
            memory(h.allocated_memory_bytes, h.total_memory_bytes),
            or_dash(Some(&h.cpu_model)),
            ago(h.last_seen.as_deref()),
            local_time(Some(&h.updated_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "hosts", more)
}

fn agent_status(host: &Host) -> String {
    match host.agent {
        AgentStatus::Online => "online",
        AgentStatus::Offline => "offline",
    }
    .to_string()
}

pub(crate) fn render_state(host: &Host) -> String {
    format!("host {} is now {}\n", host.id, host.state.as_str())
}

fn render_detail(detail: &HostDetail) -> String {
    let h = &detail.host;
    let pairs = [
        ("id", h.id.clone()),
        ("hostname", or_dash(Some(&h.hostname))),
        ("ip", h.ip.clone()),
        ("cluster", h.cluster_id.clone()),
        ("state", h.state.as_str().to_string()),
        ("agent", agent_status(h)),
        ("last seen", when(h.last_seen.as_deref())),
        ("cpu model", or_dash(Some(&h.cpu_model))),
        (
            "cores",
            format!("{} allocated", cores(h.allocated_cores, h.total_cores)),
        ),
        (
            "memory",
            format!(
                "{} allocated",
                memory(h.allocated_memory_bytes, h.total_memory_bytes)
            ),
        ),
        ("hypervisor", or_dash(Some(&detail.hypervisor))),
        ("libvirt uri", or_dash(Some(&detail.libvirt_uri))),
        ("agent version", or_dash(Some(&detail.agent_version))),
        ("agent api", or_dash(detail.agent_api.as_deref())),
        ("nics", or_dash(Some(&detail.nics.join(", ")))),
        ("segments", or_dash(Some(&detail.segments.join(", ")))),
        (
            "agent cert expires",
            when(detail.agent_cert_expires_at.as_deref()),
        ),
        ("created", when(Some(&detail.created_at))),
        ("updated", when(Some(&h.updated_at))),
    ];
    format!("{}\n{}", key_values(&pairs), domains(&detail.domains))
}

fn render_agent(live: &AgentFacts) -> String {
    let f: &HostFacts = &live.facts;
    let pairs = [
        ("host", live.host_id.clone()),
        ("hostname", or_dash(Some(&f.hostname))),
        ("cpu model", or_dash(Some(&f.cpu_model))),
        ("cores", f.total_cores.to_string()),
        ("memory", size(f.total_memory_bytes)),
        ("hypervisor", or_dash(Some(&f.hypervisor))),
        ("libvirt uri", or_dash(Some(&f.libvirt_uri))),
        ("agent version", or_dash(Some(&f.agent_version))),
    ];
    format!("{}\n{}", key_values(&pairs), domains(&live.domains))
}

fn domains(domains: &[Domain]) -> String {
    if domains.is_empty() {
        return "no domains\n".to_string();
    }
    let mut table = Table::new(&["name", "uuid", "state", "vcpus", "memory"]);
    for d in domains {
        table.row(vec![
            d.name.clone(),
            d.uuid.clone(),
            d.state.clone(),
            d.vcpus.to_string(),
            size(d.memory_bytes),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_an_updated_column_in_local_time() {
        let host: Host = serde_json::from_value(serde_json::json!({
            "id": "h-1", "ip": "10.0.0.5", "cluster_id": "az1", "cpu_model": "Xeon",
            "total_cores": 32, "allocated_cores": 4,
            "total_memory_bytes": 64u64 << 30, "allocated_memory_bytes": 8u64 << 30,
            "updated_at": "2026-05-01T10:00:00Z", "state": "available", "agent": "online",
            "last_seen": null, "hostname": "node-5"
        }))
        .expect("a host");
        let text = render_page(&HostPage {
            items: vec![host],
            total: 1,
            next_cursor: None,
        });
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split("  ").collect();
        assert_eq!(header.last().map(|h| h.trim()), Some("UPDATED"), "{text}");
        let row = lines.next().unwrap_or_default();
        assert!(
            row.ends_with(&crate::format::local_time(Some("2026-05-01T10:00:00Z"))),
            "{text}"
        );
        assert!(
            row.contains("8.0/64.0 GiB") && row.contains("never"),
            "{text}"
        );
    }
}
