//! The coordinator's Prometheus `/metrics`, on a listener of its own (plain HTTP, off unless
//! `metrics_listen` is set). For now it serves the connection series of the API listener and
//! its own; the region's own series join them here.

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use plinth_common::exposition::wants_openmetrics;
use plinth_common::serve::{Limits, Listeners};
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn router(listeners: Listeners) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page; try /metrics\n") })
        .with_state(listeners)
}

async fn scrape(State(listeners): State<Listeners>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) =
        plinth_common::serve::stats::exposition(&listeners, wants_openmetrics(accept));
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// Binds `/metrics` on `at`, records the bound address in `addr_file`, and serves (a task on
/// `jobs`) until `shutdown`.
pub async fn start(
    at: SocketAddr,
    limits: Limits,
    listeners: Listeners,
    addr_file: &Path,
    jobs: &crate::jobs::Jobs,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(at)
        .await
        .with_context(|| format!("binding /metrics on {at}"))?;
    let bound = listener.local_addr()?;
    crate::paths::write_file(addr_file, format!("{bound}\n").as_bytes(), 0o644)?;
    let stats = listeners.register("metrics");
    jobs.spawn(
        "metrics server",
        plinth_common::serve::serve(listener, None, router(listeners), limits, stats, shutdown),
    );
    Ok(bound)
}
