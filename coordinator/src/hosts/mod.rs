//! Compute hosts: enrollment and identity, the lock and maintenance states, presence, facts
//! and metrics history. The functions here are the hosts' operations, the one place that
//! changes a host: a state change is the table (`HostState::transition`), the store's
//! compare-and-swap, then the audit entry. The API (api/) parses requests and calls one each.

pub mod api;
pub mod certs;
mod error;
pub mod presence;
pub mod prometheus;
pub(crate) mod reconcile;
pub mod store;

pub use error::HostError;

use crate::agents::AgentEndpoint;
use crate::hosts::store::NewHost;
use crate::hosts::store::enrollment::{Enrolled, RemoveRefused, Removed};
use crate::http::paging::PageRequest;
use crate::state::AppState;
use crate::tenants::{self, EnrollmentTokenStatus};
use error::instance_list;
use plinth_common::api::{
    AgentFacts, Cluster, EnrollResponse, EnrollmentToken, Heartbeat, HeartbeatAck, Host,
    HostCertificate, HostCertificatePage, HostMetrics, HostRemoved, MetricsSource, RenewResponse,
};
use plinth_common::host::HostEvent;
use plinth_common::ids::{HostId, new_id};
use plinth_common::metrics::HostSeries;
use plinth_common::timefmt::now_ms;
use std::net::IpAddr;

/// Applies `event` to host `id` (lock, unlock, maintenance): the table decides, the store
/// swaps the state only if nobody moved it meanwhile, and the change is audited as `actor`.
pub async fn transition(
    st: &AppState,
    actor: &str,
    id: &HostId,
    event: HostEvent,
) -> Result<Host, HostError> {
    let host = st
        .store
        .transition_host(id, event, now_ms())
        .await
        .map_err(|e| HostError::transition(id, e))?;
    st.store.audit(actor, event.as_str(), id, "").await?;
    tracing::info!(host = %id, state = %host.state, %actor, "Host state changed.");
    Ok(host)
}

/// An enrollment request, its fields checked.
#[derive(Debug, Clone)]
pub struct Enrollment<'a> {
    pub token_id: &'a str,
    pub secret: &'a str,
    pub cluster_id: &'a str,
    pub hostname: &'a str,
    pub address: IpAddr,
    pub csr_pem: &'a str,
}

/// Enrolls a host: takes the one-time token, signs the agent's CSR and records the host (a
/// new one, or the host a re-enrollment token names, whose earlier certificates it revokes).
pub async fn enroll(st: &AppState, e: &Enrollment<'_>) -> Result<EnrollResponse, HostError> {
    let now = now_ms();
    let bound = match tenants::enrollment_token_status(st, e.token_id, e.secret, now).await? {
        EnrollmentTokenStatus::Valid { host } => host,
        other => return Err(HostError::Token(other)),
    };
    if !st.store.cluster_exists(e.cluster_id).await? {
        return Err(HostError::invalid(
            "cluster_id",
            format!(
                "cluster {} does not exist; create it first (plinth clusters create {})",
                e.cluster_id, e.cluster_id
            ),
        ));
    }
    let ip = e.address.to_string();
    // A new identity for every plain token; only a re-enrollment token names an existing one.
    let host_id = bound.clone().unwrap_or_else(|| new_id("host"));
    let cert = certs::sign_agent_csr(st, e.csr_pem, &host_id, e.address)?;
    let host = NewHost {
        id: &host_id,
        ip: &ip,
        hostname: e.hostname,
        cluster_id: e.cluster_id,
        cert_expires_at: cert.expires_at,
        now,
    };
    let enrolled = st
        .store
        .enroll_host(e.token_id, &host, bound.as_deref(), &cert.issued(&host_id))
        .await?;
    let revoked = match enrolled {
        Enrolled::Done { revoked } => revoked,
        Enrolled::TokenTaken => return Err(HostError::Token(EnrollmentTokenStatus::Used)),
        Enrolled::AddressHeld { host } => return Err(HostError::AddressHeld { ip, host }),
        Enrolled::HostRemoved => return Err(HostError::ReenrolledHostRemoved(host_id)),
        Enrolled::OtherAddress { address } => {
            return Err(HostError::invalid(
                "address",
                format!(
                    "host {host_id} is at {address}; re-enrollment keeps a host's address (to move it, remove it and enroll it anew)"
                ),
            ));
        }
        Enrolled::OtherCluster { cluster } => {
            return Err(HostError::invalid(
                "cluster_id",
                format!(
                    "host {host_id} is in cluster {cluster}; re-enrollment keeps a host's cluster"
                ),
            ));
        }
    };
    let actor = format!("agent:{host_id}");
    let (action, detail) = match &bound {
        None => (
            "enroll",
            format!("ip {ip}, cluster {}, token {}", e.cluster_id, e.token_id),
        ),
        Some(_) => (
            "re-enroll",
            format!(
                "ip {ip}, token {}, {revoked} earlier certificate(s) revoked",
                e.token_id
            ),
        ),
    };
    st.store.audit(&actor, action, &host_id, &detail).await?;
    tracing::info!(host = %host_id, %ip, cluster = %e.cluster_id, reenrolled = bound.is_some(), revoked, "Host enrolled.");
    Ok(EnrollResponse {
        host_id,
        certificate_pem: cert.pem,
        ca_pem: st.ca.cert_pem().to_string(),
    })
}

