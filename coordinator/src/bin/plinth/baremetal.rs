//! `plinth baremetal`: servers managed through their BMCs — add (password from
//! PLINTH_IPMI_PASSWORD or standard input, never a flag), import a CSV file, list, show, power,
//! update rack location and label, serial console, delete; sensors and the BMC's event log.

use crate::client::Client;
use crate::format::{ago, or_dash, when};
use crate::images::one_of;
use crate::operations;
use crate::output::{Output, print};
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use crate::terminal::TerminalMode;
use anyhow::{Context, bail};
use clap::Subcommand;
use plinth_common::api::{
    Baremetal, BaremetalDetail, BaremetalPage, BatchDelete, BatchItem, HardwareEventList,
    HealthSummary, ImportRow, NewBaremetal, Operation, OperationStatus, PowerRequest, SensorList,
    SensorThresholds, UpdateBaremetal,
};
use plinth_common::baremetal::PowerAction;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

const ACTIONS: &[PowerAction] = &[
    PowerAction::On,
    PowerAction::Off,
    PowerAction::Reboot,
    PowerAction::ForceOff,
    PowerAction::Cycle,
];

#[derive(Subcommand)]
pub enum BaremetalCommand {
    /// List servers (a tenant token lists its own).
    List {
        /// Fuzzy match on name, id, IPMI IP, SN, model, rack location, label, tenant email.
        #[arg(short, long)]
        q: Option<String>,
        /// preparing, running or failed.
        #[arg(long)]
        state: Option<String>,
        /// A tenant id (admins).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one server: the list's columns, recent power changes, inventory.
    Show { id: String },
    /// Add a server; its password is read from PLINTH_IPMI_PASSWORD or standard input.
    Add(AddArgs),
    /// Import servers from a CSV file with the header
    /// Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label (all rows or none).
    Import {
        file: std::path::PathBuf,
        /// The tenant the servers are for (admins).
        #[arg(long)]
        tenant_email: Option<String>,
    },
    /// Power: on, off (soft), reboot (soft off then on; --hard for a reset), force_off, cycle.
    /// Waits for the operation, printing its steps, unless --no-wait.
    Power {
        id: String,
        #[arg(value_parser = one_of(ACTIONS, PowerAction::as_str))]
        action: PowerAction,
        /// With reboot: a hard reset.
        #[arg(long)]
        hard: bool,
        /// Print the operation's id and return at once.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait before giving up (the action itself goes on).
        #[arg(long, value_name = "DURATION", default_value = "10m",
            value_parser = crate::instances::wait_timeout, conflicts_with = "no_wait")]
        wait_timeout: Duration,
    },
    /// Change the rack location or the label (nothing else can change).
    Update {
        id: String,
        #[arg(long)]
        rack_location: Option<String>,
        /// An empty label clears it.
        #[arg(long)]
        label: Option<String>,
    },
    /// The server's sensors as last read: value, status and thresholds, and its health.
    Sensors { id: String },
    /// The entries of the server's BMC event log that plinth kept, newest first.
    Events {
        id: String,
        /// Entries to show, 1-1000.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Attach this terminal to the server's serial console (Ctrl-] leaves and releases it).
    Console { id: String },
    /// Stop managing servers (their power is left as it is).
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(clap::Args)]
pub struct AddArgs {
    #[arg(long)]
    name: String,
    /// The BMC's address.
    #[arg(long)]
    ipmi_ip: String,
    #[arg(long)]
    ipmi_username: String,
    #[arg(long)]
    rack_location: String,
    #[arg(long)]
    label: Option<String>,
    /// The owning tenant (admins must give it).
    #[arg(long)]
    tenant_email: Option<String>,
    /// Wait until the server is running or failed.
    #[arg(long)]
    wait: bool,
}

/// The IPMI password: PLINTH_IPMI_PASSWORD, else one line of standard input (never a flag,
/// which `ps` and shell history would show).
fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PLINTH_IPMI_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("IPMI password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    {
        let _hidden = TerminalMode::without_echo();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the IPMI password")?;
    }
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.is_empty() {
        bail!("no IPMI password: set PLINTH_IPMI_PASSWORD or give it on standard input");
    }
    Ok(p)
}

