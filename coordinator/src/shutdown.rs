//! Process signals: SIGTERM (systemd) and SIGINT (a terminal) both mean "stop gracefully".

use tokio::signal::unix::{SignalKind, signal};

pub async fn signalled() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "Cannot watch SIGTERM; only Ctrl-C stops this process.");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