/// Removes host `id` from the region, revoking its certificates. Refused while instances are
/// on it, unless `forced` gives the reason (they end in `error`).
pub async fn remove(
    st: &AppState,
    actor: &str,
    id: &HostId,
    forced: Option<&str>,
) -> Result<HostRemoved, HostError> {
    let removed =
        st.store
            .remove_host(id, forced, now_ms())
            .await?
            .map_err(|refused| match refused {
                RemoveRefused::NotFound => HostError::NotFound(id.to_string()),
                RemoveRefused::Draining => HostError::Draining(id.to_string()),
                RemoveRefused::Busy { instances } => HostError::InstancesBusy {
                    id: id.to_string(),
                    instances: instances
                        .iter()
                        .map(|(i, s)| format!("{i} ({s})"))
                        .collect(),
                },
                RemoveRefused::HasInstances { instances } => HostError::HasInstances {
                    id: id.to_string(),
                    instances,
                },
            })?;
    let detail = match forced {
        Some(why) => format!(
            "forced: {why}; {} instance(s) left in error: {}; {} certificate(s) revoked",
            removed.orphaned.len(),
            instance_list(&removed.orphaned),
            removed.revoked
        ),
        None => format!("{} certificate(s) revoked", removed.revoked),
    };
    st.store.audit(actor, "remove host", id, &detail).await?;
    tracing::warn!(host = %id, %actor, forced = forced.is_some(), orphaned = removed.orphaned.len(), "Host removed; its certificates are revoked.");
    Ok(removed_host(id, removed))
}

fn removed_host(id: &HostId, removed: Removed) -> HostRemoved {
    HostRemoved {
        id: id.to_string(),
        orphaned_instances: removed.orphaned,
        revoked_certificates: removed.revoked as u64,
        reassigned_baremetal: removed.reassigned_baremetal,
    }
}

async fn existing(st: &AppState, id: &HostId) -> Result<(), HostError> {
    match st.store.get_host(id, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(HostError::NotFound(id.to_string())),
    }
}

/// A page of the certificates the CA issued to host `id`'s agent, newest first.
pub async fn certificates(
    st: &AppState,
    id: &HostId,
    page: &PageRequest<i64>,
) -> Result<HostCertificatePage, HostError> {
    let (rows, total) = st
        .store
        .host_certificates(id, now_ms(), page.fetch(), page.after.as_ref())
        .await?;
    if total == 0 {
        existing(st, id).await?;
    }
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(HostCertificatePage {
        items,
        total,
        next_cursor,
    })
}

