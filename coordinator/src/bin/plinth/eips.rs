//! `plinth eips`: public addresses tenants hold: list, show, allocate, bind to an instance,
//! unbind, release; and `plinth instances network`, an instance's addresses with their routes.

use crate::client::Client;
use crate::format::{or_dash, when};
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use clap::Subcommand;
use plinth_common::api::{BindEip, Eip, EipPage, InstanceNetwork, NewEip, RoutePolicy};

#[derive(Subcommand)]
pub enum EipsCommand {
    /// List EIPs (a tenant token lists the tenant's own).
    List(ListArgs),
    /// Show one EIP.
    Show { id: String },
    /// Allocate an address from a segment the tenant may use.
    Allocate(AllocateArgs),
    /// Bind an EIP to an instance of its tenant.
    Bind { id: String, instance: String },
    /// Unbind an EIP from its instance.
    Unbind { id: String },
    /// Give an unbound EIP back to its segment.
    Release { id: String },
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this tenant's EIPs.
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Only EIPs of this segment.
    #[arg(long, value_name = "ID")]
    segment: Option<String>,
    /// Only EIPs bound to this instance.
    #[arg(long, value_name = "ID")]
    instance: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(clap::Args)]
pub struct AllocateArgs {
    /// The tenant the address is for (admin tokens; a tenant token implies it).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// From this segment; else the tenant's segment of the version with the most room.
    #[arg(long, value_name = "ID")]
    segment: Option<String>,
    /// 4 or 6 [server default: 4, or the segment's or address's].
    #[arg(long, value_name = "4|6", value_parser = ip_version)]
    ip_version: Option<u8>,
    /// This address exactly.
    #[arg(long, value_name = "IP")]
    address: Option<String>,
}

fn ip_version(text: &str) -> Result<u8, String> {
    match text.trim() {
        "4" => Ok(4),
        "6" => Ok(6),
        other => Err(format!("'{other}' is not 4 or 6")),
    }
}

pub async fn run(client: &Client, out: &Output, command: EipsCommand) -> anyhow::Result<()> {
    match command {
        EipsCommand::List(a) => {
            let text = [
                ("tenant", a.tenant),
                ("segment", a.segment),
                ("instance", a.instance),
            ];
            let query: Vec<(&str, String)> = text
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            let list = client.list(&["v1", "eips"], &query, &a.page).await?;
            out.emit(list, render_page)
        }
        EipsCommand::Show { id } => out.emit(client.get(&["v1", "eips", &id]).await?, render_eip),
        EipsCommand::Allocate(a) => {
            let body = NewEip {
                tenant_id: a.tenant,
                segment_id: a.segment,
                ip_version: a.ip_version,
                address: a.address,
            };
            out.emit(client.post(&["v1", "eips"], &body).await?, |e: &Eip| {
                format!(
                    "allocated {} ({}) from segment {}\n",
                    e.address, e.id, e.segment_id
                )
            })
        }
        EipsCommand::Bind { id, instance } => {
            let body = BindEip {
                instance_id: instance,
            };
            out.emit(
                client.post(&["v1", "eips", &id, "bind"], &body).await?,
                |e: &Eip| {
                    format!(
                        "{} is bound to instance {}\n",
                        e.address,
                        or_dash(e.instance_id.as_deref())
                    )
                },
            )
        }
        EipsCommand::Unbind { id } => out.emit(
            client.post_empty(&["v1", "eips", &id, "unbind"]).await?,
            |e: &Eip| format!("{} is not bound\n", e.address),
        ),
        EipsCommand::Release { id } => {
            client.delete(&["v1", "eips", &id]).await?;
            out.note(&format!("EIP {id} released\n"))
        }
    }
}

/// `plinth instances network <id>`.
pub async fn network(client: &Client, out: &Output, id: &str) -> anyhow::Result<()> {
    out.emit(
        client.get(&["v1", "instances", id, "network"]).await?,
        render_network,
    )
}

fn render_page(page: &EipPage) -> String {
    let mut table = Table::new(&[
        "id", "address", "segment", "tenant", "instance", "state", "created",
    ]);
    for e in &page.items {
        table.row(vec![
            e.id.clone(),
            e.address.clone(),
            e.segment_name.clone(),
            e.tenant_email.clone(),
            or_dash(e.instance_id.as_deref()),
            e.state.to_string(),
            e.created_at.clone(),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "EIPs", more)
}

fn render_eip(e: &Eip) -> String {
    key_values(&[
        ("id", e.id.clone()),
        ("address", e.address.clone()),
        ("ip version", format!("IPv{}", e.ip_version)),
        ("segment", format!("{} ({})", e.segment_name, e.segment_id)),
        ("tenant", format!("{} ({})", e.tenant_email, e.tenant_id)),
        ("instance", or_dash(e.instance_id.as_deref())),
        ("state", e.state.to_string()),
        ("created", when(Some(&e.created_at))),
        ("updated", when(Some(&e.updated_at))),
    ])
}

fn render_network(n: &InstanceNetwork) -> String {
    if n.addresses.is_empty() {
        return format!("instance {} has no EIPs\n", n.instance_id);
    }
    let mut table = Table::new(&["address", "gateway", "nic", "vlan", "routes", "eip"]);
    for a in &n.addresses {
        let routes = match a.route_policy {
            RoutePolicy::None => "none".to_string(),
            _ => a.routes.join(", "),
        };
        table.row(vec![
            format!("{}/{}", a.address, a.prefix_len),
            a.gateway.clone(),
            a.nic.clone(),
            a.vlan
                .map_or_else(|| "untagged".to_string(), |v| v.to_string()),
            routes,
            a.eip_id.clone(),
        ]);
    }
    table.render()
}