pub async fn run(client: &Client, out: &Output, command: BaremetalCommand) -> anyhow::Result<()> {
    match command {
        BaremetalCommand::List {
            q,
            state,
            tenant,
            page,
        } => {
            let mut query = Vec::new();
            for (k, v) in [("q", q), ("state", state), ("tenant", tenant)] {
                if let Some(v) = v {
                    query.push((k, v));
                }
            }
            out.emit(
                client.list(&["v1", "baremetal"], &query, &page).await?,
                render_list,
            )
        }
        BaremetalCommand::Show { id } => {
            out.emit(client.get(&["v1", "baremetal", &id]).await?, render_detail)
        }
        BaremetalCommand::Add(a) => {
            let body = NewBaremetal {
                tenant_email: a.tenant_email,
                name: a.name,
                ipmi_ip: a.ipmi_ip,
                ipmi_username: a.ipmi_username,
                ipmi_password: password()?,
                rack_location: a.rack_location,
                label: a.label,
            };
            let added = client.post(&["v1", "baremetal"], &body).await?;
            if !a.wait {
                return out.emit(added, |b: &Baremetal| render_server(b));
            }
            let id = added["id"].as_str().unwrap_or_default().to_string();
            let settled = wait_settled(client, &id).await?;
            out.emit(settled, render_detail)
        }
        BaremetalCommand::Import { file, tenant_email } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let query: Vec<(&str, String)> = tenant_email
                .map(|e| ("tenant_email", e))
                .into_iter()
                .collect();
            let (status, body) = client
                .post_text(&["v1", "baremetal", "import"], &query, "text/csv", text)
                .await?;
            let rows: Vec<ImportRow> =
                serde_json::from_value(body["rows"].clone()).unwrap_or_default();
            if status.is_success() {
                return out.emit(body, |_: &serde_json::Value| render_import(&rows, true));
            }
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("the import was refused")
                .to_string();
            if !out_is_json(out, &body)? && !rows.is_empty() {
                print(&render_import(&rows, false))?;
            }
            bail!("{message} (HTTP {})", status.as_u16())
        }
        BaremetalCommand::Power {
            id,
            action,
            hard,
            no_wait,
            wait_timeout,
        } => {
            let req = PowerRequest { action, hard };
            let started = client
                .post(&["v1", "baremetal", &id, "power"], &req)
                .await?;
            let limit = (!no_wait).then_some(wait_timeout);
            power_outcome(client, out, &id, started, limit).await
        }
        BaremetalCommand::Update {
            id,
            rack_location,
            label,
        } => {
            if rack_location.is_none() && label.is_none() {
                bail!("nothing to change: pass --rack-location or --label");
            }
            let body = UpdateBaremetal {
                rack_location,
                label,
            };
            out.emit(
                client.patch(&["v1", "baremetal", &id], &body).await?,
                render_server,
            )
        }
        BaremetalCommand::Sensors { id } => out.emit(
            client.get(&["v1", "baremetal", &id, "sensors"]).await?,
            render_sensors,
        ),
        BaremetalCommand::Events { id, limit } => {
            let query = [("limit", limit.to_string())];
            out.emit(
                client
                    .get_with(&["v1", "baremetal", &id, "events"], &query)
                    .await?,
                render_events,
            )
        }
        BaremetalCommand::Console { id } => crate::console::attach(client, &id).await,
        BaremetalCommand::Delete { ids } if ids.len() == 1 => {
            client.delete(&["v1", "baremetal", &ids[0]]).await?;
            out.note(&format!("bare-metal server {} deleted\n", ids[0]))
        }
        BaremetalCommand::Delete { ids } => {
            let results = client
                .post(&["v1", "baremetal", "batch-delete"], &BatchDelete { ids })
                .await?;
            out.emit(results, |items: &Vec<BatchItem>| {
                items
                    .iter()
                    .map(|i| match &i.error {
                        None => format!("{}: deleted\n", i.id),
                        Some(e) => format!("{}: {}\n", i.id, e.message),
                    })
                    .collect()
            })
        }
    }
}

/// With --json, prints the body and says so.
fn out_is_json(out: &Output, body: &serde_json::Value) -> anyhow::Result<bool> {
    let mut printed = false;
    out.emit(body.clone(), |_: &serde_json::Value| {
        printed = true;
        String::new()
    })?;
    Ok(!printed)
}

