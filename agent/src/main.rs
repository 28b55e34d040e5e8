//! `plinth-agent`: enroll this host, then run as its agent (a systemd service).

use anyhow::Context;
use clap::{Parser, Subcommand};
use plinth_agent::config::{
    Config, DEFAULT_API_PORT, DEFAULT_METRICS_PORT, MetricsListen, RunArgs,
};
use plinth_agent::enroll::{EnrollArgs, enroll};
use plinth_agent::identity::AgentDir;
use plinth_agent::libvirt::Libvirt;
use plinth_agent::runtime::Agent;
use plinth_agent::{api, heartbeat, metrics, renew};
use plinth_common::tls::{serve_tls, server_config};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Parser)]
#[command(name = "plinth-agent", version, about = "plinth host agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join a region: pin its CA, trade a one-time token and a CSR for a certificate.
    Enroll(EnrollArgs),
    /// Run the agent: heartbeats, certificate renewal, and the mTLS API.
    Run(Box<RunArgs>),
}

const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

fn main() -> anyhow::Result<()> {
    plinth_common::fsutil::private_umask();
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(start())
}

/// glibc gives each thread that allocates an arena of its own (up to eight per core), each
/// holding on to what was freed in it; the blocking threads the metrics collectors run on
/// made that about half a MiB of the agent's resident memory (issue 6). Two arenas are
/// plenty for the agent's load: glibc's per-thread cache serves most allocations without an
/// arena lock. `MALLOC_ARENA_MAX` in the environment still decides, for an operator who
/// wants otherwise.
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets one of malloc's tunables (under malloc's own lock) and
        // takes no pointers; it runs before any other thread exists. If it fails (returns
        // 0), malloc keeps its defaults, which are correct too.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

#[cfg(not(target_env = "gnu"))]
fn limit_malloc_arenas() {}

async fn start() -> anyhow::Result<()> {
    plinth_common::tls::install_crypto_provider();
    plinth_common::logging::init();
    match Cli::parse().command {
        Command::Enroll(args) => {
            let e = enroll(&args).await?;
            println!(
                "Enrolled as {} in cluster {} (address {}).",
                e.host_id, e.cluster, e.address
            );
            Ok(())
        }
        Command::Run(args) => {
            let mut config = Config::resolve(&args)?;
            plinth_common::serve::fit_to_fd_limit(&mut [
                &mut config.limits,
                &mut config.metrics.limits,
            ]);
            run(config).await
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let libvirt = Libvirt::new(&config.libvirt_uri).with_accel(config.accel);
    libvirt
        .check(Duration::from_secs(30))
        .await
        .with_context(|| format!("connecting to libvirt at {}", config.libvirt_uri))?;
    let mut agent = Agent::load(
        AgentDir::new(&config.data_dir),
        libvirt,
        config.heartbeat_interval,
        config.migration.clone(),
        config.shared_storage_dir.as_deref(),
    )?
    .with_metrics(config.metrics.settings.clone())
    .with_sysfs_root(&config.sysfs_root)
    .with_coordinators(&config.coordinator_urls)?;
    agent.ipmi = config
        .ipmi
        .map(|s| Arc::new(plinth_agent::ipmi::Ipmi::new(s)));
    if agent.ipmi.is_some() {
        agent.redfish = Some(
            plinth_agent::redfish::Redfish::new(config.redfish_ca.as_deref())
                .context("building the Redfish client")?,
        );
    }
    let agent = Arc::new(agent);
    // Slices a reboot took away come back before the first heartbeat reports the devices.
    let remade = agent.devices.recreate().await;
    if remade > 0 {
        tracing::info!(vgpus = remade, "Recorded vGPUs made again.");
    }
    let listen = config
        .listen
        .unwrap_or_else(|| SocketAddr::new(agent.enrollment.address, DEFAULT_API_PORT));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the agent API on {listen}"))?;
    let bound = listener.local_addr()?;
    agent.set_api_port(bound.port());
    let tls = server_config(&agent.ca_pem, agent.server_cert.clone(), true)?;

    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(serve_tls(
        listener,
        tls,
        api::router(agent.clone()),
        config.limits.clone(),
        agent.metrics.listeners.register("api"),
        stop.clone(),
    ));
    // Ready once the first heartbeat is through: the host is then listed and reachable.
    if let Err(err) = heartbeat::beat_once(&agent).await {
        tracing::warn!(error = %err, "First heartbeat failed; will keep trying.");
    }
    let metrics_listen = match config.metrics.listen {
        MetricsListen::Off => None,
        MetricsListen::Default => Some(SocketAddr::new(
            agent.enrollment.address,
            DEFAULT_METRICS_PORT,
        )),
        MetricsListen::At(addr) => Some(addr),
    };
    let metrics_bound = metrics::start(
        metrics_listen,
        config.metrics.tls.as_ref(),
        &config.metrics.limits,
        agent.metrics.clone(),
        &agent.dir.root().join("metrics.addr"),
        &tasks,
        stop.clone(),
    )
    .await?;
    tasks.spawn(agent.metrics.clone().record_history(stop.clone()));
    tasks.spawn(heartbeat::run(agent.clone(), stop.clone()));
    tasks.spawn(renew::run(agent.clone(), stop.clone()));
    if let Some(ipmi) = &agent.ipmi {
        // Keeps BMC sessions alive while used; closes them all at shutdown.
        tasks.spawn(ipmi.clone().maintain(stop.clone()));
    }
    tracing::info!(host = %agent.host_id(), api = %bound, metrics = ?metrics_bound, libvirt = %agent.libvirt.uri(), "Agent running.");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("Shutting down.");
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("Tasks still running after the shutdown deadline; exiting anyway.");
    }
    Ok(())
}
