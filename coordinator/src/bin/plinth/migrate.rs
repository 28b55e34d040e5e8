//! `plinth instances migrate`: live-migrate one running instance to another host of its
//! cluster. `--wait` follows the move with its progress and says where the instance ended.

use crate::client::Client;
use crate::format::{duration, or_dash};
use crate::images::typed;
use crate::instances::{pause_before, wait_timeout};
use crate::moves::{event, timing, transfer_line};
use crate::output::Output;
use crate::progress::Board;
use crate::table::clean;
use anyhow::{anyhow, bail};
use plinth_common::api::{Instance, MigrateInstance, MoveItem, MoveStatus};
use plinth_common::instance::InstanceState;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// How often a followed migration is asked for.
const POLL: Duration = Duration::from_millis(500);

#[derive(clap::Args)]
pub struct MigrateArgs {
    id: String,
    /// The host to move it to, in its cluster [default: one the scheduler picks].
    #[arg(long, value_name = "HOST")]
    to: Option<String>,
    /// Follow the migration until it ends, with its progress; fail if the instance stays.
    #[arg(long)]
    wait: bool,
    /// How long --wait follows the migration before giving up (the migration itself goes on).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = wait_timeout,
        requires = "wait")]
    timeout: Duration,
}

pub async fn run(client: &Client, out: &Output, args: MigrateArgs) -> anyhow::Result<()> {
    let body = MigrateInstance {
        target_host: args.to.clone(),
    };
    let started = client
        .post(&["v1", "instances", &args.id, "migrate"], &body)
        .await?;
    if !args.wait {
        return out.emit(started, render_started);
    }
    let instance: Instance = typed(started)?;
    let (value, item) = follow(client, &instance.id, args.timeout).await?;
    out.emit(value, render_outcome)?;
    match item.status {
        MoveStatus::Moved | MoveStatus::Released => Ok(()),
        MoveStatus::Stayed | MoveStatus::Pending | MoveStatus::Migrating => Err(anyhow!(
            "instance {} was not migrated; it is still on {}",
            item.instance_id,
            item.source_host
        )),
    }
}

/// Polls the instance and its latest move every [`POLL`], showing the transfer on stderr,
/// until the move ends. A failed attempt puts the instance back to `running` while the move
/// waits to be tried again, so only a move's final status ends the wait, or the instance
/// going away or into a state no migration leaves it in.
async fn follow(client: &Client, id: &str, limit: Duration) -> anyhow::Result<(Value, MoveItem)> {
    let deadline = Instant::now() + limit;
    let mut board = Board::new();
    let mut before: Option<MoveItem> = None;
    loop {
        // The instance first: the store ends a move and places the instance in one
        // transaction, so an instance seen settled means the move read next is final.
        let instance = client.get_if_exists(&["v1", "instances", id]).await?;
        if let Some(value) = client
            .get_if_exists(&["v1", "instances", id, "migration"])
            .await?
        {
            let item: MoveItem = typed(value.clone())?;
            if let Some(line) = event(before.as_ref(), &item) {
                board.log(&line);
            }
            if item.status.is_final() {
                return Ok((value, item));
            }
            board.show(&[transfer_line(&item)]);
            before = Some(item);
        }
        let Some(instance) = instance else {
            bail!("instance {id} is gone; its migration ended with it");
        };
        let instance: Instance = typed(instance)?;
        if !matches!(
            instance.state,
            InstanceState::Migrating | InstanceState::Running
        ) {
            bail!(
                "instance {id} is {} ({}); its migration did not finish",
                instance.state,
                instance
                    .state_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            );
        }
        let Some(pause) = pause_before(deadline, POLL) else {
            bail!(
                "gave up waiting after {}: instance {id} is {}; the migration goes on; follow it \
                 with `plinth instances show {id}`",
                duration(limit),
                instance.state
            );
        };
        tokio::time::sleep(pause).await;
    }
}

fn render_started(i: &Instance) -> String {
    format!(
        "migration of instance {} from {} started; it is {} (operation {})\n\
         Follow it with `plinth instances show {}`, or pass --wait.\n",
        i.id,
        or_dash(i.host_id.as_deref()),
        i.state,
        or_dash(i.operation_id.as_deref()),
        i.id
    )
}

/// Where the move left the instance.
fn render_outcome(item: &MoveItem) -> String {
    let who = format!("instance {} ({})", item.instance_name, item.instance_id);
    let line = match item.status {
        MoveStatus::Moved => format!(
            "{who} moved to {}{}",
            or_dash(item.target_host.as_deref()),
            timing(item)
        ),
        MoveStatus::Stayed => format!(
            "{who} stayed on {} because {}",
            item.source_host,
            item.reason.as_deref().unwrap_or("no reason given")
        ),
        MoveStatus::Released => format!("{who} was released from {}", item.source_host),
        MoveStatus::Pending | MoveStatus::Migrating => format!("{who} is {}", item.status),
    };
    format!("{}\n", clean(&line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moves::tests::{item, moved};
    use clap::Parser;
    use plinth_common::api::MoveAction;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MigrateArgs,
    }

    fn parse(args: &[&str]) -> Result<MigrateArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("migrate").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_parse() {
        let cases: [(&str, &[&str], Option<&str>); 7] = [
            ("plain", &["i-1"], Some("i-1 None false 3600s")),
            (
                "to a host",
                &["i-1", "--to", "h-2"],
                Some("i-1 Some(\"h-2\") false 3600s"),
            ),
            (
                "wait",
                &["i-1", "--wait", "--timeout", "20m"],
                Some("i-1 None true 1200s"),
            ),
            ("timeout needs wait", &["i-1", "--timeout", "20m"], None),
            (
                "timeout of nothing",
                &["i-1", "--wait", "--timeout", "0s"],
                None,
            ),
            ("no instance", &["--wait"], None),
            ("empty target", &["i-1", "--to"], None),
        ];
        for (label, args, want) in cases {
            let got = parse(args)
                .ok()
                .map(|a| format!("{} {:?} {} {}s", a.id, a.to, a.wait, a.timeout.as_secs()));
            assert_eq!(got.as_deref(), want, "{label}");
        }
        let body = MigrateInstance {
            target_host: parse(&["i-1", "--to", "h-2"]).expect("parses").to,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            serde_json::json!({"target_host": "h-2"})
        );
    }

    #[test]
    fn outcomes() {
        let stayed = MoveItem {
            status: MoveStatus::Stayed,
            attempts: 3,
            reason: Some("migration timed out after 10m".to_string()),
            ..moved("web-1")
        };
        let moved_untimed = MoveItem {
            total_ms: None,
            libvirt_ms: None,
            ..moved("web-1")
        };
        let cases = [
            (
                "moved",
                moved("web-1"),
                "instance web-1 (i-web-1) moved to h-2 in 12.3 s (libvirt 8123 ms)\n",
            ),
            (
                "moved, times unknown",
                moved_untimed,
                "instance web-1 (i-web-1) moved to h-2\n",
            ),
            (
                "stayed",
                stayed,
                "instance web-1 (i-web-1) stayed on h-1 because migration timed out after 10m\n",
            ),
            (
                "stayed without a reason",
                item("web-1", MoveAction::Migrate, MoveStatus::Stayed),
                "instance web-1 (i-web-1) stayed on h-1 because no reason given\n",
            ),
        ];
        for (label, item, want) in cases {
            assert_eq!(render_outcome(&item), want, "{label}");
        }
    }
}
