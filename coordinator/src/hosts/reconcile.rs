//! Heartbeat reconciliation: a host's settled instances brought in line with the domains its
//! agent reports. A report may predate a job that just changed a domain, so every difference
//! is confirmed with the agent (in the background, the beat is not held up) before it is
//! applied and audited.

use crate::db::StoreError;
use crate::instances::store::{Reconciled, observed};
use crate::state::AppState;
use plinth_common::api::Heartbeat;
use plinth_common::timefmt::now_ms;

/// Proposes the differences between the store and the beat, and starts their confirmation.
pub(crate) async fn reconcile(st: &AppState, host: &str, hb: &Heartbeat) -> Result<(), StoreError> {
    // The interval is the agent's word: bounded so the arithmetic cannot overflow.
    let interval_ms = i64::try_from(hb.interval_ms).unwrap_or(i64::MAX);
    let settled_before = now_ms().saturating_sub(interval_ms.saturating_mul(2));
    let (proposed, unknown) = st
        .store
        .reconcile_host(host, &hb.domains, settled_before)
        .await?;
    if !unknown.is_empty() {
        tracing::debug!(host, domains = ?unknown, "Host runs domains no instance accounts for.");
    }
    if !proposed.is_empty() {
        st.jobs.spawn(
            "heartbeat reconciliation",
            confirm(st.clone(), host.to_string(), proposed),
        );
    }
    Ok(())
}

async fn confirm(st: AppState, host: String, proposed: Vec<Reconciled>) {
    let Ok(Some(ep)) = st.store.agent_endpoint(&host, now_ms()).await else {
        return;
    };
    for mut c in proposed {
        // What the agent sees now, not what the beat carried.
        let live = match st.agents.instance(&ep, &c.instance_id).await {
            Ok(found) => observed(found.as_ref().map(|d| d.state.as_str())),
            Err(e) => {
                tracing::debug!(instance = %c.instance_id, error = %e.explain(), "Could not confirm a reconciliation.");
                continue;
            }
        };
        let Some((to, reason)) = live.filter(|(to, _)| *to != c.from) else {
            continue;
        };
        (c.to, c.reason) = (to, reason);
        let applied = st.store.apply_reconciled(&c, now_ms()).await;
        if !matches!(applied, Ok(true)) {
            continue;
        }
        tracing::warn!(instance = %c.instance_id, from = %c.from, to = %c.to, reason = ?c.reason,
            "Reconciled an instance with what its host reports.");
        let detail = format!(
            "{} -> {}{}",
            c.from,
            c.to,
            c.reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        if let Err(e) = st
            .store
            .audit("coordinator", "reconcile instance", &c.instance_id, &detail)
            .await
        {
            tracing::error!(error = ?e, "Could not audit a reconciliation.");
        }
    }
}
