//! `/metrics` on its own listener, apart from the mTLS API (Prometheus has no region
//! certificate): plain HTTP by default, or TLS with a certificate the operator gives, and
//! optionally client certificates from a CA the operator names.

use super::Metrics;
use super::encode::wants_openmetrics;
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plinth_common::tls::config::{certs_from_pem, key_from_pem};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// TLS for `/metrics`: PEM files read at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, scrapers must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

fn tls_config(tls: &MetricsTls) -> anyhow::Result<Arc<ServerConfig>> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let certs = certs_from_pem(&read(&tls.cert)?)?;
    let key = key_from_pem(&read(&tls.key)?)?;
    let builder = ServerConfig::builder();
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs_from_pem(&read(ca)?)? {
                roots.add(cert)?;
            }
            builder
                .with_client_cert_verifier(WebPkiClientVerifier::builder(Arc::new(roots)).build()?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the metrics certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route(
            "/",
            get(|| async { "plinth-agent: Prometheus metrics are at /metrics\n" }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page; try /metrics\n") })
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let exposition = metrics.exposition(wants_openmetrics(accept)).await;
    (
        [(header::CONTENT_TYPE, exposition.content_type)],
        exposition.body,
    )
        .into_response()
}

/// Binds `/metrics` on `listen` (nothing when `None`) and serves it on `tasks` until `stop`.
/// The bound address goes to `addr_file` (for a port-0 listener: tests, scripts).
pub async fn start(
    listen: Option<SocketAddr>,
    tls: Option<&MetricsTls>,
    metrics: Arc<Metrics>,
    addr_file: &Path,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let _ = std::fs::remove_file(addr_file);
    let Some(addr) = listen else {
        return Ok(None);
    };
    let tls = tls.map(tls_config).transpose().context("metrics TLS")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding /metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tasks.spawn(serve(listener, tls, metrics, stop));
    let tmp = addr_file.with_extension("addr.tmp");
    if std::fs::write(&tmp, format!("{bound}\n"))
        .and_then(|()| std::fs::rename(&tmp, addr_file))
        .is_err()
    {
        tracing::warn!(file = %addr_file.display(), "Could not record the /metrics address.");
    }
    Ok(Some(bound))
}

/// Serves `/metrics` on `listener` until `stop`.
async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let app = router(metrics);
    match tls {
        Some(tls) => plinth_common::tls::serve_tls(listener, tls, app, stop).await,
        None => {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "The metrics listener failed.");
            }
        }
    }
}
