//! `plinth instances`: list, show and create instances; start, stop, reboot and delete them;
//! export one's disk as a custom image (migrate is in migrate.rs). `--wait` follows the work
//! until the instance settles (or is gone, or the export ends), bounded by `--wait-timeout`.

use crate::client::Client;
use crate::format::{ago, duration, or_dash, parse_size, size, when};
use crate::images::{one_of, started_or_follow, typed};
use crate::instance_password::{PASSWORD_ENV, PasswordArgs, read_password};
use crate::migrate::{self, MigrateArgs};
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use clap::Subcommand;
use plinth_common::api::{ExportInstance, Instance, InstancePage, NewInstance, StopInstance};
use plinth_common::instance::{
    InstanceKind, InstanceState, MAX_DISK_BYTES, MAX_MEMORY_BYTES, MAX_STOP_TIMEOUT_S, MAX_VCPUS,
    MIN_MEMORY_BYTES,
};
use plinth_common::timefmt::parse_duration;
use serde_json::Value;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

/// How often `--wait` asks for the instance.
const POLL: Duration = Duration::from_secs(1);

#[derive(Subcommand)]
pub enum InstancesCommand {
    /// List instances, with search and filters.
    List(ListArgs),
    /// Show one instance.
    Show { id: String },
    /// Create an instance from an image; it starts once made.
    #[command(
        after_help = "The guest administrator's password comes from --password-file or \
                            --password-stdin, else PLINTH_ADMIN_PASSWORD, else a prompt (without \
                            echo) when stdin is a terminal."
    )]
    Create(Box<CreateArgs>),
    /// Start a stopped instance, or one in error.
    Start {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop an instance: the guest is asked to shut down, then forced off after the timeout.
    Stop {
        id: String,
        /// How long the guest gets to shut down, e.g. 60s or 5m [server default: 60s].
        #[arg(long, value_name = "DURATION", value_parser = stop_timeout)]
        timeout: Option<u64>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot a running instance.
    Reboot {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete an instance and its disk; it is gone when the work ends.
    Delete {
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Export an instance's disk as a new custom image of its tenant.
    Export {
        id: String,
        /// The new image's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Live-migrate a running instance to another host of its cluster.
    Migrate(MigrateArgs),
    /// The instance's EIPs with their gateways and routes.
    Network { id: String },
}

/// `--wait` and how long it may take.
#[derive(clap::Args)]
pub struct WaitArgs {
    /// Follow the work until it ends and print the outcome; fail if it ends in error.
    #[arg(long)]
    wait: bool,
    /// How long --wait follows the work before giving up (the work itself goes on).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = wait_timeout,
        requires = "wait")]
    wait_timeout: Duration,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Text to find in name, id, tenant email or image id.
    #[arg(short = 'q', long = "q", value_name = "TEXT")]
    q: Option<String>,
    /// Only this tenant's instances.
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Only instances on this host.
    #[arg(long, value_name = "ID")]
    host: Option<String>,
    /// Only instances in this state.
    #[arg(long, value_parser = one_of(InstanceState::ALL, InstanceState::as_str))]
    state: Option<InstanceState>,
    #[command(flatten)]
    page: PageArgs,
}

impl ListArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let text = [
            ("q", self.q.as_deref()),
            ("tenant", self.tenant.as_deref()),
            ("host", self.host.as_deref()),
            ("state", self.state.map(InstanceState::as_str)),
        ];
        text.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string())))
            .collect()
    }
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// The image it boots from: a disk image, or an os ISO.
    #[arg(long, value_name = "ID")]
    image: String,
    /// Virtual CPUs.
    #[arg(long, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_VCPUS)))]
    vcpus: u32,
    /// Memory, e.g. 2GiB or 512MiB.
    #[arg(long, value_name = "SIZE", value_parser = memory_size)]
    memory: u64,
    /// Disk size, e.g. 40GiB [default: the image's target size, or its virtual size if larger].
    #[arg(long, value_name = "SIZE", value_parser = disk_size)]
    disk: Option<u64>,
    #[arg(long, default_value = "vm",
        value_parser = one_of(InstanceKind::ALL, InstanceKind::as_str))]
    kind: InstanceKind,
    /// The owning tenant (admins must name one).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// A vGPU type or GPU model to give it.
    #[arg(long, value_name = "TYPE")]
    gpu: Option<String>,
    /// Place it in this cluster only.
    #[arg(long, value_name = "ID")]
    cluster: Option<String>,
    /// An EIP of the tenant's to bind at create (repeat for more): the instance gets a NIC on
    /// its segment, configured at first boot.
    #[arg(long = "eip", value_name = "ID")]
    eips: Vec<String>,
    #[command(flatten)]
    password: PasswordArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