/// Revokes every certificate of host `id` (a compromised host), for `actor` and `why`: its
/// agent is refused from its next call.
pub async fn revoke_certificates(
    st: &AppState,
    actor: &str,
    id: &HostId,
    why: &str,
) -> Result<Vec<HostCertificate>, HostError> {
    existing(st, id).await?;
    let recorded = format!("revoked by {actor}: {why}");
    let count = st
        .store
        .revoke_all_host_certificates(id, &recorded, now_ms())
        .await?;
    let detail = format!("{count} revoked: {why}");
    st.store
        .audit(actor, "revoke certificates", id, &detail)
        .await?;
    tracing::warn!(host = %id, count, %actor, "Host certificates revoked.");
    // All of them: a host has a certificate per renewal, a handful a year.
    let (all, _) = st
        .store
        .host_certificates(id, now_ms(), u32::MAX, None)
        .await?;
    Ok(all.into_iter().map(|(_, cert)| cert).collect())
}

/// A one-time token, valid `ttl_ms`, that re-enrolls host `id` (made by `actor`).
pub async fn reenrollment_token(
    st: &AppState,
    actor: &str,
    id: &HostId,
    ttl_ms: i64,
) -> Result<EnrollmentToken, HostError> {
    existing(st, id).await?;
    let description = format!("re-enrollment of {id}");
    let token = tenants::issue_enrollment_token(st, ttl_ms, &description, actor, Some(id)).await?;
    Ok(token)
}

/// Creates cluster `id` (hosts enroll into one), for `actor`.
pub async fn create_cluster(
    st: &AppState,
    actor: &str,
    id: &str,
    description: &str,
) -> Result<Cluster, HostError> {
    if !st.store.create_cluster(id, description).await? {
        return Err(HostError::ClusterExists(id.to_string()));
    }
    st.store.audit(actor, "create cluster", id, "").await?;
    st.store
        .cluster(id)
        .await?
        .ok_or_else(|| HostError::Internal(anyhow::anyhow!("cluster {id} vanished once created")))
}

/// Records an agent's heartbeat (facts, presence, devices), reconciles the host's instances
/// with the domains it reports, and answers what the agent must know.
pub async fn heartbeat(
    st: &AppState,
    id: &HostId,
    hb: &Heartbeat,
) -> Result<HeartbeatAck, HostError> {
    let (state, presence) = st
        .store
        .record_heartbeat(id, hb, now_ms())
        .await?
        .ok_or_else(|| HostError::NotFound(id.to_string()))?;
    st.store.set_host_ipmi(id, hb.facts.ipmi).await?;
    if presence.went_offline {
        tracing::warn!(host = %id, "Agent was offline: three heartbeats missed.");
        st.store
            .audit("coordinator", "agent offline", id, "")
            .await?;
    }
    if presence.came_online {
        tracing::info!(host = %id, "Agent online.");
        st.store
            .audit(&format!("agent:{id}"), "agent online", id, "")
            .await?;
    }
    if let Some(devices) = &hb.devices {
        st.store.record_devices(id, devices, now_ms()).await?;
    }
    reconcile::reconcile(st, id, hb).await?;
    Ok(HeartbeatAck {
        host_id: id.to_string(),
        state,
        owners: st.store.instance_owners(id).await?,
        revoked_coordinator_serials: st.store.revoked_coordinator_serials(now_ms()).await?,
        uplinks: st.store.segment_uplinks().await?,
        leases: st
            .store
            .served_addresses(id)
            .await?
            .into_iter()
            .filter_map(|a| {
                let mac = a.mac.clone()?;
                Some(crate::network::agent_nic(a, mac))
            })
            .collect(),
    })
}

