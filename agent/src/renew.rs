//! Certificate renewal: at two thirds of its lifetime the agent makes a new key, sends a CSR
//! over mTLS with its current certificate, and swaps in the new pair without a restart.

use crate::runtime::Agent;
use plinth_common::api::{RenewRequest, RenewResponse};
use plinth_common::tls::{cert_not_after, new_key_and_csr};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const RETRY: Duration = Duration::from_secs(30);
const MIN_WAIT: Duration = Duration::from_secs(1);

/// When the current certificate should be renewed.
fn renew_at(cert_pem: &str) -> anyhow::Result<OffsetDateTime> {
    let (not_before, not_after) = cert_not_after(cert_pem)?;
    Ok(not_before + (not_after - not_before) * 2 / 3)
}

pub async fn renew_once(agent: &Agent) -> anyhow::Result<()> {
    let (key_pem, csr_pem) = new_key_and_csr(agent.host_id())?;
    let path = plinth_common::api::agent_routes::coordinator::renew(agent.host_id());
    let resp = agent
        .post_to_coordinator(&path, &RenewRequest { csr_pem })
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!("coordinator answered {status}: {text}");
    }
    let renewed: RenewResponse = resp.json().await?;
    agent.install_credentials(&renewed.certificate_pem, &key_pem)?;
    let (_, not_after) = cert_not_after(&renewed.certificate_pem)?;
    info!(host = %agent.host_id(), %not_after, "Certificate renewed.");
    Ok(())
}

pub async fn run(agent: Arc<Agent>, stop: CancellationToken) {
    loop {
        let wait = match renew_at(&agent.cert_pem()) {
            // At least a second between attempts, whatever the certificate says.
            Ok(at) => (at - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO)
                .max(MIN_WAIT),
            Err(err) => {
                warn!(error = %err, "Cannot read the certificate's lifetime.");
                RETRY
            }
        };
        // Re-check at least hourly, so a clock jump cannot make us sleep past expiry.
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait.min(Duration::from_secs(3600))) => {}
        }
        if wait > Duration::from_secs(3600) {
            continue;
        }
        if let Err(err) = renew_once(&agent).await {
            warn!(error = %err, "Certificate renewal failed; retrying.");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }
}
