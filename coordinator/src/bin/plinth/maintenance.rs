//! `plinth hosts maintenance`: drain a locked host (enter), follow the drain live, read its
//! report, plan one without moving anything, and end maintenance (exit).

use crate::client::Client;
use crate::format::{duration, or_dash, size, when};
use crate::hosts::render_state;
use crate::images::typed;
use crate::instances::{pause_before, wait_timeout};
use crate::moves::{event, report_table, transfer_line};
use crate::output::Output;
use crate::progress::Board;
use crate::table::{Table, key_values};
use anyhow::anyhow;
use clap::Subcommand;
use plinth_common::api::{
    Drain, DrainPlan, EnterMaintenance, MoveAction, MoveStatus, OperationStatus,
};
use plinth_common::host::HostState;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// How often a followed drain is asked for.
const POLL: Duration = Duration::from_millis(500);

#[derive(Subcommand)]
pub enum MaintenanceCommand {
    /// Drain a locked host: migrate its running instances, release its stopped ones.
    ///
    /// Running instances live-migrate to other hosts of its cluster; stopped ones are released
    /// (placed anew when next started). The host ends in maintenance, or back in locked when
    /// any instance stayed (a GPU or USB device, no room, failed attempts).
    Enter {
        id: String,
        /// Live migrations at once from this host [server default: drain_parallelism].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        parallelism: Option<u32>,
        /// Follow the drain live until it ends; fail if any instance stays on the host.
        #[arg(long)]
        wait: bool,
        /// How long --wait follows the drain before giving up (the drain itself goes on).
        #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = wait_timeout,
            requires = "wait")]
        timeout: Duration,
    },
    /// End maintenance: the host goes back to locked.
    Exit { id: String },
    /// Dry run: what a drain would do with each instance, and whether the cluster has room.
    Plan { id: String },
    /// The host's current or last drain, instance by instance.
    Status {
        id: String,
        /// Follow a drain in progress live until it ends; fail if any instance stays.
        #[arg(long)]
        watch: bool,
        /// How long --watch follows the drain before giving up.
        #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = wait_timeout,
            requires = "watch")]
        timeout: Duration,
    },
}

pub async fn run(client: &Client, out: &Output, command: MaintenanceCommand) -> anyhow::Result<()> {
    match command {
        MaintenanceCommand::Enter {
            id,
            parallelism,
            wait,
            timeout,
        } => {
            let started = client
                .post(
                    &["v1", "hosts", &id, "maintenance", "enter"],
                    &EnterMaintenance { parallelism },
                )
                .await?;
            if !wait {
                return out.emit(started, render_started);
            }
            follow(client, out, &id, started, timeout).await
        }
        MaintenanceCommand::Exit { id } => out.emit(
            client
                .post_empty(&["v1", "hosts", &id, "maintenance", "exit"])
                .await?,
            render_state,
        ),
        MaintenanceCommand::Plan { id } => out.emit(
            client
                .get(&["v1", "hosts", &id, "maintenance", "plan"])
                .await?,
            render_plan,
        ),
        MaintenanceCommand::Status { id, watch, timeout } => {
            let drain = client.get(&["v1", "hosts", &id, "maintenance"]).await?;
            if !watch {
                return out.emit(drain, render_report);
            }
            follow(client, out, &id, drain, timeout).await
        }
    }
}

