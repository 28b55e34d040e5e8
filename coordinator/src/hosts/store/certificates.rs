//! Certificates the region CA issued, and which of them are still accepted. An agent's
//! certificate is accepted on the agent endpoints only while it is recorded for a host that
//! exists and is not revoked; the coordinator's own certificates are recorded so that agents can
//! be told which of them were rotated out. Every revocation also goes into the in-memory
//! [`Revocations`] the coordinator's client to agents checks servers against.

use crate::db::{Keyed, Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::{CertificateStatus, HostCertificate};
use plinth_common::timefmt::rfc3339;

/// What the certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Agent,
    CoordinatorServer,
    CoordinatorClient,
}

impl CertKind {
    fn as_str(self) -> &'static str {
        match self {
            CertKind::Agent => "agent",
            CertKind::CoordinatorServer => "coordinator-server",
            CertKind::CoordinatorClient => "coordinator-client",
        }
    }
}

/// A certificate as issued.
#[derive(Debug, Clone)]
pub struct Issued<'a> {
    pub serial: &'a str,
    pub kind: CertKind,
    pub host_id: Option<&'a str>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Whether an agent's certificate is accepted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Current,
    /// Revoked (in effect), with the reason recorded.
    Revoked(String),
    /// Not a certificate of this host (or of any): never issued, or issued for another.
    Unknown,
    /// The host it was issued for no longer exists.
    HostRemoved,
}

fn host_certificate(row: &crate::db::Row, now: i64) -> Result<HostCertificate, StoreError> {
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let status = match revoked_at {
        Some(at) if at <= now => CertificateStatus::Revoked,
        Some(_) => CertificateStatus::Revoking,
        None if expires_at <= now => CertificateStatus::Expired,
        None => CertificateStatus::Current,
    };
    Ok(HostCertificate {
        serial: row.try_get("serial")?,
        status,
        issued_at: rfc3339(row.try_get("issued_at")?),
        expires_at: rfc3339(expires_at),
        revoked_at: revoked_at.map(rfc3339),
        reason: row.try_get("reason")?,
    })
}

