//! The lease's SQL: one row, `job_lease`, taken when free or expired and renewed by its
//! holder, all on the database's clock; and the `coordinators` table of heartbeats.

use crate::db::{Store, StoreError, Tx, query, query_scalar};

/// How a coordinator asks for the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Keep the term at this epoch if it is still this coordinator's and unexpired, else
    /// take the lease if it is free or expired (a new term).
    Renew(Option<i64>),
    /// Take it whoever holds it: a SQLite store has one coordinator, the one opening it.
    Force,
}

/// The epoch in the lease now (read inside a write transaction, under the writer lock).
pub(crate) async fn lease_epoch(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(
        query_scalar::<i64>("SELECT epoch FROM job_lease WHERE name = 'jobs'")
            .fetch_one(tx)
            .await?,
    )
}

/// The channel on which API coordinators tell the lease's holder that they wrote a job.
const JOBS_CHANNEL: &str = "plinth_jobs";

/// A row of the `coordinators` table, with how long ago it beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRow {
    pub id: String,
    pub address: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub age_ms: i64,
}

impl Store {
    /// Tells the lease's holder (on PostgreSQL) that a job waits in the store.
    pub async fn notify_jobs(&self) -> Result<(), StoreError> {
        if let crate::db::Pool::Postgres(pool) = self.pool() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(JOBS_CHANNEL)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A connection that hears [`Store::notify_jobs`] (on PostgreSQL; none on SQLite, whose
    /// one coordinator writes and runs its jobs itself).
    pub async fn jobs_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        let crate::db::Pool::Postgres(pool) = self.pool() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        Ok(Some(listener))
    }

    /// Takes or renews the job lease for `me` for `ttl_ms` from the database's now: answers
    /// the epoch of the term this coordinator holds, or none when another holds an
    /// unexpired lease. A new term (taken, or renewed too late) has a higher epoch than any
    /// before.
    pub async fn take_job_lease(
        &self,
        me: &str,
        ask: Ask,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = self.dialect().now_ms();
        let (held, force) = match ask {
            Ask::Renew(held) => (held.unwrap_or(-1), false),
            Ask::Force => (-1, true),
        };
        let mut tx = self.write().await?;
        let epoch = query_scalar::<i64>(&format!(
            "UPDATE job_lease SET \
                 epoch = CASE WHEN holder = $1 AND epoch = $2 AND expires_at >= {now} \
                     THEN epoch ELSE epoch + 1 END, \
                 holder = $1, expires_at = {now} + $3 \
             WHERE name = 'jobs' AND ($4 = 1 OR holder IS NULL OR holder = $1 \
                 OR expires_at < {now}) \
             RETURNING epoch"
        ))
        .bind(me)
        .bind(held)
        .bind(ttl_ms)
        .bind(i64::from(force))
        .fetch_optional(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(epoch)
    }

    /// Gives the lease up at once (a graceful stop), so that another coordinator need not
    /// wait for it to expire; only the term that holds it can.
    pub async fn release_job_lease(&self, me: &str, epoch: i64) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = query(
            "UPDATE job_lease SET holder = NULL, expires_at = 0 \
             WHERE name = 'jobs' AND holder = $1 AND epoch = $2",
        )
        .bind(me)
        .bind(epoch)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds the lease now, at which epoch, and for how long yet (ms, on the database's
    /// clock; negative once expired).
    pub async fn job_lease(&self) -> Result<(Option<String>, i64, i64), StoreError> {
        let now = self.dialect().now_ms();
        let row = query(&format!(
            "SELECT holder, epoch, expires_at - {now} AS left_ms FROM job_lease WHERE name = 'jobs'"
        ))
        .fetch_one(self.pool())
        .await?;
        Ok((
            row.try_get("holder")?,
            row.try_get("epoch")?,
            row.try_get("left_ms")?,
        ))
    }

    /// Records that coordinator `me` (serving at `address`) is alive, on the database's clock.
    pub async fn coordinator_heartbeat(&self, me: &str, address: &str) -> Result<(), StoreError> {
        let now = self.dialect().now_ms();
        query(&format!(
            "INSERT INTO coordinators (id, address, started_at, heartbeat_at) \
             VALUES ($1, $2, {now}, {now}) \
             ON CONFLICT (id) DO UPDATE SET address = $3, heartbeat_at = {now}"
        ))
        .bind(me)
        .bind(address)
        .bind(address)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A coordinator that stopped: it is no longer listed.
    pub async fn remove_coordinator(&self, me: &str) -> Result<(), StoreError> {
        query("DELETE FROM coordinators WHERE id = $1")
            .bind(me)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every coordinator that has not stopped: (id, address, started_at, heartbeat_at, ms
    /// since that heartbeat on the database's clock), by id.
    pub async fn coordinators(&self) -> Result<Vec<CoordinatorRow>, StoreError> {
        let now = self.dialect().now_ms();
        let rows = query(&format!(
            "SELECT id, address, started_at, heartbeat_at, {now} - heartbeat_at AS age_ms \
             FROM coordinators ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CoordinatorRow {
                    id: r.try_get("id")?,
                    address: r.try_get("address")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    age_ms: r.try_get("age_ms")?,
                })
            })
            .collect()
    }

    /// The coordinators that beat within `within_ms`, by id, with their addresses.
    pub async fn live_coordinators(
        &self,
        within_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let now = self.dialect().now_ms();
        let rows = query(&format!(
            "SELECT id, address FROM coordinators WHERE heartbeat_at >= {now} - $1 ORDER BY id"
        ))
        .bind(within_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("address")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Jobs;

    crate::db::store_test! {
        /// A free lease is taken at epoch 1 and renewed at the same epoch; another coordinator
        /// cannot take it while it lasts, and takes it at a higher epoch once it expired.
        async fn the_lease_is_held_by_one_at_a_time(store, _dir) -> Result<(), StoreError> {
            assert_eq!(store.take_job_lease("a", Ask::Renew(None), 60_000).await?, Some(1));
            assert_eq!(store.take_job_lease("a", Ask::Renew(Some(1)), 60_000).await?, Some(1));
            assert_eq!(store.take_job_lease("b", Ask::Renew(None), 60_000).await?, None);
            let (holder, epoch, left) = store.job_lease().await?;
            assert_eq!((holder.as_deref(), epoch), (Some("a"), 1));
            assert!(left > 0 && left <= 60_000, "{left}");
            // "a" renews with a lease of no time left: expired at once.
            assert_eq!(store.take_job_lease("a", Ask::Renew(Some(1)), -1).await?, Some(1));
            assert_eq!(store.take_job_lease("b", Ask::Renew(None), 60_000).await?, Some(2));
            // "a" comes back: its term is over; it cannot renew what "b" holds.
            assert_eq!(store.take_job_lease("a", Ask::Renew(Some(1)), 60_000).await?, None);
            Ok(())
        }
    }

    crate::db::store_test! {
        /// A holder that comes back after its lease expired (nobody took it) starts a new term;
        /// a restarted coordinator (no term of its own) takes its old lease at a new epoch.
        async fn a_late_renewal_is_a_new_term(store, _dir) -> Result<(), StoreError> {
            assert_eq!(store.take_job_lease("a", Ask::Renew(None), -1).await?, Some(1));
            assert_eq!(store.take_job_lease("a", Ask::Renew(Some(1)), 60_000).await?, Some(2));
            assert_eq!(store.take_job_lease("a", Ask::Renew(None), 60_000).await?, Some(3));
            assert_eq!(store.take_job_lease("z", Ask::Force, 60_000).await?, Some(4));
            Ok(())
        }
    }

    crate::db::store_test! {
        /// Released, the lease is free at once; only its term can release it.
        async fn a_released_lease_is_free(store, _dir) -> Result<(), StoreError> {
            assert_eq!(store.take_job_lease("a", Ask::Renew(None), 60_000).await?, Some(1));
            assert!(!store.release_job_lease("b", 1).await?);
            assert!(!store.release_job_lease("a", 0).await?);
            assert!(store.release_job_lease("a", 1).await?);
            assert_eq!(store.take_job_lease("b", Ask::Renew(None), 60_000).await?, Some(2));
            Ok(())
        }
    }

    crate::db::store_test! {
        /// A job's write transaction is refused once its term's epoch is not the lease's: the
        /// fence holds in the store, whatever the job believes.
        async fn a_job_of_an_ended_term_cannot_write(store, _dir) -> Result<(), StoreError> {
            let jobs = Jobs::new();
            let epoch = store.take_job_lease("a", Ask::Renew(None), 60_000).await?.unwrap_or(0);
            let write = |store: Store| async move {
                let tx = store.write().await?;
                tx.commit().await?;
                Ok::<(), StoreError>(())
            };
            jobs.begin_term(epoch, write(store.clone())).await?;
            assert_eq!(store.take_job_lease("b", Ask::Force, 60_000).await?, Some(epoch + 1));
            let refused = jobs.begin_term(epoch, write(store.clone())).await;
            assert!(matches!(refused, Err(StoreError::Fenced(e)) if e == epoch), "{refused:?}");
            // Nor take an image's content-writer mark (an import's or a copy's first step).
            crate::db::test_image(&store, "img-1").await?;
            query("UPDATE images SET kind = 'custom', status = 'importing' WHERE id = 'img-1'")
                .execute(store.pool())
                .await?;
            let claim = jobs.begin_term(epoch, {
                let store = store.clone();
                async move { store.claim_content("img-1", "blob-1").await }
            });
            assert!(matches!(claim.await, Err(StoreError::Fenced(_))));
            assert!(store.claim_content("img-1", "blob-1").await?, "the API's claim is not fenced");
            // Nor its audit entries, nor the change feed's pruning.
            let audit = jobs.begin_term(epoch, {
                let store = store.clone();
                async move { store.audit("jobs", "late", "img-1", "").await }
            });
            assert!(matches!(audit.await, Err(StoreError::Fenced(_))));
            let prune = jobs.begin_term(epoch, {
                let store = store.clone();
                async move { store.prune_events(0, i64::MAX).await }
            });
            assert!(matches!(prune.await, Err(StoreError::Fenced(_))));
            let late = query_scalar::<i64>("SELECT COUNT(*) FROM audit_log WHERE action = 'late'")
                .fetch_one(store.pool())
                .await?;
            assert_eq!(late, 0, "a fenced audit entry was written");
            store.audit("admin", "early", "img-1", "").await?;
            // Writes outside any job (the API's) are not fenced.
            write(store.clone()).await?;
            jobs.end_term(std::time::Duration::from_secs(1)).await;
            Ok(())
        }
    }

    crate::db::store_test! {
        /// Heartbeats list a coordinator with its address until it is removed.
        async fn coordinators_beat(store, _dir) -> Result<(), StoreError> {
            store.coordinator_heartbeat("a", "127.0.0.141:7443").await?;
            store.coordinator_heartbeat("b", "127.0.0.142:7443").await?;
            store.coordinator_heartbeat("a", "127.0.0.143:7443").await?;
            let listed = store.coordinators().await?;
            assert_eq!(listed.len(), 2);
            assert_eq!((listed[0].id.as_str(), listed[0].address.as_str()), ("a", "127.0.0.143:7443"));
            assert!(listed.iter().all(|c| c.age_ms >= 0 && c.age_ms < 60_000), "{listed:?}");
            assert_eq!(
                store.live_coordinators(60_000).await?,
                vec![
                    ("a".to_string(), "127.0.0.143:7443".to_string()),
                    ("b".to_string(), "127.0.0.142:7443".to_string())
                ]
            );
            store.remove_coordinator("a").await?;
            assert_eq!(store.live_coordinators(60_000).await?.len(), 1);
            Ok(())
        }
    }
}
