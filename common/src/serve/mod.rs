//! Serves an axum router on a TCP listener, over TLS or plain, under [`Limits`]: a cap on open
//! connections (the excess closed right after accept, before any TLS work, and counted), a
//! TLS handshake timeout, an HTTP/1 header read timeout, an idle timeout for connections with
//! nothing in flight (HTTP/1 keep-alive, HTTP/2, and connections that never send), HTTP/2
//! keep-alive pings and a stream cap, and a stall timeout on request bodies and responses. A
//! request answered before its body was read has the rest read (bounded) before the answer,
//! so that HTTP/2 clients get it rather than a reset stream.
//! Every listener of both daemons goes through [`serve`]; [`stats`] counts what it refused.
//!
//! hyper's own HTTP/1 `header_read_timeout` is turned off: in hyper 1.x it runs from the end of
//! one response to the end of the next request head, so it would also close idle keep-alive
//! connections, and hyper-util's auto builder runs no timer at all while it reads the first
//! bytes to pick HTTP/1 or HTTP/2. The watchdog in [`conn`] keeps the two apart.

mod conn;
pub mod limits;
pub mod stats;

pub use conn::{UNREAD_BODY_DEADLINE, UNREAD_BODY_MAX_BYTES};
pub use limits::{LimitTexts, Limits, fit_to_fd_limit, fit_under, raise_fd_limit};
pub use stats::{ListenerSnapshot, ListenerStats, Listeners, Phase};

use axum::Router;
use conn::{Io, Service, Watch};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long an HTTP/2 connection closed for idleness gets to see its GOAWAY through.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// At most one warning this often about refused connections (the counter has them all).
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` fires, then lets open requests finish (bounded).
/// With `tls`, each request carries the client certificate's [`crate::tls::PeerIdentity`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    limits: Limits,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let tracker = TaskTracker::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let (tcp, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = stats.name(), error = %err, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Closing at once frees the descriptor and tells the client to go elsewhere;
            // the connections already accepted keep being served.
            drop(tcp);
            let total = stats.refused();
            if last_warning.is_none_or(|t| t.elapsed() >= REFUSAL_WARNING_EVERY) {
                last_warning = Some(Instant::now());
                warn!(listener = stats.name(), %remote, max_connections = limits.max_connections, refused_total = total,
                    "Connection refused: the listener holds max_connections.");
            }
            continue;
        };
        // Without this, a response spanning several segments waits ~40 ms for a delayed ACK.
        if let Err(err) = tcp.set_nodelay(true) {
            debug!(%remote, error = %err, "Could not set TCP_NODELAY.");
        }
        let watch = Watch::new(acceptor.is_none());
        let io = Io::new(tcp, slot, stats.clone(), watch.clone(), limits.body_timeout);
        let service = Service {
            router: router.clone(),
            peer: None,
            watch,
            stats: stats.clone(),
            body_timeout: limits.body_timeout,
        };
        let acceptor = acceptor.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            match acceptor {
                None => connection(io, service, &limits, remote, shutdown).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(io));
                    let tls = match handshake.await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(err)) => {
                            debug!(%remote, error = %err, "TLS handshake refused.");
                            return;
                        }
                        Err(_) => {
                            service.stats.timed_out(Phase::Handshake);
                            debug!(%remote, "TLS handshake timed out.");
                            return;
                        }
                    };
                    let session = tls.get_ref().1;
                    service
                        .watch
                        .handshake_done(session.alpn_protocol() == Some(b"h2"));
                    let service = Service {
                        peer: Some(crate::tls::serve::peer_identity(session)),
                        ..service
                    };
                    connection(tls, service, &limits, remote, shutdown).await;
                }
            }
        });
    }
    tracker.close();
    if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            listener = stats.name(),
            "Connections still open after the shutdown deadline; closing them."
        );
    }
}

/// Serves one connection until it ends, its watchdog expires, or shutdown.
async fn connection<I>(
    io: I,
    service: Service,
    limits: &Limits,
    remote: SocketAddr,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.h2_keepalive_interval))
        .keep_alive_timeout(limits.h2_keepalive_timeout)
        .max_concurrent_streams(limits.h2_max_streams);
    let watch = service.watch.clone();
    let stats = service.stats.clone();
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                debug!(%remote, error = %err, "Connection ended with an error.");
            }
        }
        phase = watch.expired(limits) => {
            stats.timed_out(phase);
            debug!(%remote, listener = stats.name(), phase = phase.name(), "Connection closed by a timeout.");
            // HTTP/1 has nothing in flight to be graceful about: dropping closes the socket.
            if watch.is_h2() {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CLOSE_GRACE, conn).await;
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_DEADLINE, conn).await;
        }
    }
}
