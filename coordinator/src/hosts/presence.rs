//! Agent presence. Online-ness is derived (a host is online while `now < offline_after`), so
//! nothing has to flip it for the API; this task announces the moment an agent goes offline,
//! in the log and the audit log, once per outage (the store's conditional update makes sure).

use crate::db::Store;
use plinth_common::timefmt::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

const TICK: Duration = Duration::from_secs(1);

pub async fn watch(store: Store, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let marked =
            crate::metrics::store_transaction("mark_offline", store.mark_offline(None, now_ms()));
        match marked.await {
            Ok(ids) => {
                for id in ids {
                    warn!(host = %id, "Agent offline: three heartbeats missed.");
                    if let Err(err) = store.audit("coordinator", "agent offline", &id, "").await {
                        warn!(error = %err, "Could not record an audit entry.");
                    }
                }
            }
            Err(err) => warn!(error = %err, "Checking agent presence failed; retrying."),
        }
    }
}
