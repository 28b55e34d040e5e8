//! `plinth-coordinator dev`: a whole region on this machine for a first look. It initialises
//! the data directory when empty, serves the coordinator, and starts one real `plinth-agent`
//! process that enrolls through the same token + CSR + mTLS path as production.

use crate::config::Config;
use crate::hosts::store::HostFilter;
use crate::paths::{DataDir, write_file};
use crate::serve;
use crate::tenants::api::tokens::issue_enrollment_token;
use crate::{init, own_certs, shutdown};
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plinth_common::api::AgentStatus;
use plinth_common::timefmt::now_ms;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const DEV_CLUSTER: &str = "dev";

/// How long agents still accept the server certificate that `dev` replaces when the listen
/// address changes (its own agent has not started yet).
const ROTATED_GRACE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    #[arg(long, env = "PLINTH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The coordinator's address, any loopback address (127.0.0.0/8, [::1]) or one of this
    /// machine's; the server certificate is made to name it, and the agent listens beside it.
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: String,
    /// libvirt URI for the agent [default: qemu:///system when libvirtd runs here, else test:///default].
    #[arg(long)]
    pub libvirt_uri: Option<String>,
    /// The plinth-agent binary [default: beside this one].
    #[arg(long, env = "PLINTH_AGENT_BIN")]
    pub agent_bin: Option<PathBuf>,
}