impl Store {
    /// Records an issued certificate inside the caller's transaction.
    pub(crate) async fn record_certificate(
        tx: &mut crate::db::Tx,
        c: &Issued<'_>,
    ) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO certificates (serial, kind, host_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.serial)
        .bind(c.kind.as_str())
        .bind(c.host_id)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Revokes, from `from` on, every certificate of `host` not yet revoked by then but
    /// `keep`; returns the serials. The in-memory set follows once the caller has committed
    /// ([`Store::note_revoked`]).
    pub(crate) async fn revoke_host_certificates(
        tx: &mut crate::db::Tx,
        host: &str,
        keep: Option<&str>,
        from: i64,
        reason: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = crate::db::query(
            "UPDATE certificates SET revoked_at = $1, reason = $2 \
             WHERE host_id = $3 AND kind = 'agent' AND (revoked_at IS NULL OR revoked_at > $4) \
                AND ($5 IS NULL OR serial <> $6) \
             RETURNING serial",
        )
        .bind(from)
        .bind(reason)
        .bind(host)
        .bind(from)
        .bind(keep)
        .bind(keep)
        .fetch_all(&mut *tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("serial")?, from)))
            .collect()
    }

    /// Adds committed revocations to the set the client to agents checks.
    pub(crate) fn note_revoked(&self, revoked: &[(String, i64)]) {
        for (serial, from) in revoked {
            self.revoked.revoke(serial, *from);
        }
        if !revoked.is_empty() {
            self.note_for_peers(crate::db::follow::Note::Revoked);
        }
    }

    /// Loads every revoked agent certificate that has not expired (at start-up).
    pub(crate) async fn load_revocations(&self, now: i64) -> Result<(), StoreError> {
        let rows = crate::db::query(
            "SELECT serial, revoked_at FROM certificates \
             WHERE kind = 'agent' AND revoked_at IS NOT NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let all = rows
            .iter()
            .map(|r| Ok((r.try_get("serial")?, r.try_get("revoked_at")?)))
            .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
        self.revoked.replace(all);
        Ok(())
    }

    /// Whether the agent certificate `serial`, presented for `host`, is accepted at `now`.
    /// A host that enrolled before certificates were recorded has none on record: the first
    /// certificate it presents (signed by the CA, naming it) is recorded as its current one,
    /// and from then on only recorded ones are accepted.
    pub async fn agent_certificate_standing(
        &self,
        host: &str,
        serial: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Standing, StoreError> {
        let row = crate::db::query(
            "SELECT c.host_id, c.revoked_at, c.reason, h.id AS host FROM certificates c \
             LEFT JOIN hosts h ON h.id = c.host_id WHERE c.serial = $1 AND c.kind = 'agent'",
        )
        .bind(serial)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            let owner: Option<String> = row.try_get("host_id")?;
            if owner.as_deref() != Some(host) {
                return Ok(Standing::Unknown);
            }
            if row.try_get::<Option<String>, _>("host")?.is_none() {
                return Ok(Standing::HostRemoved);
            }
            return Ok(match row.try_get::<Option<i64>, _>("revoked_at")? {
                Some(at) if at <= now => Standing::Revoked(
                    row.try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                ),
                _ => Standing::Current,
            });
        }
        self.adopt_legacy_certificate(host, serial, expires_at, now)
            .await
    }

    async fn adopt_legacy_certificate(
        &self,
        host: &str,
        serial: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Standing, StoreError> {
        let mut tx = self.write().await?;
        let exists = crate::db::query("SELECT 1 FROM hosts WHERE id = $1")
            .bind(host)
            .fetch_optional(&mut tx)
            .await?
            .is_some();
        if !exists {
            return Ok(Standing::HostRemoved);
        }
        let recorded: i64 =
            crate::db::query_scalar("SELECT COUNT(*) FROM certificates WHERE host_id = $1")
                .bind(host)
                .fetch_one(&mut tx)
                .await?;
        if recorded > 0 {
            return Ok(Standing::Unknown);
        }
        let issued = Issued {
            serial,
            kind: CertKind::Agent,
            host_id: Some(host),
            issued_at: now,
            expires_at,
        };
        Self::record_certificate(&mut tx, &issued).await?;
        tx.commit().await?;
        tracing::warn!(
            host,
            serial,
            "Recorded the certificate of a host enrolled before certificates were tracked; re-enroll it to be sure it is the host's own."
        );
        Ok(Standing::Current)
    }

    /// A page of a host's certificates (newest first, after `after` (issued_at, serial), each
    /// beside that place) and how many it has in all.
    pub async fn host_certificates(
        &self,
        host: &str,
        now: i64,
        limit: u32,
        after: Option<&(i64, String)>,
    ) -> Result<(Vec<Keyed<i64, HostCertificate>>, u64), StoreError> {
        const WHERE: &str = " WHERE kind = 'agent' AND host_id = ";
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM certificates");
        count.push(WHERE).push_bind(host.to_string());
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;
        let mut query = QueryBuilder::new(
            "SELECT serial, issued_at, expires_at, revoked_at, reason FROM certificates",
        );
        query.push(WHERE).push_bind(host.to_string());
        push_after(&mut query, "issued_at", "serial", Order::Desc, after);
        push_order(&mut query, "issued_at", "serial", Order::Desc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| {
                let cert = host_certificate(r, now)?;
                Ok(((r.try_get("issued_at")?, cert.serial.clone()), cert))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }

    /// Revokes all of a host's certificates at once (the host stays; it can re-enroll).
    /// Returns how many were revoked.
    pub async fn revoke_all_host_certificates(
        &self,
        host: &str,
        reason: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let revoked = Self::revoke_host_certificates(&mut tx, host, None, now, reason).await?;
        tx.commit().await?;
        self.note_revoked(&revoked);
        Ok(revoked.len())
    }

    /// Records a renewal: the new certificate current, the others of the host refused after
    /// `grace_ms`. The host's certificate expiry follows the new one.
    pub async fn record_renewal(
        &self,
        host: &str,
        issued: &Issued<'_>,
        grace_ms: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        Self::record_certificate(&mut tx, issued).await?;
        let revoked = Self::revoke_host_certificates(
            &mut tx,
            host,
            Some(issued.serial),
            now.saturating_add(grace_ms),
            "renewed",
        )
        .await?;
        crate::db::query("UPDATE hosts SET cert_expires_at = $1 WHERE id = $2")
            .bind(issued.expires_at)
            .bind(host)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.note_revoked(&revoked);
        Ok(())
    }

    /// Records the coordinator's own certificates if they are not yet (at start-up: regions
    /// made before certificates were tracked, or a hand-made certificate).
    pub async fn record_coordinator_certificates(
        &self,
        certs: &[Issued<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for c in certs {
            crate::db::query(
                "INSERT INTO certificates (serial, kind, host_id, issued_at, expires_at) \
                 VALUES ($1, $2, NULL, $3, $4) ON CONFLICT (serial) DO NOTHING",
            )
            .bind(c.serial)
            .bind(c.kind.as_str())
            .bind(c.issued_at)
            .bind(c.expires_at)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records rotated coordinator certificates: the new ones, and every earlier one refused
    /// from `from` on. Returns how many were revoked.
    pub async fn rotate_coordinator_certificates(
        &self,
        new: &[Issued<'_>],
        from: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut keep = Vec::new();
        for c in new {
            Self::record_certificate(&mut tx, c).await?;
            keep.push(c.serial);
        }
        let mut revoked = 0;
        let rows = crate::db::query(
            "SELECT serial FROM certificates WHERE kind <> 'agent' \
             AND (revoked_at IS NULL OR revoked_at > $1)",
        )
        .bind(from)
        .fetch_all(&mut tx)
        .await?;
        for row in rows {
            let serial: String = row.try_get("serial")?;
            if keep.contains(&serial.as_str()) {
                continue;
            }
            revoked += crate::db::query(
                "UPDATE certificates SET revoked_at = $1, reason = 'rotated' WHERE serial = $2",
            )
            .bind(from)
            .bind(&serial)
            .execute(&mut tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(revoked)
    }

    /// The coordinator's certificates agents must refuse now: revoked and not yet expired.
    pub async fn revoked_coordinator_serials(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = crate::db::query(
            "SELECT serial FROM certificates WHERE kind <> 'agent' \
             AND revoked_at IS NOT NULL AND revoked_at <= $1 AND expires_at > $2 ORDER BY serial",
        )
        .bind(now)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("serial")?))
            .collect::<Result<_, StoreError>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_hosts;

    fn agent_cert<'a>(serial: &'a str, host: &'a str, at: i64) -> Issued<'a> {
        Issued {
            serial,
            kind: CertKind::Agent,
            host_id: Some(host),
            issued_at: at,
            expires_at: at + 1_000_000,
        }
    }

    crate::db::store_test! {
    async fn renewal_revokes_the_replaced_certificate_after_the_grace(store, _dir) -> anyhow::Result<()> {
        test_hosts(&store, 2, 8, 1 << 30).await?;
        // A host from before certificates were tracked: its first certificate is adopted,
        // and after that no other unrecorded one is.
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "aa", 2_000_000, 10)
                .await?,
            Standing::Current
        );
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "bb", 2_000_000, 10)
                .await?,
            Standing::Unknown
        );
        // Presented for another host than it names: unknown, whatever its state.
        assert_eq!(
            store
                .agent_certificate_standing("host-2", "aa", 2_000_000, 10)
                .await?,
            Standing::Unknown
        );

        store
            .record_renewal("host-1", &agent_cert("cc", "host-1", 100), 50, 100)
            .await?;
        let at = |serial: &'static str, now: i64| {
            let store = store.clone();
            async move {
                store
                    .agent_certificate_standing("host-1", serial, 2_000_000, now)
                    .await
            }
        };
        assert_eq!(at("aa", 149).await?, Standing::Current, "inside the grace");
        assert_eq!(at("aa", 150).await?, Standing::Revoked("renewed".into()));
        assert_eq!(at("cc", 10_000).await?, Standing::Current);
        assert!(!store.revoked.is_revoked("aa", 149));
        assert!(store.revoked.is_revoked("aa", 150));

        let (certs, total) = store.host_certificates("host-1", 150, 10, None).await?;
        assert_eq!(total, 2);
        let status: Vec<_> = certs
            .iter()
            .map(|(_, c)| (c.serial.as_str(), c.status))
            .collect();
        assert_eq!(
            status,
            vec![
                ("cc", CertificateStatus::Current),
                ("aa", CertificateStatus::Revoked)
            ]
        );

        assert_eq!(
            store
                .revoke_all_host_certificates("host-1", "compromised", 200)
                .await?,
            1
        );
        assert_eq!(
            at("cc", 200).await?,
            Standing::Revoked("compromised".into())
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn rotated_coordinator_certificates_are_listed_once_in_effect(store, _dir) -> anyhow::Result<()> {
        let old = Issued {
            serial: "01",
            kind: CertKind::CoordinatorClient,
            host_id: None,
            issued_at: 0,
            expires_at: 1_000,
        };
        store
            .record_coordinator_certificates(std::slice::from_ref(&old))
            .await?;
        // Recording the same certificate again (every start) changes nothing.
        store
            .record_coordinator_certificates(std::slice::from_ref(&old))
            .await?;
        let new = Issued {
            serial: "02",
            ..old.clone()
        };
        assert_eq!(store.rotate_coordinator_certificates(&[new], 100).await?, 1);
        assert!(store.revoked_coordinator_serials(99).await?.is_empty());
        assert_eq!(store.revoked_coordinator_serials(100).await?, vec!["01"]);
        // Once it has expired there is nothing to refuse.
        assert!(store.revoked_coordinator_serials(1_000).await?.is_empty());
        Ok(())
    }
    }

    crate::db::store_test! {
    /// A host's certificates newest first, ties by serial, through one issued between pages;
    /// another host's never.
    async fn certificates_page_newest_first_through_inserts(store, _dir) -> anyhow::Result<()> {
        let cert = |serial: &'static str, host: &'static str, at: i64| {
            let store = &store;
            async move {
                crate::db::query(
                    "INSERT INTO certificates (serial, kind, host_id, issued_at, expires_at) \
                     VALUES ($1, 'agent', $2, $3, 10000)",
                )
                .bind(serial)
                .bind(host)
                .bind(at)
                .execute(store.pool())
                .await
                .map(drop)
                .map_err(StoreError::from)
            }
        };
        for (serial, at) in [("01", 10), ("02", 30), ("03", 30), ("04", 20)] {
            cert(serial, "host-1", at).await?;
        }
        cert("99", "host-2", 25).await?;
        let read = |limit, after: Option<(i64, String)>| {
            let store = &store;
            async move {
                store
                    .host_certificates("host-1", 0, limit, after.as_ref())
                    .await
            }
        };
        let between = || async {
            cert("05", "host-1", 40).await?;
            cert("06", "host-1", 20).await
        };
        let (places, total) = crate::db::test_walk(read, between, crate::db::test_desc).await?;
        let serials: Vec<&str> = places.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!((serials, total), (vec!["02", "03", "04", "06", "01"], 6));
        Ok(())
    }
    }
}