impl CreateArgs {
    fn body(&self, admin_password: String) -> NewInstance {
        NewInstance {
            name: self.name.clone(),
            kind: self.kind,
            tenant_id: self.tenant.clone(),
            image_id: self.image.clone(),
            vcpus: self.vcpus,
            memory_bytes: self.memory,
            disk_bytes: self.disk,
            gpu_type: self.gpu.clone(),
            cluster_id: self.cluster.clone(),
            admin_password,
            eips: self.eips.clone(),
        }
    }
}

/// A clap parser for `--wait-timeout` (and the `--timeout` of other waits).
pub(crate) fn wait_timeout(text: &str) -> Result<Duration, String> {
    let limit = parse_duration(text)?;
    if limit.is_zero() {
        return Err("the wait timeout must be more than 0s".to_string());
    }
    Ok(limit)
}

/// A clap parser for `stop --timeout`: whole seconds, at most [`MAX_STOP_TIMEOUT_S`].
fn stop_timeout(text: &str) -> Result<u64, String> {
    let limit = parse_duration(text)?;
    if limit.subsec_nanos() != 0 {
        return Err(format!("'{text}' is not a whole number of seconds"));
    }
    if limit.as_secs() > MAX_STOP_TIMEOUT_S {
        return Err(format!(
            "the stop timeout is at most {}",
            duration(Duration::from_secs(MAX_STOP_TIMEOUT_S))
        ));
    }
    Ok(limit.as_secs())
}

const MIB: u64 = 1 << 20;

/// A size the coordinator takes for memory or a disk: a whole number of MiB.
fn whole_mib(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    let (mib, rest) = (bytes / MIB, bytes % MIB);
    if rest > 0 {
        return Err(format!(
            "'{text}' is {bytes} bytes, not a whole number of MiB (about {mib}MiB; GiB and MiB \
             always fit)"
        ));
    }
    Ok(bytes)
}

fn memory_size(text: &str) -> Result<u64, String> {
    let bytes = whole_mib(text)?;
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(format!(
            "memory must be between {} and {}",
            size(MIN_MEMORY_BYTES),
            size(MAX_MEMORY_BYTES)
        ));
    }
    Ok(bytes)
}

fn disk_size(text: &str) -> Result<u64, String> {
    let bytes = whole_mib(text)?;
    if bytes == 0 || bytes > MAX_DISK_BYTES {
        return Err(format!(
            "the disk must be more than 0 and at most {}",
            size(MAX_DISK_BYTES)
        ));
    }
    Ok(bytes)
}

pub async fn run(client: &Client, out: &Output, command: InstancesCommand) -> anyhow::Result<()> {
    match command {
        InstancesCommand::List(args) => out.emit(
            client
                .list(&["v1", "instances"], &args.query(), &args.page)
                .await?,
            render_page,
        ),
        InstancesCommand::Show { id } => out.emit(
            client.get(&["v1", "instances", &id]).await?,
            render_instance,
        ),
        InstancesCommand::Create(args) => create(client, out, &args).await,
        InstancesCommand::Start { id, wait } => {
            let started = client
                .post_empty(&["v1", "instances", &id, "start"])
                .await?;
            acted(client, out, started, &wait, "start", InstanceState::Running).await
        }
        InstancesCommand::Stop { id, timeout, wait } => {
            let body = StopInstance { timeout_s: timeout };
            let started = client
                .post(&["v1", "instances", &id, "stop"], &body)
                .await?;
            acted(client, out, started, &wait, "stop", InstanceState::Stopped).await
        }
        InstancesCommand::Reboot { id, wait } => {
            let started = client
                .post_empty(&["v1", "instances", &id, "reboot"])
                .await?;
            acted(
                client,
                out,
                started,
                &wait,
                "reboot",
                InstanceState::Running,
            )
            .await
        }
        InstancesCommand::Delete { id, wait } => delete(client, out, &id, &wait).await,
        InstancesCommand::Export { id, name, wait } => {
            let started = client
                .post(
                    &["v1", "instances", &id, "export-image"],
                    &ExportInstance { name },
                )
                .await?;
            let limit = Some(wait.wait_timeout).filter(|_| wait.wait);
            started_or_follow(client, out, started, wait.wait, "export", limit).await
        }
        InstancesCommand::Migrate(args) => migrate::run(client, out, args).await,
        InstancesCommand::Network { id } => crate::eips::network(client, out, &id).await,
    }
}