async fn wait_settled(client: &Client, id: &str) -> anyhow::Result<serde_json::Value> {
    let until = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let v = client.get(&["v1", "baremetal", id]).await?;
        if v["state"] != "preparing" {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= until {
            bail!("{id} is still preparing after 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn render_list(page: &BaremetalPage) -> String {
    if page.items.is_empty() {
        return "no bare-metal servers\n".to_string();
    }
    let mut table = Table::new(&[
        "name", "id", "state", "sn", "ipmi ip", "tenant", "model", "rack", "power", "console",
        "health", "created",
    ]);
    for b in &page.items {
        table.row(vec![
            b.name.clone(),
            b.id.clone(),
            b.state.to_string(),
            or_dash(b.sn.as_deref()),
            b.ipmi_ip.clone(),
            b.tenant_email.clone(),
            or_dash(b.model.as_deref()),
            b.rack_location.clone(),
            b.power_state.to_string(),
            b.console_state.to_string(),
            health(&b.health),
            ago(Some(&b.created_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "servers", more)
}

fn render_server(b: &Baremetal) -> String {
    let mut pairs = vec![
        ("id", b.id.clone()),
        ("name", b.name.clone()),
        ("state", b.state.to_string()),
    ];
    if let Some(r) = &b.reason {
        pairs.push(("reason", r.clone()));
    }
    pairs.extend([
        ("sn", or_dash(b.sn.as_deref())),
        ("ipmi ip", b.ipmi_ip.clone()),
        ("tenant", b.tenant_email.clone()),
        ("model", or_dash(b.model.as_deref())),
        ("manufacturer", or_dash(b.manufacturer.as_deref())),
        ("rack location", b.rack_location.clone()),
        ("label", or_dash(b.label.as_deref())),
        ("power", b.power_state.to_string()),
        ("power changed", when(b.power_changed_at.as_deref())),
        ("console", b.console_state.to_string()),
        ("health", health(&b.health)),
        ("agent", or_dash(b.agent_host_id.as_deref())),
        ("created", when(Some(&b.created_at))),
    ]);
    key_values(&pairs)
}

fn render_detail(d: &BaremetalDetail) -> String {
    let mut text = render_server(&d.server);
    if !d.power_history.is_empty() {
        text.push_str("\npower changes:\n");
        let mut table = Table::new(&["at", "power", "seen by"]);
        for c in &d.power_history {
            table.row(vec![
                c.at.clone(),
                c.power_state.to_string(),
                c.source.clone(),
            ]);
        }
        text.push_str(&table.render());
    }
    text.push_str(&format!(
        "\ninventory: {}{}\n",
        d.inventory.source,
        d.inventory
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    ));
    text
}

/// `critical (CPU Temp)`: the health and, when it is not ok, the worst sensor.
fn health(h: &HealthSummary) -> String {
    let word = h.health.as_str();
    match &h.worst_sensor {
        Some(worst) => format!("{word} ({worst})"),
        None => word.to_string(),
    }
}

/// The thresholds a record gives, low to high: `lc 5 unc 80 uc 90`.
fn thresholds(t: &SensorThresholds) -> String {
    let all = [
        ("lnr", t.lower_non_recoverable),
        ("lc", t.lower_critical),
        ("lnc", t.lower_non_critical),
        ("unc", t.upper_non_critical),
        ("uc", t.upper_critical),
        ("unr", t.upper_non_recoverable),
    ];
    let given: Vec<String> = all
        .iter()
        .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
        .collect();
    if given.is_empty() {
        "-".to_string()
    } else {
        given.join(" ")
    }
}

fn render_sensors(list: &SensorList) -> String {
    let mut text = format!(
        "health: {} (read {})\n",
        health(&list.health),
        when(list.health.read_at.as_deref())
    );
    if let Some(err) = &list.error {
        text.push_str(&format!("last read failed: {err}\n"));
    }
    if list.items.is_empty() {
        text.push_str("no sensors\n");
        return text;
    }
    let mut table = Table::new(&["name", "kind", "value", "status", "thresholds"]);
    for s in &list.items {
        let value = match (s.value, &s.unit) {
            (Some(v), Some(unit)) => format!("{v} {unit}"),
            (Some(v), None) => v.to_string(),
            (None, _) => "-".to_string(),
        };
        table.row(vec![
            s.name.clone(),
            s.kind.clone(),
            value,
            s.status.as_str().to_string(),
            thresholds(&s.thresholds),
        ]);
    }
    text + &table.render()
}

fn render_events(list: &HardwareEventList) -> String {
    if list.items.is_empty() {
        return "no events\n".to_string();
    }
    let mut table = Table::new(&["time", "sensor", "type", "direction", "description"]);
    for e in &list.items {
        table.row(vec![
            or_dash(e.time.as_deref()),
            e.sensor.clone(),
            e.sensor_type.clone(),
            e.direction.clone(),
            e.description.clone(),
        ]);
    }
    table.render()
}

fn render_import(rows: &[ImportRow], imported: bool) -> String {
    let mut table = Table::new(&["line", "name", "result"]);
    for r in rows {
        let result = match (&r.id, r.errors.is_empty()) {
            (Some(id), _) => format!("added as {id}"),
            (None, true) => "ok".to_string(),
            (None, false) => r.errors.join("; "),
        };
        table.row(vec![r.line.to_string(), r.name.clone(), result]);
    }
    let mut text = table.render();
    if imported {
        text.push_str(&format!("{} servers imported; preparing\n", rows.len()));
    }
    text
}

/// Follows a power operation (unless `limit` is `None`: then prints its id), printing its
/// steps on stderr as they come; the end is the final operation, or an error saying why.
async fn power_outcome(
    client: &Client,
    out: &Output,
    id: &str,
    started: serde_json::Value,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let op: Operation = crate::images::typed(started.clone())?;
    let Some(limit) = limit else {
        return out.emit(started, |op: &Operation| format!("{}\n", op.id));
    };
    let ended =
        operations::wait_for(client, &op.id, Some(limit), operations::print_new_steps()).await?;
    let Some(ended) = ended else {
        bail!(
            "operation {} is still running after the wait; follow it with `plinth operations show {}`",
            op.id,
            op.id
        );
    };
    let failed = ended.status != OperationStatus::Succeeded;
    let error = ended.error.clone();
    let value = serde_json::to_value(&ended)?;
    if failed {
        out.emit(value, |_: &Operation| String::new())?;
        bail!(
            "power action on {id} failed: {}",
            error.unwrap_or_else(|| "no reason given".into())
        );
    }
    let server: Baremetal = crate::images::typed(client.get(&["v1", "baremetal", id]).await?)?;
    out.emit(value, |_: &Operation| {
        format!("{id}: power {}\n", server.power_state)
    })
}
