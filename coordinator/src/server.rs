//! `plinth-coordinator serve`: loads the data directory, binds the HTTPS listener, and serves
//! the API until told to stop.

use crate::agents::AgentClient;
use crate::config::Config;
use crate::images::storage::BlobStore;
use crate::images::{ImageServices, import_client};
use crate::paths::{DataDir, write_file};
use crate::secrets::Secrets;
use crate::state::{AppState, Settings};
use crate::store::Store;
use anyhow::{Context, bail};
use plinth_common::serve::Listeners;
use plinth_common::tls::{Ca, ReloadableCert, serve_tls, server_config};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads what `init` made into the handlers' shared state.
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
    let store = Store::open(&dir.database()).await?;
    crate::own_certs::record(&dir, &store).await?;
    let agents = AgentClient::with_revocations(
        &ca_pem,
        &read(&dir.client_cert())?,
        &read(&dir.client_key())?,
        store.revocations(),
    )?;
    let blobs = BlobStore::local(dir.images());
    blobs.prepare().await.context("preparing the image store")?;
    let extra_ca = config.import_ca_file.as_deref().map(read).transpose()?;
    let images = ImageServices {
        blobs,
        secrets: Arc::new(Secrets::load_or_create(&dir.master_key())?),
        http: import_client(extra_ca.as_deref())?,
    };
    Ok(AppState {
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
                .map(crate::prometheus::Prometheus::new)
                .transpose()?,
            baremetal: config.baremetal,
            max_token_ttl: config.max_token_ttl,
        }),
        moves: Arc::default(),
        consoles: Arc::default(),
    })
}

/// A running coordinator: its bound address and the task serving it.
pub struct Running {
    pub addr: SocketAddr,
    /// `/metrics`, when configured.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub task: JoinHandle<()>,
}

/// Binds and starts serving; returns once the listener is bound and its address written to
/// the data directory.
pub async fn start(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let dir = DataDir::new(&config.data_dir);
    let state = load_state(config).await?;
    // Before the address is published and before any job resumes: no writer is live yet.
    crate::images::writer::recover(&state.store, &state.images.blobs)
        .await
        .context("sweeping the image store")?;
    let cert = ReloadableCert::new(&read(&dir.server_cert())?, &read(&dir.server_key())?)?;
    let tls = server_config(state.ca.cert_pem(), cert.clone(), false)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    write_file(&dir.bound_address(), format!("{addr}\n").as_bytes(), 0o644)?;
    let router = crate::api::router(state.clone());
    tokio::spawn(crate::presence::watch(
        state.store.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(crate::own_certs::watch(
        dir.clone(),
        cert,
        state.agents.clone(),
        shutdown.clone(),
    ));
    crate::jobs::resume(&state).await.context("resuming jobs")?;
    tokio::spawn(crate::jobs::baremetal_sync::run(
        state.clone(),
        shutdown.clone(),
    ));
    let listeners = Listeners::default();
    let metrics_addr = match config.metrics_listen {
        None => {
            let _ = std::fs::remove_file(dir.metrics_address());
            None
        }
        Some(at) => Some(
            crate::metrics::start(
                at,
                config.metrics_limits.clone(),
                listeners.clone(),
                &dir.metrics_address(),
                shutdown.clone(),
            )
            .await?,
        ),
    };
    let task = tokio::spawn(serve_tls(
        listener,
        tls,
        router,
        config.limits.clone(),
        listeners.register("api"),
        shutdown,
    ));
    tracing::info!(%addr, metrics = ?metrics_addr, max_connections = config.limits.max_connections, "Coordinator listening.");
    Ok(Running {
        addr,
        metrics_addr,
        state,
        task,
    })
}