/// Shows the drain live on stderr, polling every [`POLL`] until it ends; then prints its
/// report, and fails if any instance stayed. An error when `limit` passes first.
async fn follow(
    client: &Client,
    out: &Output,
    host: &str,
    first: Value,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut board = Board::new();
    let mut value = first;
    let mut before: Option<Drain> = None;
    let ended = loop {
        let now: Drain = typed(value.clone())?;
        let over = now.status != OperationStatus::Running;
        // A drain that had ended before we looked is only reported, not replayed.
        if !(over && before.is_none()) {
            for line in changes(before.as_ref(), &now) {
                board.log(&line);
            }
        }
        if over {
            break now;
        }
        board.show(&live_lines(&now));
        before = Some(now);
        let Some(pause) = pause_before(deadline, POLL) else {
            return Err(anyhow!(
                "gave up waiting after {}: the drain of host {host} goes on; follow it with \
                 `plinth hosts maintenance status {host} --watch`",
                duration(limit)
            ));
        };
        tokio::time::sleep(pause).await;
        value = client.get(&["v1", "hosts", host, "maintenance"]).await?;
    };
    drop(board);
    out.emit(value, render_report)?;
    outcome(&ended)
}

/// Ok for a drain that emptied the host; the error names how many instances stayed.
fn outcome(drain: &Drain) -> anyhow::Result<()> {
    let left = drain.stayed + drain.left;
    let emptied = drain.status == OperationStatus::Succeeded
        && drain.host_state == HostState::Maintenance
        && left == 0;
    if emptied {
        return Ok(());
    }
    Err(anyhow!(
        "the drain of host {} ended with {left} instance{} still on it; the host is {}",
        drain.host_id,
        if left == 1 { "" } else { "s" },
        drain.host_state
    ))
}

/// What to log between two looks at a drain: its start (on the first look), each move whose
/// status changed, then the host's new state.
fn changes(before: Option<&Drain>, now: &Drain) -> Vec<String> {
    let mut lines = Vec::new();
    if before.is_none() {
        lines.push(intro(now));
    }
    for item in &now.items {
        let was = before.and_then(|b| b.items.iter().find(|i| i.instance_id == item.instance_id));
        lines.extend(event(was, item));
    }
    if let Some(b) = before
        && b.host_state != now.host_state
    {
        lines.push(format!("host {} is now {}", now.host_id, now.host_state));
    }
    lines
}

/// The live view: the host and its counts, then one line per transfer in flight.
fn live_lines(drain: &Drain) -> Vec<String> {
    let mut lines = vec![format!(
        "host {} {}: {}",
        drain.host_id,
        drain.host_state,
        counts(drain)
    )];
    lines.extend(
        drain
            .items
            .iter()
            .filter(|i| i.status == MoveStatus::Migrating)
            .map(|i| format!("  {}", transfer_line(i))),
    );
    lines
}

fn counts(drain: &Drain) -> String {
    format!(
        "{} moved, {} released, {} stayed, {} left",
        drain.moved, drain.released, drain.stayed, drain.left
    )
}

/// `drain op-1 of host h-1: 5 to migrate, 1 to release, 1 to stay (parallelism 2)`.
fn intro(drain: &Drain) -> String {
    let planned = |action: MoveAction| drain.items.iter().filter(|i| i.action == action).count();
    format!(
        "drain {} of host {}: {} to migrate, {} to release, {} to stay (parallelism {})",
        drain.operation_id,
        drain.host_id,
        planned(MoveAction::Migrate),
        planned(MoveAction::Release),
        planned(MoveAction::Stay),
        drain.parallelism
    )
}

fn render_started(drain: &Drain) -> String {
    format!(
        "{}\nFollow it with `plinth hosts maintenance status {} --watch`, or pass --wait.\n",
        intro(drain),
        drain.host_id
    )
}

fn operation_status(status: OperationStatus) -> &'static str {
    match status {
        OperationStatus::Running => "running",
        OperationStatus::Succeeded => "succeeded",
        OperationStatus::Failed => "failed",
    }
}

/// A drain's report: the drain, its counts, and every instance with how its move ended.
fn render_report(drain: &Drain) -> String {
    let pairs = [
        ("host", format!("{} ({})", drain.host_id, drain.host_state)),
        (
            "drain",
            format!(
                "{} ({})",
                drain.operation_id,
                operation_status(drain.status)
            ),
        ),
        ("parallelism", drain.parallelism.to_string()),
        ("started", when(Some(&drain.started_at))),
        ("ended", when(drain.ended_at.as_deref())),
        ("instances", counts(drain)),
    ];
    let moves = if drain.items.is_empty() {
        "no instances were on the host\n".to_string()
    } else {
        report_table(&drain.items)
    };
    format!("{}\n{moves}", key_values(&pairs))
}

