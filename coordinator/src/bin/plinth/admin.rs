//! `plinth clusters`, `plinth tenants` (with their quotas) and `plinth audit`: the region's
//! admin records.

use crate::client::Client;
use crate::format::{ago, or_dash, parse_size, size, when};
use crate::images::typed;
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use anyhow::bail;
use clap::Subcommand;
use plinth_common::api::{
    AuditPage, Cluster, ClusterPage, CoordinatorList, CreateCluster, CreateTenant, Quota, Tenant,
    TenantPage, TenantQuota,
};

#[derive(Subcommand)]
pub enum ClustersCommand {
    /// List clusters with their host counts, by id.
    List(PageArgs),
    /// Create a cluster for agents to enroll into.
    Create {
        /// 1-63 of a-z, 0-9 and '-'.
        id: String,
        #[arg(long, default_value = "")]
        description: String,
    },
}

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// List tenants, by email.
    List(PageArgs),
    /// Create a tenant.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Show one tenant.
    Show { id: String },
    /// A tenant's quota: the most its instances may hold, and what they hold now.
    Quota {
        #[command(subcommand)]
        command: QuotaCommand,
    },
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Show a tenant's limits and usage.
    Show { id: String },
    /// Change some of a tenant's limits; the ones not named stay as they are.
    Set(QuotaSetArgs),
}

/// A limit given on the command line: a value, or `unlimited`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit(Option<u64>);

const UNLIMITED: &str = "unlimited";

fn limit_of(text: &str, parse: impl Fn(&str) -> Result<u64, String>) -> Result<Limit, String> {
    if text.trim().eq_ignore_ascii_case(UNLIMITED) {
        Ok(Limit(None))
    } else {
        parse(text).map(|n| Limit(Some(n)))
    }
}

fn count_limit(text: &str) -> Result<Limit, String> {
    limit_of(text, |t| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("'{t}' is not a whole number or `{UNLIMITED}`"))
    })
}

fn size_limit(text: &str) -> Result<Limit, String> {
    limit_of(text, parse_size)
}

#[derive(clap::Args)]
pub struct QuotaSetArgs {
    /// The tenant.
    id: String,
    /// Most vCPUs its instances may have in all, or `unlimited`.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    cores: Option<Limit>,
    /// Most memory its instances may have in all, e.g. 64GiB, or `unlimited`.
    #[arg(long, value_name = "SIZE", value_parser = size_limit)]
    memory: Option<Limit>,
    /// Most instances it may have, or `unlimited`.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    instances: Option<Limit>,
}

impl QuotaSetArgs {
    /// The current quota with the named limits changed.
    fn apply(&self, current: Quota) -> anyhow::Result<Quota> {
        if self.cores.is_none() && self.memory.is_none() && self.instances.is_none() {
            bail!("nothing to change: pass --cores, --memory or --instances");
        }
        let pick = |given: Option<Limit>, now: Option<u64>| given.map_or(now, |l| l.0);
        Ok(Quota {
            cores: pick(self.cores, current.cores),
            memory_bytes: pick(self.memory, current.memory_bytes),
            instances: pick(self.instances, current.instances),
        })
    }
}

pub async fn clusters(
    client: &Client,
    out: &Output,
    command: ClustersCommand,
) -> anyhow::Result<()> {
    match command {
        ClustersCommand::List(page) => {
            let list = client.list(&["v1", "clusters"], &[], &page).await?;
            out.emit(list, render_clusters)
        }
        ClustersCommand::Create { id, description } => {
            let body = CreateCluster { id, description };
            let created = client.post(&["v1", "clusters"], &body).await?;
            out.emit(created, |c: &Cluster| format!("cluster {} created\n", c.id))
        }
    }
}

