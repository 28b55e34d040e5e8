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
use plinth_common::serve::Limits;
pub use plinth_common::tls::metrics::MetricsTls;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    limits: &Limits,
    metrics: Arc<Metrics>,
    addr_file: &Path,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let _ = std::fs::remove_file(addr_file);
    let Some(addr) = listen else {
        return Ok(None);
    };
    let tls = tls
        .map(MetricsTls::server_config)
        .transpose()
        .context("metrics TLS")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding /metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    let stats = metrics.listeners.register("metrics");
    tasks.spawn(plinth_common::serve::serve(
        listener,
        tls,
        router(metrics),
        limits.clone(),
        stats,
        stop,
    ));
    let tmp = addr_file.with_extension("addr.tmp");
    if std::fs::write(&tmp, format!("{bound}\n"))
        .and_then(|()| std::fs::rename(&tmp, addr_file))
        .is_err()
    {
        tracing::warn!(file = %addr_file.display(), "Could not record the /metrics address.");
    }
    Ok(Some(bound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::Libvirt;
    use crate::metrics::MetricsSettings;
    use plinth_common::tls::{Ca, LeafSpec, Role, client_config};
    use std::time::Duration;

    fn leaf(ca: &Ca, server: bool) -> (String, String) {
        let mut spec = LeafSpec::new("metrics", Role::Coordinator, Duration::from_secs(3600));
        spec.ips = vec![[127, 0, 0, 1].into()];
        spec.server = server;
        spec.client = !server;
        ca.issue_with_new_key(&spec).expect("leaf")
    }

    /// `/metrics` over TLS with client certificates: a scraper with a certificate from the
    /// configured CA is served, one without is refused; the bound address is recorded.
    #[tokio::test]
    async fn serves_over_tls_to_certified_scrapers() {
        plinth_common::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, _) = Ca::generate("metrics test").expect("ca");
        let (cert, key) = leaf(&ca, true);
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let tls = MetricsTls {
            cert: write("cert.pem", &cert),
            key: write("key.pem", &key),
            client_ca: Some(write("ca.pem", ca.cert_pem())),
        };
        let metrics = Arc::new(Metrics::new(
            Libvirt::new("test:///default"),
            MetricsSettings::default(),
        ));
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let addr_file = dir.path().join("metrics.addr");
        let bound = start(
            Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            Some(&tls),
            &Limits::default(),
            metrics,
            &addr_file,
            &tasks,
            stop.clone(),
        )
        .await
        .expect("start")
        .expect("bound");
        assert_eq!(
            std::fs::read_to_string(&addr_file)
                .expect("addr file")
                .trim(),
            bound.to_string()
        );
        let url = format!("https://127.0.0.1:{}/metrics", bound.port());

        let (client_cert, client_key) = leaf(&ca, false);
        let with_cert = reqwest::Client::builder()
            .use_preconfigured_tls(
                client_config(ca.cert_pem(), Some((&client_cert, &client_key))).expect("tls"),
            )
            .build()
            .expect("client");
        let resp = with_cert.get(&url).send().await.expect("scrape");
        assert!(resp.status().is_success());
        let body = resp.text().await.expect("body");
        assert!(body.contains("\nnode_load1 "), "{body}");

        let without = reqwest::Client::builder()
            .use_preconfigured_tls(client_config(ca.cert_pem(), None).expect("tls"))
            .build()
            .expect("client");
        assert!(
            without.get(&url).send().await.is_err(),
            "no client certificate, no metrics"
        );
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }

    #[test]
    fn half_a_tls_setup_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = MetricsTls {
            cert: dir.path().join("none.pem"),
            key: dir.path().join("none.key"),
            client_ca: None,
        };
        let err = missing.server_config().expect_err("no files");
        assert!(format!("{err:#}").contains("none.pem"), "{err:#}");
    }
}
