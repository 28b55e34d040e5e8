//! `plinth segments`: the external segments tenants draw public addresses from: list, show,
//! create, update, set who may use one, delete.

use crate::client::Client;
use crate::format::{ago, when};
use crate::images::one_of;
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use anyhow::bail;
use clap::Subcommand;
use plinth_common::api::{
    NewSegment, RoutePolicy, Segment, SegmentPage, SegmentState, SetSegmentPermission,
    UpdateSegment,
};

#[derive(Subcommand)]
pub enum SegmentsCommand {
    /// List segments by name (a tenant token lists those the tenant may use).
    List(PageArgs),
    /// Show one segment.
    Show { id: String },
    /// Add a segment the physical network already carries.
    Create(CreateArgs),
    /// Change a segment's name, gateway, NIC, VLAN, routes or state (not its CIDR).
    Update(UpdateArgs),
    /// Set who may use a segment: every tenant, or the ones named. Addresses already allocated
    /// stay with their tenants.
    Permit {
        id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Delete a segment from which no address is allocated.
    Delete { id: String },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// The network, e.g. 203.0.113.0/24 or 2001:db8:1::/64 (host bits zero).
    #[arg(long)]
    cidr: String,
    /// A host address of the CIDR.
    #[arg(long)]
    gateway: String,
    /// The hypervisors' interface the segment is reached through, e.g. bond1.
    #[arg(long)]
    nic: String,
    /// 802.1Q tag 1-4094; untagged when left out.
    #[arg(long, value_name = "TAG")]
    vlan: Option<i64>,
    /// What instances route through the segment's addresses [server default: default].
    #[arg(long, value_parser = one_of(RoutePolicy::ALL, RoutePolicy::as_str))]
    route_policy: Option<RoutePolicy>,
    /// A destination CIDR of a `specified` policy; repeat for more.
    #[arg(long = "route", value_name = "CIDR")]
    routes: Vec<String>,
    /// Only these tenants (id or email) may use it; repeat for more. Every tenant when left out.
    #[arg(long = "tenant", value_name = "TENANT")]
    tenants: Vec<String>,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    gateway: Option<String>,
    #[arg(long)]
    nic: Option<String>,
    /// A new 802.1Q tag 1-4094.
    #[arg(long, value_name = "TAG", conflicts_with = "untagged")]
    vlan: Option<i64>,
    /// No VLAN tag any more.
    #[arg(long)]
    untagged: bool,
    #[arg(long, value_parser = one_of(RoutePolicy::ALL, RoutePolicy::as_str))]
    route_policy: Option<RoutePolicy>,
    /// Replaces the destinations of a `specified` policy; repeat for more.
    #[arg(long = "route", value_name = "CIDR")]
    routes: Vec<String>,
    /// `disabled` stops new allocations; addresses allocated keep working.
    #[arg(long, value_parser = one_of(SegmentState::ALL, SegmentState::as_str))]
    state: Option<SegmentState>,
}

impl UpdateArgs {
    fn body(&self) -> anyhow::Result<UpdateSegment> {
        let vlan = match (self.vlan, self.untagged) {
            (Some(tag), _) => Some(Some(tag)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let body = UpdateSegment {
            name: self.name.clone(),
            gateway: self.gateway.clone(),
            nic: self.nic.clone(),
            vlan,
            route_policy: self.route_policy,
            routes: (!self.routes.is_empty()).then(|| self.routes.clone()),
            state: self.state,
            cidr: None,
            ip_version: None,
        };
        if serde_json::to_value(&body)?
            .as_object()
            .is_some_and(|o| o.is_empty())
        {
            bail!(
                "nothing to change: pass --name, --gateway, --nic, --vlan, --untagged, \
                 --route-policy, --route or --state"
            );
        }
        Ok(body)
    }
}

/// Exactly one of: every tenant, the tenants named, none.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// Every tenant may use it.
    #[arg(long)]
    all_tenants: bool,
    /// Only this tenant (id or email); repeat for more.
    #[arg(long = "tenant", value_name = "TENANT")]
    tenants: Vec<String>,
    /// No tenant may allocate from it any more.
    #[arg(long)]
    no_tenant: bool,
}

pub async fn run(client: &Client, out: &Output, command: SegmentsCommand) -> anyhow::Result<()> {
    match command {
        SegmentsCommand::List(page) => out.emit(
            client.list(&["v1", "segments"], &[], &page).await?,
            render_list,
        ),
        SegmentsCommand::Show { id } => {
            out.emit(client.get(&["v1", "segments", &id]).await?, render_segment)
        }
        SegmentsCommand::Create(a) => {
            let permission = (!a.tenants.is_empty()).then(|| SetSegmentPermission {
                all_tenants: false,
                tenants: a.tenants.clone(),
            });
            let body = NewSegment {
                name: a.name,
                ip_version: None,
                cidr: a.cidr,
                gateway: a.gateway,
                nic: a.nic,
                vlan: a.vlan,
                route_policy: a.route_policy,
                routes: a.routes,
                permission,
            };
            out.emit(
                client.post(&["v1", "segments"], &body).await?,
                render_segment,
            )
        }
        SegmentsCommand::Update(a) => out.emit(
            client.patch(&["v1", "segments", &a.id], &a.body()?).await?,
            render_segment,
        ),
        SegmentsCommand::Permit { id, who } => {
            // The group allows one flag: --no-tenant is an empty list without all_tenants.
            let body = SetSegmentPermission {
                all_tenants: who.all_tenants && !who.no_tenant,
                tenants: if who.no_tenant {
                    Vec::new()
                } else {
                    who.tenants
                },
            };
            out.emit(
                client
                    .put(&["v1", "segments", &id, "permissions"], &body)
                    .await?,
                |s: &Segment| format!("segment {} may be used by {}\n", s.id, s.permission),
            )
        }
        SegmentsCommand::Delete { id } => {
            client.delete(&["v1", "segments", &id]).await?;
            out.note(&format!("segment {id} deleted\n"))
        }
    }
}

/// `default (0.0.0.0/0)`, `specified: 10.0.2.0/24, 10.0.3.0/24` or `none`.
fn routes(s: &Segment) -> String {
    match s.route_policy {
        RoutePolicy::Default => format!("default ({})", s.routes.join(", ")),
        RoutePolicy::Specified => format!("specified: {}", s.routes.join(", ")),
        RoutePolicy::None => "none".to_string(),
    }
}

fn vlan(s: &Segment) -> String {
    s.vlan
        .map_or_else(|| "untagged".to_string(), |v| v.to_string())
}

fn render_list(page: &SegmentPage) -> String {
    if page.total == 0 {
        return "no segments\n".to_string();
    }
    let mut table = Table::new(&[
        "id", "name", "ip", "cidr", "gateway", "nic", "vlan", "routes", "tenants", "state", "used",
        "updated",
    ]);
    for s in &page.items {
        table.row(vec![
            s.id.clone(),
            s.name.clone(),
            format!("IPv{}", s.ip_version),
            s.cidr.clone(),
            s.gateway.clone(),
            s.nic.clone(),
            vlan(s),
            routes(s),
            s.permission.to_string(),
            s.state.to_string(),
            format!("{}/{}", s.allocated, s.usable),
            ago(Some(&s.updated_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "segments", more)
}

fn render_segment(s: &Segment) -> String {
    key_values(&[
        ("id", s.id.clone()),
        ("name", s.name.clone()),
        ("ip version", format!("IPv{}", s.ip_version)),
        ("cidr", s.cidr.clone()),
        ("gateway", s.gateway.clone()),
        ("nic", s.nic.clone()),
        ("vlan", vlan(s)),
        ("routes", routes(s)),
        ("tenants", s.permission.to_string()),
        ("state", s.state.to_string()),
        (
            "allocated",
            format!("{} of {} usable", s.allocated, s.usable),
        ),
        ("created", when(Some(&s.created_at))),
        ("updated", when(Some(&s.updated_at))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use plinth_common::api::{PermittedTenant, SegmentPermission};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: SegmentsCommand,
    }

    fn update(args: &[&str]) -> UpdateArgs {
        let argv = ["segments", "update", "seg-1"].iter().chain(args).copied();
        match Cli::try_parse_from(argv).expect("parses").command {
            SegmentsCommand::Update(a) => a,
            _ => panic!("update parses as update"),
        }
    }

    #[test]
    fn update_sends_only_what_is_named() {
        let body = update(&["--untagged", "--route-policy", "none"])
            .body()
            .expect("a change");
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"vlan": null, "route_policy": "none"})
        );
        let body = update(&["--vlan", "7"]).body().expect("a change");
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"vlan": 7})
        );
        assert!(update(&[]).body().is_err());
    }

    #[test]
    fn the_list_shows_the_seed_columns() {
        let segment = Segment {
            id: "seg-1".into(),
            name: "public-1".into(),
            ip_version: 4,
            cidr: "203.0.113.0/28".into(),
            gateway: "203.0.113.1".into(),
            nic: "bond1".into(),
            vlan: Some(100),
            route_policy: RoutePolicy::Specified,
            routes: vec!["10.0.2.0/24".into()],
            permission: SegmentPermission {
                all_tenants: false,
                tenants: vec![PermittedTenant {
                    id: "t-1".into(),
                    email: "a@example.com".into(),
                }],
            },
            state: SegmentState::Available,
            allocated: 2,
            usable: "13".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        let text = render_list(&SegmentPage {
            items: vec![segment],
            total: 1,
            next_cursor: None,
        });
        let header = text.lines().next().unwrap_or_default();
        for column in [
            "ID", "NAME", "IP", "CIDR", "GATEWAY", "NIC", "VLAN", "TENANTS", "STATE", "UPDATED",
        ] {
            assert!(header.contains(column), "{column} in {header}");
        }
        for cell in [
            "IPv4",
            "203.0.113.0/28",
            "bond1",
            "100",
            "specified: 10.0.2.0/24",
            "a@example.com",
            "2/13",
        ] {
            assert!(text.contains(cell), "{cell} in {text}");
        }
    }
}