/// A drain plan: each instance and what would happen to it, then whether it all fits.
fn render_plan(plan: &DrainPlan) -> String {
    let head = format!(
        "host {} ({}), cluster {}\n",
        plan.host_id, plan.host_state, plan.cluster_id
    );
    let instances = if plan.items.is_empty() {
        "no instances on the host\n".to_string()
    } else {
        let mut table = Table::new(&[
            "instance",
            "id",
            "state",
            "vcpus",
            "memory",
            "action",
            "suitable targets",
            "blocked by",
        ]);
        for i in &plan.items {
            let targets = match i.action {
                MoveAction::Migrate => i.suitable_targets.to_string(),
                MoveAction::Release | MoveAction::Stay => "-".to_string(),
            };
            table.row(vec![
                i.instance_name.clone(),
                i.instance_id.clone(),
                i.state.to_string(),
                i.vcpus.to_string(),
                size(i.memory_bytes),
                i.action.to_string(),
                targets,
                or_dash(i.blocked_by.as_deref()),
            ]);
        }
        table.render()
    };
    let fits = if plan.fits {
        format!(
            "fits: yes, cluster {} has room to migrate every instance at once",
            plan.cluster_id
        )
    } else {
        format!(
            "fits: no, cluster {} lacks room to migrate every instance at once",
            plan.cluster_id
        )
    };
    format!(
        "{head}{instances}{fits}\n{} to migrate, {} to release, {} blocked\n",
        plan.to_migrate, plan.to_release, plan.blocked
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moves::tests::{item, migrating, moved};
    use clap::Parser;
    use plinth_common::api::{MoveItem, PlanItem};
    use plinth_common::instance::InstanceState;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: MaintenanceCommand,
    }

    fn parse(args: &[&str]) -> Result<MaintenanceCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("maintenance").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn commands_parse() {
        let cases: [(&str, &[&str], Option<&str>); 12] = [
            (
                "enter",
                &["enter", "h-1"],
                Some("enter h-1 None false 7200s"),
            ),
            (
                "enter and wait",
                &[
                    "enter",
                    "h-1",
                    "--parallelism",
                    "4",
                    "--wait",
                    "--timeout",
                    "30m",
                ],
                Some("enter h-1 Some(4) true 1800s"),
            ),
            (
                "no parallelism",
                &["enter", "h-1", "--parallelism", "0"],
                None,
            ),
            (
                "timeout needs wait",
                &["enter", "h-1", "--timeout", "1h"],
                None,
            ),
            (
                "timeout of nothing",
                &["enter", "h-1", "--wait", "--timeout", "0s"],
                None,
            ),
            ("enter needs a host", &["enter"], None),
            ("exit", &["exit", "h-1"], Some("exit h-1")),
            ("plan", &["plan", "h-1"], Some("plan h-1")),
            ("status", &["status", "h-1"], Some("status h-1 false 7200s")),
            (
                "watch",
                &["status", "h-1", "--watch", "--timeout", "3h"],
                Some("status h-1 true 10800s"),
            ),
            (
                "timeout needs watch",
                &["status", "h-1", "--timeout", "1h"],
                None,
            ),
            ("plan waits for nothing", &["plan", "h-1", "--wait"], None),
        ];
        for (label, args, want) in cases {
            let got = parse(args).ok().map(|c| match c {
                MaintenanceCommand::Enter {
                    id,
                    parallelism,
                    wait,
                    timeout,
                } => format!("enter {id} {parallelism:?} {wait} {}s", timeout.as_secs()),
                MaintenanceCommand::Exit { id } => format!("exit {id}"),
                MaintenanceCommand::Plan { id } => format!("plan {id}"),
                MaintenanceCommand::Status { id, watch, timeout } => {
                    format!("status {id} {watch} {}s", timeout.as_secs())
                }
            });
            assert_eq!(got.as_deref(), want, "{label}");
        }
    }

    fn drain(host_state: HostState, status: OperationStatus, items: Vec<MoveItem>) -> Drain {
        let count = |s: MoveStatus| items.iter().filter(|i| i.status == s).count() as u32;
        Drain {
            operation_id: "op-1".to_string(),
            host_id: "h-1".to_string(),
            host_state,
            status,
            parallelism: 2,
            started_at: "2026-05-01T10:00:00Z".to_string(),
            ended_at: None,
            moved: count(MoveStatus::Moved),
            released: count(MoveStatus::Released),
            stayed: count(MoveStatus::Stayed),
            left: count(MoveStatus::Pending) + count(MoveStatus::Migrating),
            items,
        }
    }

    fn stayed(name: &str) -> MoveItem {
        MoveItem {
            reason: Some("it has a vGPU".to_string()),
            ..item(name, MoveAction::Stay, MoveStatus::Stayed)
        }
    }

    #[test]
    fn the_live_view_counts_and_lists_transfers() {
        let now = drain(
            HostState::EnteringMaintenance,
            OperationStatus::Running,
            vec![
                moved("web-1"),
                migrating("web-2", 1 << 30, 4 << 30, 5_000),
                item("web-3", MoveAction::Migrate, MoveStatus::Pending),
                stayed("gpu-1"),
            ],
        );
        assert_eq!(
            live_lines(&now),
            [
                "host h-1 entering_maintenance: 1 moved, 0 released, 1 stayed, 2 left",
                "  web-2  h-1 → h-2   25%  1.0 GiB of 4.0 GiB  5s",
            ]
        );
    }

    #[test]
    fn changes_log_the_start_each_move_and_the_end() {
        let start = drain(
            HostState::EnteringMaintenance,
            OperationStatus::Running,
            vec![
                item("web-1", MoveAction::Migrate, MoveStatus::Pending),
                stayed("gpu-1"),
            ],
        );
        assert_eq!(
            changes(None, &start),
            [
                "drain op-1 of host h-1: 1 to migrate, 0 to release, 1 to stay (parallelism 2)",
                "gpu-1: stays on h-1 because it has a vGPU",
            ]
        );
        let moving = drain(
            HostState::EnteringMaintenance,
            OperationStatus::Running,
            vec![migrating("web-1", 0, 0, 0), stayed("gpu-1")],
        );
        assert_eq!(
            changes(Some(&start), &moving),
            ["web-1: migrating h-1 → h-2 (attempt 1)"]
        );
        assert!(changes(Some(&moving), &moving).is_empty());
        let end = drain(
            HostState::Locked,
            OperationStatus::Failed,
            vec![moved("web-1"), stayed("gpu-1")],
        );
        assert_eq!(
            changes(Some(&moving), &end),
            [
                "web-1: moved to h-2 in 12.3 s (libvirt 8123 ms)",
                "host h-1 is now locked",
            ]
        );
    }

    #[test]
    fn outcome_fails_when_anything_stayed() {
        let cases = [
            (
                "emptied",
                drain(
                    HostState::Maintenance,
                    OperationStatus::Succeeded,
                    vec![moved("web-1")],
                ),
                None,
            ),
            (
                "empty host",
                drain(HostState::Maintenance, OperationStatus::Succeeded, vec![]),
                None,
            ),
            (
                "one stayed",
                drain(
                    HostState::Locked,
                    OperationStatus::Failed,
                    vec![moved("web-1"), stayed("gpu-1")],
                ),
                Some("the drain of host h-1 ended with 1 instance still on it; the host is locked"),
            ),
            (
                "failed with nothing counted",
                drain(HostState::Locked, OperationStatus::Failed, vec![]),
                Some(
                    "the drain of host h-1 ended with 0 instances still on it; the host is locked",
                ),
            ),
        ];
        for (label, drain, want) in cases {
            let got = outcome(&drain).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), want, "{label}");
        }
    }

    #[test]
    fn reports_show_the_drain_then_each_move() {
        let ended = Drain {
            ended_at: Some("2026-05-01T10:05:00Z".to_string()),
            ..drain(
                HostState::Locked,
                OperationStatus::Failed,
                vec![moved("web-1"), stayed("gpu-1")],
            )
        };
        let text = render_report(&ended);
        for want in [
            "host:         h-1 (locked)\n",
            "drain:        op-1 (failed)\n",
            "parallelism:  2\n",
            "instances:    1 moved, 0 released, 1 stayed, 0 left\n",
            "\nINSTANCE  ID ",
            "\ngpu-1     i-gpu-1  stay     stayed",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        let empty = drain(HostState::Maintenance, OperationStatus::Succeeded, vec![]);
        assert!(render_report(&empty).ends_with("\nno instances were on the host\n"));
        assert_eq!(
            render_started(&empty),
            "drain op-1 of host h-1: 0 to migrate, 0 to release, 0 to stay (parallelism 2)\n\
             Follow it with `plinth hosts maintenance status h-1 --watch`, or pass --wait.\n"
        );
    }

    fn plan_item(name: &str, state: InstanceState, action: MoveAction) -> PlanItem {
        PlanItem {
            instance_id: format!("i-{name}"),
            instance_name: name.to_string(),
            state,
            vcpus: 2,
            memory_bytes: 4 << 30,
            action,
            suitable_targets: 0,
            targets: vec![],
            blocked_by: None,
        }
    }

    #[test]
    fn plans_list_each_instance_and_whether_it_fits() {
        let items = vec![
            PlanItem {
                suitable_targets: 3,
                ..plan_item("web-1", InstanceState::Running, MoveAction::Migrate)
            },
            plan_item("db-1", InstanceState::Stopped, MoveAction::Release),
            PlanItem {
                blocked_by: Some("it has a vGPU".to_string()),
                ..plan_item("gpu-1", InstanceState::Running, MoveAction::Stay)
            },
        ];
        let plan = |fits: bool| DrainPlan {
            host_id: "h-1".to_string(),
            host_state: HostState::Locked,
            cluster_id: "az1".to_string(),
            items: items.clone(),
            fits,
            to_migrate: 1,
            to_release: 1,
            blocked: 1,
        };
        let want_rows = "host h-1 (locked), cluster az1\n\
             INSTANCE  ID       STATE    VCPUS  MEMORY   ACTION   SUITABLE TARGETS  BLOCKED BY\n\
             web-1     i-web-1  running  2      4.0 GiB  migrate  3                 -\n\
             db-1      i-db-1   stopped  2      4.0 GiB  release  -                 -\n\
             gpu-1     i-gpu-1  running  2      4.0 GiB  stay     -                 it has a vGPU\n";
        let cases = [
            (
                "fits",
                true,
                "fits: yes, cluster az1 has room to migrate every instance at once\n",
            ),
            (
                "does not fit",
                false,
                "fits: no, cluster az1 lacks room to migrate every instance at once\n",
            ),
        ];
        for (label, fits, want_fits) in cases {
            assert_eq!(
                render_plan(&plan(fits)),
                format!("{want_rows}{want_fits}1 to migrate, 1 to release, 1 blocked\n"),
                "{label}"
            );
        }
        let empty = DrainPlan {
            items: vec![],
            to_migrate: 0,
            to_release: 0,
            blocked: 0,
            ..plan(true)
        };
        assert!(render_plan(&empty).contains("\nno instances on the host\nfits: yes"));
    }
}
