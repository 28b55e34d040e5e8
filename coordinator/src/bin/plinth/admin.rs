//! `plinth clusters`, `plinth tenants` and `plinth audit`: the region's admin records.

use crate::client::Client;
use crate::format::{ago, or_dash, when};
use crate::output::Output;
use crate::table::{Table, key_values};
use clap::Subcommand;
use plinth_common::api::{AuditEntry, Cluster, CreateCluster, CreateTenant, Tenant};

#[derive(Subcommand)]
pub enum ClustersCommand {
    /// List clusters with their host counts.
    List,
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
    /// List tenants.
    List,
    /// Create a tenant.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Show one tenant.
    Show { id: String },
}

pub async fn clusters(
    client: &Client,
    out: &Output,
    command: ClustersCommand,
) -> anyhow::Result<()> {
    match command {
        ClustersCommand::List => {
            let list = client.get(&["v1", "clusters"]).await?;
            out.emit(list, |c: &Vec<Cluster>| render_clusters(c))
        }
        ClustersCommand::Create { id, description } => {
            let body = CreateCluster { id, description };
            let created = client.post(&["v1", "clusters"], &body).await?;
            out.emit(created, |c: &Cluster| format!("cluster {} created\n", c.id))
        }
    }
}

fn render_clusters(clusters: &[Cluster]) -> String {
    if clusters.is_empty() {
        return "no clusters\n".to_string();
    }
    let mut table = Table::new(&["id", "hosts", "created", "description"]);
    for c in clusters {
        table.row(vec![
            c.id.clone(),
            c.host_count.to_string(),
            ago(Some(&c.created_at)),
            or_dash(Some(&c.description)),
        ]);
    }
    table.render()
}

pub async fn tenants(client: &Client, out: &Output, command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::List => {
            let list = client.get(&["v1", "tenants"]).await?;
            out.emit(list, |t: &Vec<Tenant>| render_tenants(t))
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
    }
}

fn render_tenants(tenants: &[Tenant]) -> String {
    if tenants.is_empty() {
        return "no tenants\n".to_string();
    }
    let mut table = Table::new(&["id", "email", "name", "created"]);
    for t in tenants {
        table.row(vec![
            t.id.clone(),
            t.email.clone(),
            t.name.clone(),
            ago(Some(&t.created_at)),
        ]);
    }
    table.render()
}

fn render_tenant(t: &Tenant) -> String {
    key_values(&[
        ("id", t.id.clone()),
        ("email", t.email.clone()),
        ("name", t.name.clone()),
        ("created", when(Some(&t.created_at))),
    ])
}

pub async fn audit(client: &Client, out: &Output, limit: Option<u32>) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = limit
        .map(|n| ("limit", n.to_string()))
        .into_iter()
        .collect();
    let entries = client.get_with(&["v1", "audit"], &query).await?;
    out.emit(entries, |e: &Vec<AuditEntry>| render_audit(e))
}

fn render_audit(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "no audit entries\n".to_string();
    }
    let mut table = Table::new(&["at", "actor", "action", "target", "detail"]);
    for e in entries {
        table.row(vec![
            e.at.clone(),
            e.actor.clone(),
            e.action.clone(),
            or_dash(Some(&e.target)),
            or_dash(Some(&e.detail)),
        ]);
    }
    table.render()
}