async fn create(client: &Client, out: &Output, args: &CreateArgs) -> anyhow::Result<()> {
    let source = args.password.source(
        std::env::var(PASSWORD_ENV).ok(),
        std::io::stdin().is_terminal(),
    )?;
    let password = read_password(source).await?;
    let started = client
        .post(&["v1", "instances"], &args.body(password))
        .await?;
    acted(
        client,
        out,
        started,
        &args.wait,
        "create",
        InstanceState::Running,
    )
    .await
}

/// Prints an instance a job has just begun on, or with `--wait` follows it until it settles;
/// an error if it settles anywhere but `expect`.
async fn acted(
    client: &Client,
    out: &Output,
    started: Value,
    wait: &WaitArgs,
    what: &str,
    expect: InstanceState,
) -> anyhow::Result<()> {
    if !wait.wait {
        return out.emit(started, |i: &Instance| render_started(i, what));
    }
    let instance: Instance = typed(started)?;
    let (ended_value, ended) = settle(client, &instance, wait.wait_timeout, what).await?;
    out.emit(ended_value, render_settled)?;
    if ended.state != expect {
        return Err(ended_badly(what, &ended));
    }
    Ok(())
}

/// The error for work that settled the instance where it should not have.
fn ended_badly(what: &str, ended: &Instance) -> anyhow::Error {
    let reason = ended.state_reason.as_deref().unwrap_or("no reason given");
    if ended.state == InstanceState::Error {
        anyhow::anyhow!("{what} of instance {} failed: {reason}", ended.id)
    } else {
        anyhow::anyhow!(
            "{what} of instance {} left it {} ({reason})",
            ended.id,
            ended.state
        )
    }
}

/// Polls the instance every [`POLL`] until its state is settled, writing each new state on
/// stderr; an error when `limit` passes first.
async fn settle(
    client: &Client,
    started: &Instance,
    limit: Duration,
    what: &str,
) -> anyhow::Result<(Value, Instance)> {
    let deadline = Instant::now() + limit;
    let id = started.id.as_str();
    let mut last = started.state;
    eprintln!("instance {id}: {last}");
    loop {
        let Some(pause) = pause_before(deadline, POLL) else {
            return Err(gave_up(limit, what, id, last));
        };
        tokio::time::sleep(pause).await;
        let value = client.get(&["v1", "instances", id]).await?;
        let now: Instance = typed(value.clone())?;
        if now.state != last {
            last = now.state;
            eprintln!("instance {id}: {last}");
        }
        if now.state.is_settled() {
            return Ok((value, now));
        }
    }
}

/// How long to sleep before the next poll, `every` or less; `None` once the deadline has passed.
pub(crate) fn pause_before(deadline: Instant, every: Duration) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (!left.is_zero()).then(|| left.min(every))
}

fn gave_up(limit: Duration, what: &str, id: &str, state: InstanceState) -> anyhow::Error {
    anyhow::anyhow!(
        "gave up waiting after {}: instance {id} is still {state}; the {what} goes on; follow it \
         with `plinth instances show {id}`",
        duration(limit)
    )
}

/// Deletes; with `--wait`, polls until the instance is gone (a 404), failing if it settles
/// instead.
async fn delete(client: &Client, out: &Output, id: &str, wait: &WaitArgs) -> anyhow::Result<()> {
    let started = client
        .delete(&["v1", "instances", id])
        .await?
        .unwrap_or(Value::Null);
    if !wait.wait {
        if started.is_null() {
            return out.note(&format!("instance {id} deleted\n"));
        }
        return out.emit(started, |i: &Instance| render_started(i, "delete"));
    }
    let deadline = Instant::now() + wait.wait_timeout;
    let mut last = None;
    loop {
        let Some(current) = client.get_if_exists(&["v1", "instances", id]).await? else {
            eprintln!("instance {id}: gone");
            if started.is_null() {
                return out.note(&format!("instance {id} deleted\n"));
            }
            // With --json, the answer to the delete; the text says it is done.
            return out.emit(started, |i: &Instance| {
                format!("instance {} deleted\n", i.id)
            });
        };
        let instance: Instance = typed(current.clone())?;
        if last != Some(instance.state) {
            last = Some(instance.state);
            eprintln!("instance {id}: {}", instance.state);
        }
        if instance.state.is_settled() {
            out.emit(current, render_settled)?;
            return Err(ended_badly("delete", &instance));
        }
        let Some(pause) = pause_before(deadline, POLL) else {
            return Err(gave_up(wait.wait_timeout, "delete", id, instance.state));
        };
        tokio::time::sleep(pause).await;
    }
}

