//! Hosts joining and leaving the region. An enrollment creates an identity and never reuses one:
//! a plain token makes a new host, and an address another host holds is refused; only a token
//! bound to a host (`plinth hosts reenroll`) gives an existing host a new certificate, revoking
//! its earlier ones. Removing a host revokes its certificates with it.

use crate::db::{Store, StoreError};
use crate::hosts::store::NewHost;
use crate::hosts::store::certificates::Issued;
use plinth_common::instance::InstanceState;

/// What an enrollment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// The host is recorded with its new certificate; `revoked` earlier ones were revoked.
    Done { revoked: usize },
    /// The token was used or expired meanwhile.
    TokenTaken,
    /// Another host holds the address.
    AddressHeld { host: String },
    /// The host a re-enrollment token was for was removed.
    HostRemoved,
    /// A re-enrollment named another cluster than the host's.
    OtherCluster { cluster: String },
    /// A re-enrollment came from another address than the host's.
    OtherAddress { address: String },
}

/// Why a host could not be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveRefused {
    NotFound,
    /// Instances are placed on it (or moving to it) and the removal was not forced.
    HasInstances {
        instances: Vec<String>,
    },
    /// A job works on these instances (creating, migrating, ...): wait until they settle.
    Busy {
        instances: Vec<(String, InstanceState)>,
    },
    /// A drain of the host is running.
    Draining,
}

/// What a removal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub orphaned: Vec<String>,
    pub revoked: usize,
    pub reassigned_baremetal: u64,
}

impl Store {
    /// Takes the enrollment token and records the host with its certificate, in one
    /// transaction. `bound` is the host a re-enrollment token is for.
    pub async fn enroll_host(
        &self,
        token_id: &str,
        h: &NewHost<'_>,
        bound: Option<&str>,
        cert: &Issued<'_>,
    ) -> Result<Enrolled, StoreError> {
        let mut tx = self.write().await?;
        let taken = crate::db::query(
            "UPDATE enrollment_tokens SET used_at = $1, used_by_host = $2 \
             WHERE id = $3 AND used_at IS NULL AND expires_at > $4 AND host_id IS NOT DISTINCT FROM $5",
        )
        .bind(h.now)
        .bind(h.id)
        .bind(token_id)
        .bind(h.now)
        .bind(bound)
        .execute(&mut tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Ok(Enrolled::TokenTaken);
        }
        let holder: Option<String> = crate::db::query_scalar("SELECT id FROM hosts WHERE ip = $1")
            .bind(h.ip)
            .fetch_optional(&mut tx)
            .await?;
        if let Some(host) = holder.filter(|holder| Some(holder.as_str()) != bound) {
            return Ok(Enrolled::AddressHeld { host });
        }
        let mut revoked = Vec::new();
        if let Some(host) = bound {
            let row = crate::db::query("SELECT cluster_id, ip FROM hosts WHERE id = $1")
                .bind(host)
                .fetch_optional(&mut tx)
                .await?
                .map(|row| Ok::<_, sqlx::Error>((row.try_get("cluster_id")?, row.try_get("ip")?)))
                .transpose()?;
            match row {
                None => return Ok(Enrolled::HostRemoved),
                Some((cluster, _)) if cluster != h.cluster_id => {
                    return Ok(Enrolled::OtherCluster { cluster });
                }
                Some((_, address)) if address != h.ip => {
                    return Ok(Enrolled::OtherAddress { address });
                }
                Some(_) => {}
            }
            revoked =
                Self::revoke_host_certificates(&mut tx, host, None, h.now, "re-enrolled").await?;
        }
        self.upsert_host(&mut tx, h, "", 0, 0).await?;
        Self::record_certificate(&mut tx, cert).await?;
        // A new host starts `available`; a re-enrollment keeps the state and gets a new
        // certificate (and what the agent calls itself now).
        let data = match bound {
            None => serde_json::json!({ "created": true,
                "state": plinth_common::host::HostState::Available.as_str(),
                "cluster_id": h.cluster_id, "ip": h.ip, "hostname": h.hostname }),
            Some(_) => serde_json::json!({ "reenrolled": true, "hostname": h.hostname }),
        };
        crate::events::record_change(&mut tx, crate::events::EventType::Host, h.id, data).await?;
        tx.commit().await?;
        self.events_committed();
        self.note_revoked(&revoked);
        self.reindex_host(h.id).await?;
        Ok(Enrolled::Done {
            revoked: revoked.len(),
        })
    }

