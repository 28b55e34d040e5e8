//! Serves an axum router over TLS with the verified client certificate's role attached to each
//! request as a `PeerIdentity` extension, under the listener's limits (see [`crate::serve`]).

use super::PeerIdentity;
use crate::serve::{Limits, ListenerStats};
use axum::Router;
use rustls::ServerConfig;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Accepts connections until `shutdown` fires, then lets open requests finish (bounded).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    limits: Limits,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
) {
    crate::serve::serve(listener, Some(tls), router, limits, stats, shutdown).await
}

/// Who the client of a finished handshake is.
pub(crate) fn peer_identity(session: &rustls::ServerConnection) -> PeerIdentity {
    let leaf = session.peer_certificates().and_then(|chain| chain.first());
    PeerIdentity::of_leaf(leaf.map(|der| der.as_ref()))
}
