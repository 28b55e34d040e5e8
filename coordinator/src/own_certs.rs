//! The coordinator's own certificates: its server certificate (agents and admins connect to
//! it) and its client certificate (it calls agents with it). Made at `init`, rotated by
//! `plinth-coordinator rotate-certs`, and picked up by a running coordinator within seconds.
//! Each is recorded in the store; a rotated-out one is refused by agents after a grace, as
//! they learn from their heartbeat answers.

use crate::agents::AgentClient;
use crate::db::{Database, Store};
use crate::hosts::store::certificates::{CertKind, Issued};
use crate::paths::{DataDir, write_file};
use anyhow::Context;
use plinth_common::timefmt::now_ms;
use plinth_common::tls::{
    Ca, LeafSpec, ReloadableCert, Role, cert_names, cert_not_after, cert_serial,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const LIFETIME: Duration = Duration::from_secs(2 * 365 * 86_400);

/// How often a running coordinator looks for rotated certificate files.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Both certificates with their keys (PEM).
pub struct OwnCerts {
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// A recorded certificate's facts, read from its PEM.
struct Facts {
    serial: String,
    kind: CertKind,
    issued_at: i64,
    expires_at: i64,
}

impl Facts {
    fn of(pem: &str, kind: CertKind) -> anyhow::Result<Facts> {
        let (not_before, not_after) = cert_not_after(pem)?;
        Ok(Facts {
            serial: cert_serial(pem)?,
            kind,
            issued_at: not_before.unix_timestamp().saturating_mul(1000),
            expires_at: not_after.unix_timestamp().saturating_mul(1000),
        })
    }

    fn issued(&self) -> Issued<'_> {
        Issued {
            serial: &self.serial,
            kind: self.kind,
            host_id: None,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

impl OwnCerts {
    /// New keys and certificates: the server's for `ips` and `dns`, the client's with the
    /// coordinator role only.
    pub fn issue(ca: &Ca, ips: Vec<IpAddr>, dns: Vec<String>) -> anyhow::Result<OwnCerts> {
        let mut server = LeafSpec::new("plinth-coordinator", Role::Coordinator, LIFETIME);
        server.ips = ips;
        server.dns_names = dns;
        server.server = true;
        let (server_cert, server_key) = ca.issue_with_new_key(&server)?;
        let mut client = LeafSpec::new("plinth-coordinator", Role::Coordinator, LIFETIME);
        client.client = true;
        let (client_cert, client_key) = ca.issue_with_new_key(&client)?;
        Ok(OwnCerts {
            server_cert,
            server_key,
            client_cert,
            client_key,
        })
    }

    /// Writes them into the data directory: the keys first, so a certificate on disk always
    /// has its key beside it by the time a watcher sees it change.
    pub fn write(&self, dir: &DataDir) -> anyhow::Result<()> {
        write_file(&dir.server_key(), self.server_key.as_bytes(), 0o600)?;
        write_file(&dir.client_key(), self.client_key.as_bytes(), 0o600)?;
        write_file(&dir.server_cert(), self.server_cert.as_bytes(), 0o644)?;
        write_file(&dir.client_cert(), self.client_cert.as_bytes(), 0o644)?;
        Ok(())
    }

    fn facts(&self) -> anyhow::Result<[Facts; 2]> {
        Ok([
            Facts::of(&self.server_cert, CertKind::CoordinatorServer)?,
            Facts::of(&self.client_cert, CertKind::CoordinatorClient)?,
        ])
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Records the certificates in the data directory if the store does not know them yet
/// (every start: a region made before certificates were recorded).
pub async fn record(dir: &DataDir, store: &Store) -> anyhow::Result<()> {
    let facts = [
        Facts::of(&read(&dir.server_cert())?, CertKind::CoordinatorServer)?,
        Facts::of(&read(&dir.client_cert())?, CertKind::CoordinatorClient)?,
    ];
    let issued: Vec<Issued<'_>> = facts.iter().map(Facts::issued).collect();
    store.record_coordinator_certificates(&issued).await?;
    Ok(())
}

/// What a rotation did.
pub struct Rotation {
    pub server_serial: String,
    pub client_serial: String,
    pub revoked: u64,
    /// Unix ms from which agents refuse the old certificates.
    pub refused_from: i64,
}

/// Whether the server certificate on disk names `ip` (an unspecified address, `0.0.0.0` or
/// `::`, is never dialled, so it needs no name).
pub fn server_cert_names(dir: &DataDir, ip: IpAddr) -> anyhow::Result<bool> {
    if ip.is_unspecified() {
        return Ok(true);
    }
    let (ips, _) = cert_names(&read(&dir.server_cert())?)?;
    Ok(ips.contains(&ip))
}

/// Issues new server and client certificates for the same names as the current server
/// certificate plus `extra` (names or IPs), records them, and has the old ones refused after
/// `grace`.
pub async fn rotate(
    dir: &DataDir,
    database: &Database,
    grace: Duration,
    extra: &[String],
) -> anyhow::Result<Rotation> {
    let ca = Ca::load(&read(&dir.ca_cert())?, &read(&dir.ca_key())?)?;
    let (mut ips, mut dns) = cert_names(&read(&dir.server_cert())?)?;
    for name in extra {
        match name.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(name) => dns.push(name.clone()),
            Err(_) => {}
        }
    }
    let store = Store::connect(database, &crate::jobs::Jobs::new()).await?;
    // The current ones are recorded first, so that they are among those revoked.
    record(dir, &store).await?;
    let next = OwnCerts::issue(&ca, ips, dns)?;
    let facts = next.facts()?;
    let issued: Vec<Issued<'_>> = facts.iter().map(Facts::issued).collect();
    let refused_from =
        now_ms().saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
    // Files first: should recording fail, the new certificates are in use and the old ones
    // merely not revoked, never the other way round.
    next.write(dir)?;
    let revoked = store
        .rotate_coordinator_certificates(&issued, refused_from)
        .await?;
    store
        .audit(
            "cli",
            "rotate coordinator certificates",
            "coordinator",
            &format!(
                "new server {} and client {}; {revoked} earlier refused from {}",
                facts[0].serial,
                facts[1].serial,
                plinth_common::timefmt::rfc3339(refused_from)
            ),
        )
        .await?;
    let [server, client] = facts;
    Ok(Rotation {
        server_serial: server.serial,
        client_serial: client.serial,
        revoked,
        refused_from,
    })
}

/// Serves and presents the certificates on disk once they change (a rotation): checks every
/// few seconds until `stop`.
pub async fn watch(
    dir: DataDir,
    server: Arc<ReloadableCert>,
    agents: AgentClient,
    stop: CancellationToken,
) {
    let serial = |path: &std::path::Path| read(path).and_then(|p| Ok(cert_serial(&p)?));
    let (mut server_serial, mut client_serial) = (
        serial(&dir.server_cert()).ok(),
        serial(&dir.client_cert()).ok(),
    );
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now_server = serial(&dir.server_cert()).ok();
        if now_server.is_some() && now_server != server_serial {
            match read(&dir.server_key()).and_then(|key| {
                let cert = read(&dir.server_cert())?;
                Ok(server.replace(&cert, &key)?)
            }) {
                Ok(()) => {
                    tracing::info!(serial = ?now_server, "Serving the rotated server certificate.");
                    server_serial = now_server;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Could not load the rotated server certificate; trying again.")
                }
            }
        }
        let now_client = serial(&dir.client_cert()).ok();
        if now_client.is_some() && now_client != client_serial {
            match read(&dir.client_key()).and_then(|key| {
                let cert = read(&dir.client_cert())?;
                Ok(agents.reload(&cert, &key)?)
            }) {
                Ok(()) => {
                    tracing::info!(serial = ?now_client, "Calling agents with the rotated client certificate.");
                    client_serial = now_client;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "Could not load the rotated client certificate; trying again.")
                }
            }
        }
    }
}