    /// Removes a host and revokes its certificates. Without `forced` (a reason) only a host no
    /// instance is placed on; with it, the instances on it end in `error` with that reason
    /// and lose their placement (their disks were on the host). Never while a drain of the
    /// host runs or a job works on one of its instances.
    pub async fn remove_host(
        &self,
        id: &str,
        forced: Option<&str>,
        now: i64,
    ) -> Result<Result<Removed, RemoveRefused>, StoreError> {
        let mut tx = self.write().await?;
        let state: Option<String> =
            crate::db::query_scalar("SELECT state FROM hosts WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut tx)
                .await?;
        let Some(state) = state else {
            return Ok(Err(RemoveRefused::NotFound));
        };
        let draining =
            crate::db::query("SELECT 1 FROM drains WHERE host_id = $1 AND ended_at IS NULL")
                .bind(id)
                .fetch_optional(&mut tx)
                .await?
                .is_some();
        if draining || state == plinth_common::host::HostState::EnteringMaintenance.as_str() {
            return Ok(Err(RemoveRefused::Draining));
        }
        let rows = crate::db::query(
            "SELECT id, state FROM instances WHERE host_id = $1 OR migrating_to = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut tx)
        .await?;
        let mut placed = Vec::new();
        let mut busy = Vec::new();
        for row in &rows {
            let instance: String = row.try_get("id")?;
            let text: String = row.try_get("state")?;
            let state = InstanceState::parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("instance state '{text}'")))?;
            if !state.is_settled() {
                busy.push((instance.clone(), state));
            }
            placed.push(instance);
        }
        if !busy.is_empty() {
            return Ok(Err(RemoveRefused::Busy { instances: busy }));
        }
        let Some(reason) = forced.or(placed.is_empty().then_some("")) else {
            return Ok(Err(RemoveRefused::HasInstances { instances: placed }));
        };
        if !placed.is_empty() {
            crate::db::query("DELETE FROM device_assignments WHERE host_id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
            let reason = format!("its host {id} was removed: {reason}");
            crate::instances::store::state::fail_all_on_removed_host(&mut tx, id, &reason, now)
                .await?;
        }
        let reassigned_baremetal =
            crate::db::query("UPDATE baremetal SET agent_host_id = NULL WHERE agent_host_id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?
                .rows_affected();
        crate::db::query(
            "UPDATE enrollment_tokens SET expires_at = $1 WHERE host_id = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut tx)
        .await?;
        // The drain reports of the host go with it (the operations stay).
        crate::db::query("DELETE FROM drains WHERE host_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let revoked =
            Self::revoke_host_certificates(&mut tx, id, None, now, "host removed").await?;
        crate::db::query("DELETE FROM hosts WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let data = serde_json::json!({ "deleted": true, "orphaned": placed });
        crate::events::record_change(&mut tx, crate::events::EventType::Host, id, data).await?;
        tx.commit().await?;
        self.events_committed();
        self.note_revoked(&revoked);
        self.host_index().remove(id);
        self.note_for_peers(crate::db::follow::Note::Host(id.to_string()));
        Ok(Ok(Removed {
            orphaned: placed,
            revoked: revoked.len(),
            reassigned_baremetal,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_hosts;
    use crate::hosts::store::certificates::{CertKind, Standing};

    fn cert<'a>(serial: &'a str, host: &'a str) -> Issued<'a> {
        Issued {
            serial,
            kind: CertKind::Agent,
            host_id: Some(host),
            issued_at: 1,
            expires_at: 1_000_000,
        }
    }

    fn host<'a>(id: &'a str, ip: &'a str, cluster: &'a str) -> NewHost<'a> {
        NewHost {
            id,
            ip,
            hostname: id,
            cluster_id: cluster,
            cert_expires_at: 1_000_000,
            now: 10,
        }
    }

    async fn token(store: &Store, id: &str, bound: Option<&str>) -> Result<(), StoreError> {
        store
            .insert_enrollment_token(id, "h", "", 0, 1_000, bound)
            .await
    }

    crate::db::store_test! {
    async fn an_address_is_one_hosts_and_reenrollment_revokes(store, _dir) -> anyhow::Result<()> {
        test_hosts(&store, 1, 8, 1 << 30).await?;
        token(&store, "enr-1", None).await?;
        // host-1 holds 10.0.0.1: a plain token cannot take it over.
        let taken = store
            .enroll_host(
                "enr-1",
                &host("host-x", "10.0.0.1", "az1"),
                None,
                &cert("01", "host-x"),
            )
            .await?;
        assert_eq!(
            taken,
            Enrolled::AddressHeld {
                host: "host-1".into()
            }
        );
        // Nothing was used: the token enrolls a new address.
        let new = store
            .enroll_host(
                "enr-1",
                &host("host-x", "10.0.0.9", "az1"),
                None,
                &cert("01", "host-x"),
            )
            .await?;
        assert_eq!(new, Enrolled::Done { revoked: 0 });

        // A token bound to host-1 is for host-1 only, at its own address.
        token(&store, "enr-2", Some("host-1")).await?;
        let other = store
            .enroll_host(
                "enr-2",
                &host("host-x", "10.0.0.9", "az1"),
                None,
                &cert("02", "host-x"),
            )
            .await?;
        assert_eq!(
            other,
            Enrolled::TokenTaken,
            "a bound token used as a plain one"
        );
        let held = store
            .enroll_host(
                "enr-2",
                &host("host-1", "10.0.0.9", "az1"),
                Some("host-1"),
                &cert("02", "host-1"),
            )
            .await?;
        assert_eq!(
            held,
            Enrolled::AddressHeld {
                host: "host-x".into()
            }
        );
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "00", 1_000_000, 10)
                .await?,
            Standing::Current,
            "adopted: host-1 enrolled before certificates were recorded"
        );
        let done = store
            .enroll_host(
                "enr-2",
                &host("host-1", "10.0.0.1", "az1"),
                Some("host-1"),
                &cert("02", "host-1"),
            )
            .await?;
        assert_eq!(done, Enrolled::Done { revoked: 1 });
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "00", 1_000_000, 10)
                .await?,
            Standing::Revoked("re-enrolled".into())
        );
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "02", 1_000_000, 10)
                .await?,
            Standing::Current
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn only_an_empty_host_is_removed_unless_forced(store, _dir) -> anyhow::Result<()> {
        test_hosts(&store, 2, 8, 1 << 30).await?;
        crate::db::test_image(&store, "img-1").await?;
        store.create_tenant("ten-1", "t@example.com", "t").await?;
        crate::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, host_id, image_id, vcpus, \
                memory_bytes, disk_bytes, state, search_text, created_at, updated_at) \
             VALUES ('ins-1', 'a', 'vm', 'ten-1', 'host-1', 'img-1', 1, 1, 1, 'running', '', 0, 0), \
                    ('ins-2', 'b', 'vm', 'ten-1', 'host-2', 'img-1', 1, 1, 1, 'creating', '', 0, 0)",
        )
        .execute(store.pool())
        .await?;
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "aa", 1_000_000, 10)
                .await?,
            Standing::Current
        );

        assert_eq!(
            store.remove_host("host-1", None, 20).await?,
            Err(RemoveRefused::HasInstances {
                instances: vec!["ins-1".into()]
            })
        );
        assert_eq!(
            store.remove_host("host-2", Some("dead"), 20).await?,
            Err(RemoveRefused::Busy {
                instances: vec![("ins-2".into(), InstanceState::Creating)]
            })
        );
        let removed = store.remove_host("host-1", Some("disk died"), 20).await?;
        assert_eq!(
            removed,
            Ok(Removed {
                orphaned: vec!["ins-1".into()],
                revoked: 1,
                reassigned_baremetal: 0
            })
        );
        let row =
            crate::db::query("SELECT state, state_reason, host_id FROM instances WHERE id = 'ins-1'")
                .fetch_one(store.pool())
                .await?;
        let (state, reason, placed): (String, String, Option<String>) = (
            row.try_get("state")?,
            row.try_get("state_reason")?,
            row.try_get("host_id")?,
        );
        assert_eq!(
            (state.as_str(), reason.as_str(), placed),
            ("error", "its host host-1 was removed: disk died", None)
        );
        assert_eq!(
            store
                .agent_certificate_standing("host-1", "aa", 1_000_000, 30)
                .await?,
            Standing::HostRemoved
        );
        assert!(store.revocations().is_revoked("aa", 30));
        assert_eq!(
            store.remove_host("host-1", None, 30).await?,
            Err(RemoveRefused::NotFound)
        );
        assert_eq!(store.placement_candidates(30).len(), 1);
        Ok(())
    }
    }
}
