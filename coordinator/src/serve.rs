//! `plinth-coordinator serve`: loads the data directory, binds the HTTPS listener, and serves
//! the API until told to stop.

use crate::agents::AgentClient;
use crate::config::Config;
use crate::db::Store;
use crate::images::storage::BlobStore;
use crate::images::{ImageServices, import_client};
use crate::jobs::Jobs;
use crate::jobs::Stopped;
use crate::paths::{DataDir, write_file};
use crate::secrets::Secrets;
use crate::state::{AppState, Settings};
use anyhow::{Context, bail};
use plinth_common::serve::Listeners;
use plinth_common::tls::{Ca, ReloadableCert, serve_tls, server_config};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads what `init` made into the handlers' shared state, with a job runner of its own.
pub async fn load_state(config: &Config) -> anyhow::Result<AppState> {
    let dir = DataDir::new(&config.data_dir);
    if !dir.is_initialised() {
        bail!(
            "{} is not initialised: run `plinth-coordinator init --data-dir {}` first",
            dir.root().display(),
            dir.root().display()
        );
    }
    // The data directory holds the CA key and the database: its owner's alone, however it
    // was made.
    plinth_common::fsutil::create_private_dir(dir.root())
        .with_context(|| format!("making {} private", dir.root().display()))?;
    let ca_pem = read(&dir.ca_cert())?;
    let ca = Ca::load(&ca_pem, &read(&dir.ca_key())?)?;
    let jobs = Jobs::new();
    let store = Store::connect(&config.store.database, &jobs)
        .await
        .with_context(|| format!("opening the store ({})", config.store.database))?;
    crate::own_certs::record(&dir, &store).await?;
    let agents = AgentClient::with_revocations(
        &ca_pem,
        &read(&dir.client_cert())?,
        &read(&dir.client_key())?,
        store.revocations(),
    )?;
    if store.dialect() == crate::db::Dialect::Postgres && !config.store.images_dir_shared {
        tracing::warn!(dir = %config.store.images_dir.display(), "images_dir is not set: the images this coordinator imports stay in its data directory, and only it can serve them. Set images_dir to a directory every coordinator mounts.");
    }
    let blobs = BlobStore::local(&config.store.images_dir);
    blobs.prepare().await.context("preparing the image store")?;
    let extra_ca = config.import_ca_file.as_deref().map(read).transpose()?;
    let images = ImageServices {
        blobs,
        secrets: Arc::new(Secrets::load_or_create(&dir.master_key())?),
        http: import_client(extra_ca.as_deref())?,
    };
    Ok(AppState {
        events: crate::events::Events::new(store.clone(), crate::events::Backlog::default()),
        store,
        ca: Arc::new(ca),
        agents,
        images,
        settings: Arc::new(Settings {
            agent_cert_ttl: config.agent_cert_ttl,
            renewed_cert_grace: config.renewed_cert_grace,
            overcommit: config.overcommit,
            policy: config.policy,
            drains: config.drains,
            prometheus: config
                .prometheus
                .clone()
                .map(crate::hosts::prometheus::Prometheus::new)
                .transpose()?,
            baremetal: config.baremetal,
            max_token_ttl: config.max_token_ttl,
            sessions: config.sessions,
            coordinator: crate::jobs::lease::Identity::new(
                config.store.coordinator_name.as_deref(),
                config.listen,
            )
            .id,
            job_lease_ttl: config.store.job_lease_ttl,
            started_at: plinth_common::timefmt::now_ms(),
        }),
        moves: Arc::default(),
        consoles: Arc::default(),
        jobs,
    })
}

/// A running coordinator: its bound address, the task serving it, and its jobs
/// (`state.jobs`).
pub struct Running {
    pub addr: SocketAddr,
    /// `/metrics`, when configured.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    /// Stops the listeners taking connections (cancelled before the jobs are).
    serving: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Graceful stop, all within `deadline`: the listeners stop taking connections and let
    /// the requests in flight finish (their creates still reach the store), then every job
    /// is cancelled and waited for. What is left at the deadline ends with the process;
    /// durable jobs resume from their store rows at the next start.
    pub async fn shutdown(self, deadline: Duration) -> Stopped {
        let until = Instant::now() + deadline;
        self.serving.cancel();
        if tokio::time::timeout_at(until, self.task).await.is_err() {
            tracing::warn!("Requests still in flight at the shutdown deadline.");
        }
        let left = until.saturating_duration_since(Instant::now());
        self.state.jobs.shutdown(left).await
    }
}

/// Binds and starts serving; returns once the listener is bound and its address written to
/// the data directory. Every task it starts is on `state.jobs`; [`Running::shutdown`] stops
/// them.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let dir = DataDir::new(&config.data_dir);
    let state = load_state(config).await?;
    // Before the address is published and before any job resumes: no writer is live yet.
    let sole = state.store.dialect() == crate::db::Dialect::Sqlite;
    crate::images::writer::recover(&state.store, &state.images.blobs, sole)
        .await
        .context("sweeping the image store")?;
    let cert = ReloadableCert::new(&read(&dir.server_cert())?, &read(&dir.server_key())?)?;
    let tls = server_config(state.ca.cert_pem(), cert.clone(), false)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    write_file(&dir.bound_address(), format!("{addr}\n").as_bytes(), 0o644)?;
    // Every error answer JSON, axum's own (405) included.
    let router = crate::http::json_errors::around(
        crate::api::router(state.clone())
            .route_layer(axum::middleware::from_fn(crate::metrics::http::track)),
    );
    let jobs = state.jobs.clone();
    jobs.spawn(
        "certificate watcher",
        crate::own_certs::watch(dir.clone(), cert, state.agents.clone(), jobs.token()),
    );
    // On PostgreSQL: the caches follow the other coordinators' writes (db/follow.rs).
    jobs.spawn(
        "cache follower",
        crate::db::follow::follow(state.store.clone(), jobs.token()),
    );
    let me = crate::jobs::lease::Identity {
        id: state.settings.coordinator.clone(),
        address: addr.to_string(),
    };
    crate::jobs::lease::start(&state, me, config.store.job_lease_ttl)
        .await
        .context("resuming jobs")?;
    // A child of the runner's token: cancelled first by `Running::shutdown`, and with the
    // jobs by anything else that shuts the runner down.
    let serving = jobs.child_token();
    let listeners = Listeners::default();
    let metrics_addr = match config.metrics_listen {
        None => {
            let _ = std::fs::remove_file(dir.metrics_address());
            None
        }
        Some(at) => Some(
            crate::metrics::start(
                crate::metrics::MetricsServer {
                    at,
                    tls: config.metrics_tls.as_ref(),
                    limits: config.metrics_limits.clone(),
                    addr_file: &dir.metrics_address(),
                },
                listeners.clone(),
                state.clone(),
                serving.clone(),
            )
            .await?,
        ),
    };
    let task = jobs.spawn(
        "api server",
        serve_tls(
            listener,
            tls,
            router,
            config.limits.clone(),
            listeners.register("api"),
            serving.clone(),
        ),
    );
    tracing::info!(%addr, metrics = ?metrics_addr, max_connections = config.limits.max_connections, "Coordinator listening.");
    Ok(Running {
        addr,
        metrics_addr,
        state,
        serving,
        task,
    })
}