fn default_libvirt_uri() -> &'static str {
    if Path::new("/run/libvirt/libvirt-sock").exists() {
        "qemu:///system"
    } else {
        "test:///default"
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = args.listen.parse().context("--listen")?;
    let dir = DataDir::new(&args.data_dir);
    if !dir.is_initialised() {
        init::init(&dir, &[listen.ip().to_string()], &args.listen).await?;
        println!("Initialised a new region in {}.", dir.root().display());
    } else if !own_certs::server_cert_names(&dir, listen.ip())? {
        // A region made for another address: its agent would refuse this one.
        let done = own_certs::rotate(&dir, ROTATED_GRACE, &[listen.ip().to_string()]).await?;
        tracing::info!(
            listen = %listen,
            serial = %done.server_serial,
            "Re-issued the server certificate to name the listen address."
        );
    }
    let root = dir.root().canonicalize()?;
    // Written again once this run's region is up; an earlier run's would name a stale token.
    let _ = std::fs::remove_file(root.join("dev.env"));
    let config = Config {
        data_dir: root.clone(),
        listen,
        agent_cert_ttl: Duration::from_secs(30 * 86_400),
        renewed_cert_grace: crate::config::DEFAULT_RENEWED_CERT_GRACE,
        import_ca_file: None,
        overcommit: Default::default(),
        policy: Default::default(),
        drains: Default::default(),
        prometheus: None,
        baremetal: Default::default(),
        max_token_ttl: Duration::from_secs(365 * 86_400),
        sessions: Default::default(),
        shutdown_timeout: crate::config::DEFAULT_SHUTDOWN_TIMEOUT,
        limits: plinth_common::serve::Limits::with_max_connections(
            crate::config::DEFAULT_MAX_CONNECTIONS,
        ),
        metrics_listen: None,
        metrics_limits: plinth_common::serve::Limits::with_max_connections(
            crate::config::DEFAULT_METRICS_MAX_CONNECTIONS,
        ),
    };
    let running = serve::start(&config).await?;
    let st = running.state.clone();
    // The agent dials, and is dialled at, a real address: loopback for a wildcard listen.
    let near = match running.addr.ip() {
        ip if !ip.is_unspecified() => ip,
        IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(_) => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    };
    st.store
        .create_cluster(DEV_CLUSTER, "created by plinth-coordinator dev")
        .await?;
    let admin_token = init::create_admin_token(&st.store, "dev", "dev").await?;
    let url = format!("https://{}", SocketAddr::new(near, running.addr.port()));

    let agent_bin = match args.agent_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("plinth-agent"),
    };
    let agent_dir = root.join("agent");
    let uri = args
        .libvirt_uri
        .unwrap_or_else(|| default_libvirt_uri().to_string());
    let enrollment = agent_dir.join("agent.toml");
    let agent_ip = if enrollment.exists() {
        repoint_agent(&enrollment, &url, near)?
    } else {
        let token = issue_enrollment_token(&st, 600_000, "dev agent", "dev", None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let status = Command::new(&agent_bin)
            .args([
                "enroll",
                "--coordinator",
                &url,
                "--token",
                &token.token,
                "--ca-hash",
                &token.ca_hash,
            ])
            .args(["--cluster", DEV_CLUSTER, "--address", &near.to_string()])
            .arg("--data-dir")
            .arg(&agent_dir)
            .status()
            .await
            .with_context(|| format!("starting {}", agent_bin.display()))?;
        if !status.success() {
            bail!("agent enrollment failed ({status})");
        }
        near
    };
    let mut agent = Command::new(&agent_bin)
        .args([
            "run",
            "--libvirt-uri",
            &uri,
            "--listen",
            &SocketAddr::new(agent_ip, 0).to_string(),
        ])
        .arg("--data-dir")
        .arg(&agent_dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", agent_bin.display()))?;

    let outcome = tokio::select! {
        listed = wait_for_host(&st) => listed,
        exit = agent.wait() => Err(anyhow::anyhow!("the agent exited early ({})", exit?)),
        _ = shutdown::signalled() => Ok(()),
    };
    if outcome.is_ok() {
        let bin_dir = std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let env = format!(
            "export PLINTH_URL={url}\nexport PLINTH_TOKEN={admin_token}\nexport PLINTH_CA={}\nexport PATH={}:$PATH\n",
            root.join("ca.pem").display(),
            bin_dir.display()
        );
        write_file(&root.join("dev.env"), env.as_bytes(), 0o600)?;
        println!("\nplinth dev region is up: coordinator {url}, one agent on {uri}.");
        println!(
            "In another terminal:\n  source {}\n  plinth hosts list",
            root.join("dev.env").display()
        );
        println!(
            "The web console: {url}/ (the browser will warn about the region's own CA: trust {} or accept it), sign in with the token PLINTH_TOKEN in {}.",
            root.join("ca.pem").display(),
            root.join("dev.env").display()
        );
        println!("Ctrl-C stops the region.\n");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        tokio::select! {
            _ = shutdown::signalled() => {}
            exit = agent.wait() => tracing::error!(status = ?exit, "The agent exited."),
        }
    }
    stop_child(&mut agent).await;
    tracing::info!(deadline = ?config.shutdown_timeout, "Shutting down.");
    running.shutdown(config.shutdown_timeout).await;
    tracing::info!("Shut down.");
    outcome
}

/// An agent enrolled by an earlier run, perhaps on another address: points it at this run's
/// coordinator and returns the address its certificate names (it listens there).
fn repoint_agent(enrollment: &Path, url: &str, near: IpAddr) -> anyhow::Result<IpAddr> {
    let text = std::fs::read_to_string(enrollment)
        .with_context(|| format!("reading {}", enrollment.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", enrollment.display()))?;
    let address = table
        .get("address")
        .and_then(toml::Value::as_str)
        .and_then(|a| a.parse().ok())
        .unwrap_or(near);
    if table.get("coordinator").and_then(toml::Value::as_str) != Some(url) {
        table.insert("coordinator".into(), toml::Value::String(url.to_string()));
        write_file(enrollment, toml::to_string(&table)?.as_bytes(), 0o644)?;
    }
    Ok(address)
}

async fn wait_for_host(st: &crate::state::AppState) -> anyhow::Result<()> {
    let filter = HostFilter {
        agent: Some(AgentStatus::Online),
        limit: 1,
        ..HostFilter::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, total) = st.store.list_hosts(&filter, now_ms()).await?;
        if total > 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the agent did not come online within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM, a grace period, then SIGKILL.
async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