// ---- rendering ---------------------------------------------------------------------------------

/// A page of instances, as `instances list` and `hosts instances` show it.
pub fn render_page(page: &InstancePage) -> String {
    let mut table = Table::new(&[
        "name",
        "instance id",
        "resource id",
        "tenant",
        "host ip",
        "image id",
        "gpu",
        "cpu",
        "memory",
        "state",
        "created",
        "updated",
    ]);
    for i in &page.items {
        table.row(vec![
            i.name.clone(),
            i.id.clone(),
            or_dash(i.resource_id.as_deref()),
            or_dash(Some(&i.tenant_email)),
            or_dash(i.host_ip.as_deref()),
            or_dash(i.image_id.as_deref()),
            or_dash(i.gpu_type.as_deref()),
            i.vcpus.to_string(),
            size(i.memory_bytes),
            i.state.to_string(),
            ago(Some(&i.created_at)),
            ago(Some(&i.updated_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "instances", more)
}

fn render_instance(i: &Instance) -> String {
    let host = match (&i.host_id, &i.host_ip) {
        (Some(id), Some(ip)) => format!("{id} ({ip})"),
        (Some(id), None) => id.clone(),
        (None, _) => "- (not placed)".to_string(),
    };
    key_values(&[
        ("id", i.id.clone()),
        ("name", i.name.clone()),
        ("kind", i.kind.to_string()),
        ("state", i.state.to_string()),
        ("state reason", or_dash(i.state_reason.as_deref())),
        ("tenant", format!("{} ({})", i.tenant_email, i.tenant_id)),
        ("host", host),
        ("resource id", or_dash(i.resource_id.as_deref())),
        ("image", or_dash(i.image_id.as_deref())),
        ("vcpus", i.vcpus.to_string()),
        ("memory", size(i.memory_bytes)),
        ("disk", size(i.disk_bytes)),
        ("gpu", or_dash(i.gpu_type.as_deref())),
        ("devices", or_dash(Some(&i.devices.join(", ")))),
        ("operation", or_dash(i.operation_id.as_deref())),
        ("created", when(Some(&i.created_at))),
        ("updated", when(Some(&i.updated_at))),
    ])
}

fn render_started(i: &Instance, what: &str) -> String {
    let head = if what == "create" {
        key_values(&[
            ("id", i.id.clone()),
            ("name", i.name.clone()),
            ("tenant", format!("{} ({})", i.tenant_email, i.tenant_id)),
            ("state", i.state.to_string()),
            ("operation", or_dash(i.operation_id.as_deref())),
        ])
    } else {
        format!(
            "instance {} is {} (operation {})\n",
            i.id,
            i.state,
            or_dash(i.operation_id.as_deref())
        )
    };
    format!(
        "{head}Follow it with `plinth instances show {}`, or pass --wait.\n",
        i.id
    )
}

fn render_settled(i: &Instance) -> String {
    match (&i.state_reason, i.state) {
        (Some(reason), InstanceState::Error) => {
            format!("instance {} is {}: {reason}\n", i.id, i.state)
        }
        _ => format!(
            "instance {} is {} on {}\n",
            i.id,
            i.state,
            or_dash(i.host_ip.as_deref())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance_password::{PasswordSource, check_password, one_line};
    use clap::Parser;
    use std::path::PathBuf;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: InstancesCommand,
    }

    fn parse(args: &[&str]) -> Result<InstancesCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("instances").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    /// `create` with the required flags, unless `extra` gives one of them itself.
    fn create(extra: &[&str]) -> Result<Box<CreateArgs>, clap::Error> {
        let required = [
            ("--name", "web-1"),
            ("--image", "img-1"),
            ("--vcpus", "2"),
            ("--memory", "2GiB"),
        ];
        let mut args = vec!["create"];
        for (flag, value) in required {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend(extra);
        match parse(&args)? {
            InstancesCommand::Create(args) => Ok(args),
            _ => panic!("create parses as create"),
        }
    }

    #[test]
    fn create_builds_the_body() {
        let args = create(&[
            "--disk",
            "40GiB",
            "--kind",
            "gateway",
            "--tenant",
            "t-1",
            "--gpu",
            "nvidia-a16-2q",
            "--cluster",
            "c1",
            "--wait",
            "--wait-timeout",
            "5m",
        ])
        .expect("create parses");
        let body = args.body("s3cret-pass".to_string());
        assert_eq!(body.memory_bytes, 2 << 30);
        assert_eq!(body.disk_bytes, Some(40 << 30));
        assert_eq!(body.kind, InstanceKind::Gateway);
        assert_eq!(body.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(body.gpu_type.as_deref(), Some("nvidia-a16-2q"));
        assert_eq!(body.cluster_id.as_deref(), Some("c1"));
        assert!(args.wait.wait);
        assert_eq!(args.wait.wait_timeout, Duration::from_secs(300));

        let plain = create(&[]).expect("create parses");
        let body = plain.body("s3cret-pass".to_string());
        assert_eq!(body.kind, InstanceKind::Vm);
        assert_eq!(body.disk_bytes, None);
        assert!(!plain.wait.wait);
        assert_eq!(plain.wait.wait_timeout, Duration::from_secs(600));
        let json = serde_json::to_value(&body).expect("serializes");
        assert!(json.get("disk_bytes").is_none());
        assert!(json.get("tenant_id").is_none());
    }

    #[test]
    fn create_checks_sizes_and_counts() {
        use clap::error::ErrorKind;
        // Refused for the value itself, not for a flag given twice or missing.
        let refused = |parsed: Result<Box<CreateArgs>, clap::Error>| {
            parsed.is_err_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::ValueValidation | ErrorKind::InvalidValue
                )
            })
        };
        assert_eq!(
            create(&["--memory", "64MiB"]).expect("parses").memory,
            64 << 20
        );
        assert_eq!(create(&["--vcpus", "256"]).expect("parses").vcpus, 256);
        assert!(refused(create(&["--memory", "32MiB"])));
        assert!(refused(create(&["--memory", "2048"])));
        assert!(refused(create(&["--disk", "0GiB"])));
        assert!(refused(create(&["--disk", "65TiB"])));
        assert!(refused(create(&["--disk", "20GB"])));
        assert!(refused(create(&["--memory", "1.0001GiB"])));
        let decimal = create(&["--memory", "2147.483648MB"]).expect("whole MiB");
        assert_eq!(decimal.memory, 2 << 30);
        assert!(refused(create(&["--vcpus", "0"])));
        assert!(refused(create(&["--vcpus", "257"])));
        assert!(refused(create(&["--kind", "container"])));
        assert!(parse(&["create", "--name", "a", "--image", "i", "--vcpus", "1"]).is_err());
    }

    #[test]
    fn create_takes_no_password_value() {
        assert!(create(&["--password", "hunter22"]).is_err());
        assert!(create(&["--password-file", "/p", "--password-stdin"]).is_err());
        let from_file = create(&["--password-file", "/run/p"]).expect("parses");
        assert_eq!(
            from_file
                .password
                .source(Some("from-env-1".into()), true)
                .expect("a source"),
            PasswordSource::File(PathBuf::from("/run/p"))
        );
        let from_stdin = create(&["--password-stdin"]).expect("parses");
        assert_eq!(
            from_stdin.password.source(None, false).expect("a source"),
            PasswordSource::Stdin
        );
        let plain = create(&[]).expect("parses");
        assert_eq!(
            plain
                .password
                .source(Some("from-env-1".into()), true)
                .expect("a source"),
            PasswordSource::Env("from-env-1".into())
        );
        assert_eq!(
            plain
                .password
                .source(Some(String::new()), true)
                .expect("a source"),
            PasswordSource::Prompt
        );
        assert!(plain.password.source(None, false).is_err());
    }

    #[test]
    fn passwords_are_one_checked_line() {
        assert_eq!(
            one_line("s3cret-pass\n", "f").expect("one line"),
            "s3cret-pass"
        );
        assert_eq!(
            one_line("s3cret-pass\r\n", "f").expect("one line"),
            "s3cret-pass"
        );
        assert_eq!(
            one_line("s3cret-pass", "f").expect("one line"),
            "s3cret-pass"
        );
        assert!(one_line("a\nb\n", "f").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(129)).is_err());
        assert!(check_password("tab\there-ok?").is_err());
        assert!(check_password("long enough").is_ok());
    }

    #[test]
    fn wait_timeout_needs_wait() {
        assert!(parse(&["start", "i-1", "--wait-timeout", "1m"]).is_err());
        assert!(parse(&["start", "i-1", "--wait", "--wait-timeout", "0s"]).is_err());
        assert!(parse(&["start", "i-1", "--wait", "--wait-timeout", "soon"]).is_err());
        let Ok(InstancesCommand::Reboot { id, wait }) = parse(&["reboot", "i-1", "--wait"]) else {
            panic!("reboot parses");
        };
        assert_eq!(id, "i-1");
        assert!(wait.wait);
    }

    #[test]
    fn stop_takes_a_timeout_in_whole_seconds() {
        let Ok(InstancesCommand::Stop { timeout, .. }) = parse(&["stop", "i-1", "--timeout", "2m"])
        else {
            panic!("stop parses");
        };
        assert_eq!(timeout, Some(120));
        let Ok(InstancesCommand::Stop { timeout, .. }) = parse(&["stop", "i-1"]) else {
            panic!("stop parses");
        };
        assert_eq!(timeout, None);
        assert!(parse(&["stop", "i-1", "--timeout", "1500ms"]).is_err());
        assert!(parse(&["stop", "i-1", "--timeout", "2h"]).is_err());
        assert!(parse(&["stop", "i-1", "--timeout", "60"]).is_err());
    }

    #[test]
    fn export_and_delete_parse() {
        let Ok(InstancesCommand::Export { id, name, wait }) =
            parse(&["export", "i-1", "--name", "golden", "--wait"])
        else {
            panic!("export parses");
        };
        assert_eq!(
            (id.as_str(), name.as_str(), wait.wait),
            ("i-1", "golden", true)
        );
        assert!(parse(&["export", "i-1"]).is_err());
        assert!(matches!(
            parse(&["delete", "i-1"]),
            Ok(InstancesCommand::Delete { wait, .. }) if !wait.wait
        ));
    }

    #[test]
    fn list_filters_become_the_query() {
        let Ok(InstancesCommand::List(args)) = parse(&[
            "list", "-q", "web", "--tenant", "t-1", "--host", "h-1", "--state", "running",
            "--limit", "20", "--cursor", "c1.x",
        ]) else {
            panic!("list parses");
        };
        assert_eq!(
            args.query(),
            vec![
                ("q", "web".to_string()),
                ("tenant", "t-1".to_string()),
                ("host", "h-1".to_string()),
                ("state", "running".to_string()),
            ]
        );
        assert_eq!(
            args.page,
            PageArgs {
                limit: Some(20),
                cursor: Some("c1.x".into())
            }
        );
        assert!(
            parse(&["list", "--offset", "40"]).is_err(),
            "gone with the API's offset"
        );
        assert!(parse(&["list", "--limit", "0"]).is_err());
        assert!(parse(&["list", "--state", "sleeping"]).is_err());
        let Ok(InstancesCommand::List(args)) = parse(&["list", "--q", "web"]) else {
            panic!("list parses");
        };
        assert_eq!(args.query(), vec![("q", "web".to_string())]);
    }

    #[test]
    fn pages_show_the_seed_columns() {
        let instance: Instance = serde_json::from_value(serde_json::json!({
            "id": "i-1", "name": "web-1", "kind": "vm", "tenant_id": "t-1",
            "tenant_email": "a@example.com", "host_id": "h-1", "host_ip": "10.0.0.5",
            "image_id": "img-1", "vcpus": 2, "memory_bytes": 2147483648u64,
            "disk_bytes": 42949672960u64, "gpu_type": null, "devices": [],
            "state": "running", "state_reason": null, "resource_id": "uuid-1",
            "operation_id": null, "created_at": "x", "updated_at": "y"
        }))
        .expect("an instance");
        let text = render_page(&InstancePage {
            items: vec![instance],
            total: 3,
            next_cursor: Some("c1.next".into()),
        });
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .expect("a header")
            .split("  ")
            .filter(|c| !c.is_empty())
            .map(str::trim)
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "INSTANCE ID",
                "RESOURCE ID",
                "TENANT",
                "HOST IP",
                "IMAGE ID",
                "GPU",
                "CPU",
                "MEMORY",
                "STATE",
                "CREATED",
                "UPDATED"
            ]
        );
        let row = lines.next().expect("a row");
        assert!(row.contains("a@example.com") && row.contains("2.0 GiB"));
        assert_eq!(lines.next(), Some("1 of 3 instances"));
        assert_eq!(lines.next(), Some("more: --cursor c1.next"));
    }
}
