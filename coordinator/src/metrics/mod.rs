//! The coordinator's Prometheus `/metrics`, on a listener of its own (off unless
//! `metrics_listen` is set; plain HTTP, or TLS with `metrics_tls_cert`/`_key`): the
//! connection series of its listeners, what this process records as it happens
//! (registry.rs), and the region as the store holds it, read at each scrape (region.rs).

pub mod config;
pub mod http;
pub mod region;
mod registry;

pub use registry::{
    REFUSAL_REASONS, Subscriber, observe_http, observe_store_transaction, scheduler_decision,
    set_job_lease_held, store_transaction,
};

use crate::state::AppState;
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use plinth_common::exposition::{OPENMETRICS, PROMETHEUS_TEXT, prometheus_text, wants_openmetrics};
use plinth_common::serve::{Limits, ListenerSnapshot, Listeners};
use plinth_common::tls::metrics::MetricsTls;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Scrape {
    listeners: Listeners,
    state: AppState,
}

#[derive(Debug)]
struct Connections(Vec<ListenerSnapshot>);

impl Collector for Connections {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        plinth_common::serve::stats::encode(&mut enc, &self.0)
    }
}

fn router(scrape: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(serve_scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page; try /metrics\n") })
        .with_state(scrape)
}

/// Everything `/metrics` serves now, as OpenMetrics text. A store that cannot be read leaves
/// the region's series out (and says so in the log); the rest is still served.
pub async fn exposition(state: &AppState, listeners: &Listeners) -> String {
    let mut registry = Registry::default();
    registry::register(&mut registry);
    registry.register_collector(Box::new(Connections(listeners.snapshot())));
    match region::Snapshot::read(state).await {
        Ok(snapshot) => registry.register_collector(Box::new(snapshot)),
        Err(err) => tracing::warn!(error = %err, "Reading the region for /metrics failed."),
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        tracing::error!("Encoding the coordinator's metrics failed.");
    }
    text
}

async fn serve_scrape(State(s): State<Scrape>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let text = exposition(&s.state, &s.listeners).await;
    if wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text)
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            prometheus_text(&text),
        )
    }
}

/// Where and how `/metrics` listens.
pub struct MetricsServer<'a> {
    pub at: SocketAddr,
    pub tls: Option<&'a MetricsTls>,
    pub limits: Limits,
    pub addr_file: &'a Path,
}

/// Binds `/metrics`, records the bound address in `addr_file`, and serves (a task on
/// `state.jobs`) until `shutdown`.
pub async fn start(
    server: MetricsServer<'_>,
    listeners: Listeners,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let tls = server
        .tls
        .map(MetricsTls::server_config)
        .transpose()
        .context("metrics TLS")?;
    let listener = TcpListener::bind(server.at)
        .await
        .with_context(|| format!("binding /metrics on {}", server.at))?;
    let bound = listener.local_addr()?;
    crate::paths::write_file(server.addr_file, format!("{bound}\n").as_bytes(), 0o644)?;
    let stats = listeners.register("metrics");
    let jobs = state.jobs.clone();
    jobs.spawn(
        "metrics server",
        plinth_common::serve::serve(
            listener,
            tls,
            router(Scrape { listeners, state }),
            server.limits,
            stats,
            shutdown,
        ),
    );
    Ok(bound)
}