/// Signs a new certificate for host `id`'s agent; the one it replaces is refused after the
/// grace.
pub async fn renew(st: &AppState, id: &HostId, csr_pem: &str) -> Result<RenewResponse, HostError> {
    let ep = endpoint(st, id, now_ms()).await?;
    let ip = ep.ip.parse().map_err(|_| {
        HostError::Internal(anyhow::anyhow!("stored ip {} is not an address", ep.ip))
    })?;
    let cert = certs::sign_agent_csr(st, csr_pem, id, ip)?;
    let grace = i64::try_from(st.settings.renewed_cert_grace.as_millis()).unwrap_or(i64::MAX);
    st.store
        .record_renewal(id, &cert.issued(id), grace, now_ms())
        .await?;
    let detail = format!(
        "serial {}; the one it replaces is refused after the grace",
        cert.serial
    );
    st.store
        .audit(&format!("agent:{id}"), "renew certificate", id, &detail)
        .await?;
    tracing::info!(host = %id, serial = %cert.serial, "Agent certificate renewed.");
    Ok(RenewResponse {
        certificate_pem: cert.pem,
    })
}

async fn endpoint(st: &AppState, id: &HostId, now: i64) -> Result<AgentEndpoint, HostError> {
    st.store
        .agent_endpoint(id, now)
        .await?
        .ok_or_else(|| HostError::NotFound(id.to_string()))
}

/// What host `id`'s agent sees now, asked over mTLS.
pub async fn agent_facts(st: &AppState, id: &HostId) -> Result<AgentFacts, HostError> {
    let ep = endpoint(st, id, now_ms()).await?;
    st.agents.facts(&ep).await.map_err(|err| {
        tracing::warn!(host = %id, error = %err, cause = ?std::error::Error::source(&err), "Agent call failed.");
        HostError::AgentUnreachable {
            id: id.to_string(),
            reason: err.to_string(),
        }
    })
}

/// Which metrics history to fetch, checked.
#[derive(Debug, Clone)]
pub struct MetricsAsk {
    pub names: Vec<HostSeries>,
    /// Where the history starts (ms); all the agent keeps, or an hour of Prometheus, if none.
    pub since: Option<i64>,
    /// Where it comes from; Prometheus when one is configured, else the agent, if none.
    pub source: Option<MetricsSource>,
    pub now: i64,
}

/// Prometheus's range when `since` is not given (an agent gives all it keeps).
const DEFAULT_RANGE_MS: i64 = 3_600_000;

/// The recent history of host `id`'s metrics, from its agent or from Prometheus.
pub async fn metrics(
    st: &AppState,
    id: &HostId,
    ask: &MetricsAsk,
) -> Result<HostMetrics, HostError> {
    let prometheus = st.settings.prometheus.as_ref();
    let source = match ask.source {
        None if prometheus.is_some() => MetricsSource::Prometheus,
        None => MetricsSource::Agent,
        Some(source) => source,
    };
    let ep = endpoint(st, id, ask.now).await?;
    match source {
        MetricsSource::Agent => {
            let names: Vec<&str> = ask.names.iter().map(|n| n.as_str()).collect();
            st.agents
                .metrics_history(&ep, &names.join(","), ask.since)
                .await
                .map_err(|err| {
                    tracing::warn!(host = %id, error = %err.explain(), "Agent metrics call failed.");
                    HostError::AgentUnreachable {
                        id: id.to_string(),
                        reason: err.explain(),
                    }
                })
        }
        MetricsSource::Prometheus => {
            let Some(prometheus) = prometheus else {
                return Err(HostError::invalid(
                    "source",
                    "no Prometheus is configured (prometheus_url)",
                ));
            };
            let since = ask.since.unwrap_or(ask.now - DEFAULT_RANGE_MS);
            prometheus
                .host_metrics(id, &ep.ip, &ask.names, since, ask.now)
                .await
                .map_err(|err| {
                    let cause = std::error::Error::source(&err)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default();
                    tracing::warn!(host = %id, error = %err, "Prometheus query failed.");
                    HostError::PrometheusUnavailable(format!("{err}{cause}"))
                })
        }
    }
}