fn render_clusters(page: &ClusterPage) -> String {
    if page.total == 0 {
        return "no clusters\n".to_string();
    }
    let mut table = Table::new(&["id", "hosts", "created", "description"]);
    for c in &page.items {
        table.row(vec![
            c.id.clone(),
            c.host_count.to_string(),
            ago(Some(&c.created_at)),
            or_dash(Some(&c.description)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "clusters", more)
}

pub async fn tenants(client: &Client, out: &Output, command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::List(page) => {
            let list = client.list(&["v1", "tenants"], &[], &page).await?;
            out.emit(list, render_tenants)
        }
        TenantsCommand::Create { email, name } => {
            let created = client
                .post(&["v1", "tenants"], &CreateTenant { email, name })
                .await?;
            out.emit(created, render_tenant)
        }
        TenantsCommand::Show { id } => {
            out.emit(client.get(&["v1", "tenants", &id]).await?, render_tenant)
        }
        TenantsCommand::Quota { command } => quota(client, out, command).await,
    }
}

async fn quota(client: &Client, out: &Output, command: QuotaCommand) -> anyhow::Result<()> {
    match command {
        QuotaCommand::Show { id } => out.emit(
            client.get(&["v1", "tenants", &id, "quota"]).await?,
            render_quota,
        ),
        QuotaCommand::Set(args) => {
            // The PUT replaces all three limits: keep the ones not named.
            let path = ["v1", "tenants", args.id.as_str(), "quota"];
            let current: TenantQuota = typed(client.get(&path).await?)?;
            let quota = args.apply(current.quota)?;
            out.emit(client.put(&path, &quota).await?, render_quota)
        }
    }
}

fn render_quota(q: &TenantQuota) -> String {
    let limit = |value: Option<u64>, show: fn(u64) -> String| {
        value.map_or_else(|| UNLIMITED.to_string(), show)
    };
    let mut table = Table::new(&["resource", "used", "limit"]);
    table.row(vec![
        "cores".to_string(),
        q.usage.cores.to_string(),
        limit(q.quota.cores, |n| n.to_string()),
    ]);
    table.row(vec![
        "memory".to_string(),
        size(q.usage.memory_bytes),
        limit(q.quota.memory_bytes, size),
    ]);
    table.row(vec![
        "instances".to_string(),
        q.usage.instances.to_string(),
        limit(q.quota.instances, |n| n.to_string()),
    ]);
    format!("tenant {}\n{}", q.tenant_id, table.render())
}

fn render_tenants(page: &TenantPage) -> String {
    if page.total == 0 {
        return "no tenants\n".to_string();
    }
    let mut table = Table::new(&["id", "email", "name", "created"]);
    for t in &page.items {
        table.row(vec![
            t.id.clone(),
            t.email.clone(),
            t.name.clone(),
            ago(Some(&t.created_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "tenants", more)
}

fn render_tenant(t: &Tenant) -> String {
    key_values(&[
        ("id", t.id.clone()),
        ("email", t.email.clone()),
        ("name", t.name.clone()),
        ("created", when(Some(&t.created_at))),
    ])
}

/// The newest audit entries: the log grows without end, so 100 unless `--limit` says more.
pub async fn audit(client: &Client, out: &Output, page: PageArgs) -> anyhow::Result<()> {
    let page = page.or_first(100);
    let entries = client.list(&["v1", "audit"], &[], &page).await?;
    out.emit(entries, render_audit)
}

pub async fn coordinators(client: &Client, out: &Output) -> anyhow::Result<()> {
    let list = client.get(&["v1", "coordinators"]).await?;
    out.emit(list, render_coordinators)
}

fn render_coordinators(list: &CoordinatorList) -> String {
    let mut table = Table::new(&[
        "name",
        "address",
        "alive",
        "jobs",
        "last heartbeat",
        "started",
    ]);
    for c in &list.items {
        table.row(vec![
            c.name.clone(),
            c.address.clone(),
            if c.alive { "yes" } else { "no" }.to_string(),
            if c.runs_jobs { "runs them" } else { "-" }.to_string(),
            c.heartbeat_at.clone(),
            c.started_at.clone(),
        ]);
    }
    let lease = &list.job_lease;
    let holder = match &lease.holder {
        Some(h) => format!("held by {h}, {} ms left", lease.expires_in_ms),
        None => "held by nobody now".to_string(),
    };
    table.render() + &format!("job lease: term {}, {holder}\n", lease.epoch)
}

fn render_audit(page: &AuditPage) -> String {
    if page.total == 0 {
        return "no audit entries\n".to_string();
    }
    let mut table = Table::new(&["at", "actor", "action", "target", "detail"]);
    for e in &page.items {
        table.row(vec![
            e.at.clone(),
            e.actor.clone(),
            e.action.clone(),
            or_dash(Some(&e.target)),
            or_dash(Some(&e.detail)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "audit entries", more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: TenantsCommand,
    }

    fn quota_set(args: &[&str]) -> Result<QuotaSetArgs, clap::Error> {
        let argv = ["tenants", "quota", "set"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            TenantsCommand::Quota {
                command: QuotaCommand::Set(args),
            } => Ok(args),
            _ => panic!("quota set parses as quota set"),
        }
    }

    #[test]
    fn quota_set_changes_only_what_is_named() {
        let current = Quota {
            cores: Some(8),
            memory_bytes: Some(16 << 30),
            instances: None,
        };
        let args = quota_set(&["t-1", "--memory", "64GiB", "--cores", "unlimited"])
            .expect("quota set parses");
        assert_eq!(args.id, "t-1");
        assert_eq!(
            args.apply(current.clone()).expect("a change"),
            Quota {
                cores: None,
                memory_bytes: Some(64 << 30),
                instances: None,
            }
        );
        let args = quota_set(&["t-1", "--instances", "10"]).expect("quota set parses");
        assert_eq!(
            args.apply(current.clone()).expect("a change"),
            Quota {
                instances: Some(10),
                ..current.clone()
            }
        );
        let nothing = quota_set(&["t-1"]).expect("quota set parses");
        assert!(nothing.apply(current).is_err());
        assert!(quota_set(&["t-1", "--cores", "many"]).is_err());
        assert!(quota_set(&["t-1", "--memory", "64"]).is_err());
        assert!(quota_set(&["--cores", "4"]).is_err());
    }

    #[test]
    fn quota_shows_limits_and_usage() {
        let text = render_quota(&TenantQuota {
            tenant_id: "t-1".to_string(),
            quota: Quota {
                cores: Some(8),
                memory_bytes: Some(64 << 30),
                instances: None,
            },
            usage: plinth_common::api::QuotaUsage {
                cores: 2,
                memory_bytes: 4 << 30,
                instances: 1,
            },
        });
        assert_eq!(
            text,
            "tenant t-1\nRESOURCE   USED     LIMIT\ncores      2        8\n\
             memory     4.0 GiB  64.0 GiB\ninstances  1        unlimited\n"
        );
    }
}
