//! `plinth operations`: list long-running work (with filters) and show one with its steps;
//! and the one wait every command that starts an operation uses ([`wait_for`]).

use crate::client::Client;
use crate::format::{or_dash, size, when};
use crate::images::typed;
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, clean, key_values};
use clap::Subcommand;
use plinth_common::api::{Operation, OperationPage, OperationStatus};
use std::time::Duration;

/// How often a wait asks for the operation.
const POLL: Duration = Duration::from_millis(500);

#[derive(Subcommand)]
pub enum OperationsCommand {
    /// List operations, newest first (a tenant token lists its own).
    List {
        /// One kind: image_import, instance_create, host_drain, baremetal_power...
        #[arg(long)]
        kind: Option<String>,
        /// running, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        /// The resource worked on (an image, instance, host or server id).
        #[arg(long)]
        resource: Option<String>,
        /// A tenant id (admins).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one operation with its steps.
    Show { id: String },
}

pub async fn run(client: &Client, out: &Output, command: OperationsCommand) -> anyhow::Result<()> {
    match command {
        OperationsCommand::List {
            kind,
            status,
            resource,
            tenant,
            page,
        } => {
            let filters = [
                ("kind", kind),
                ("status", status),
                ("resource", resource),
                ("tenant", tenant),
            ];
            let query: Vec<(&str, String)> = filters
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            // Operations accumulate like the audit log: the newest 100 unless asked for more.
            let page = page.or_first(100);
            out.emit(
                client.list(&["v1", "operations"], &query, &page).await?,
                render_page,
            )
        }
        OperationsCommand::Show { id } => out.emit(
            client.get(&["v1", "operations", &id]).await?,
            render_operation,
        ),
    }
}

/// The progress an operation reports, as one cell: items, bytes, or a dash.
pub fn progress(op: &Operation) -> String {
    match (op.items_done, op.items_total, op.total_bytes) {
        (Some(done), Some(total), _) => format!("{done}/{total}"),
        (_, _, Some(total)) => format!("{} of {}", size(op.progress_bytes), size(total)),
        _ if op.progress_bytes > 0 => size(op.progress_bytes),
        _ => "-".to_string(),
    }
}

fn render_page(page: &OperationPage) -> String {
    let mut table = Table::new(&[
        "id", "kind", "resource", "status", "progress", "tenant", "created", "error",
    ]);
    for op in &page.items {
        table.row(vec![
            op.id.clone(),
            op.kind.clone(),
            op.target_id.clone(),
            op.status.to_string(),
            progress(op),
            or_dash(op.owner_tenant_id.as_deref()),
            when(Some(&op.created_at)),
            or_dash(op.error.as_deref()),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "operations", more)
}

/// Its steps as lines, oldest first.
pub fn render_steps(steps: &[plinth_common::api::OperationStep]) -> String {
    steps
        .iter()
        .map(|s| format!("  {}  {}\n", when(Some(&s.at)), clean(&s.message)))
        .collect()
}

fn render_operation(op: &Operation) -> String {
    let mut text = key_values(&[
        ("id", op.id.clone()),
        ("kind", op.kind.clone()),
        ("resource", op.target_id.clone()),
        ("status", op.status.to_string()),
        ("progress", progress(op)),
        ("tenant", or_dash(op.owner_tenant_id.as_deref())),
        ("created", when(Some(&op.created_at))),
        ("finished", when(op.finished_at.as_deref())),
        ("error", or_dash(op.error.as_deref())),
    ]);
    if let Some(steps) = op.steps.as_deref().filter(|s| !s.is_empty()) {
        text.push_str("\nsteps:\n");
        text.push_str(&render_steps(steps));
    }
    text
}

/// Polls operation `op_id` every [`POLL`] until it ends, handing each answer to `seen` (to
/// draw progress, print new steps); `None` when `limit` passes first (the work goes on).
pub async fn wait_for(
    client: &Client,
    op_id: &str,
    limit: Option<Duration>,
    mut seen: impl FnMut(&Operation),
) -> anyhow::Result<Option<Operation>> {
    let polled = async {
        loop {
            let op: Operation = typed(client.get(&["v1", "operations", op_id]).await?)?;
            seen(&op);
            if op.status != OperationStatus::Running {
                return anyhow::Ok(op);
            }
            tokio::time::sleep(POLL).await;
        }
    };
    match limit {
        Some(limit) => tokio::time::timeout(limit, polled).await.ok().transpose(),
        None => polled.await.map(Some),
    }
}

/// A `seen` for [`wait_for`] that prints each new step on stderr as it comes.
pub fn print_new_steps() -> impl FnMut(&Operation) {
    let mut shown = 0;
    move |op: &Operation| {
        let steps = op.steps.as_deref().unwrap_or_default();
        if steps.len() > shown {
            eprint!("{}", render_steps(&steps[shown..]));
            shown = steps.len();
        }
    }
}
