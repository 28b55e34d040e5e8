//! Serves an axum router over TLS with the verified client certificate's role attached to each
//! request as a `PeerIdentity` extension. axum's own `serve` speaks plain TCP only.

use super::PeerIdentity;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` fires, then lets open requests finish (bounded).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let tracker = TaskTracker::new();
    loop {
        let (tcp, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %err, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Without this, a response spanning several segments waits ~40 ms for a delayed ACK.
        if let Err(err) = tcp.set_nodelay(true) {
            debug!(%remote, error = %err, "Could not set TCP_NODELAY.");
        }
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    debug!(%remote, error = %err, "TLS handshake refused.");
                    return;
                }
                Err(_) => {
                    debug!(%remote, "TLS handshake timed out.");
                    return;
                }
            };
            let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let peer = PeerIdentity::of_leaf(leaf.map(|der| der.as_ref()));
            let service =
                router.map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    req
                });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(tls),
                TowerToHyperService::new(service),
            );
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(err) = res {
                        debug!(%remote, error = %err, "Connection ended with an error.");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_DEADLINE, conn).await;
                }
            }
        });
    }
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!("Connections still open after the shutdown deadline; closing them.");
    }
}
