//! The writes of one move as its attempts go: taking the target's claim, the end that moved
//! the instance, the end that left it on its source, a release and a stay. Each applies the
//! move table (`MoveStatus::transition`) and the instance's (`InstanceState::transition`) as
//! compare-and-swaps, with the claims given back in the same transaction.

use super::{MoveTimings, parse};
use crate::db::{Store, StoreError};
use crate::instances::store::claims::{give_back, host_claims};
use crate::instances::store::state::{Owner, StateChange, swap_state};
use crate::instances::store::{ClaimRefused, release_claim};
use crate::jobs::operations::{add_step, set_items};
use crate::scheduler::Overcommit;
use plinth_common::api::MoveStatus;
use plinth_common::instance::InstanceState;
use plinth_common::maintenance::MoveEvent;
use serde_json::json;

/// A migrating instance's two hosts and its size (what each end's claim is).
/// Records a step of the move of `instance` in `op` ("web-1 (inst-4f2a): moved to host-9c1e")
/// and the operation's item progress (moves ended of all), in the move's transaction.
pub(super) async fn move_step(
    conn: &mut crate::db::Tx,
    op: &str,
    instance: &str,
    what: &str,
    now: i64,
) -> Result<(), StoreError> {
    let name: Option<String> = crate::db::query_scalar(
        "SELECT instance_name FROM moves WHERE operation_id = $1 AND instance_id = $2",
    )
    .bind(op)
    .bind(instance)
    .fetch_optional(&mut *conn)
    .await?;
    let name = name.unwrap_or_default();
    add_step(conn, op, &format!("{name} ({instance}): {what}"), now).await?;
    count_moves(conn, op, now).await
}

/// The operation's item progress from its moves: those ended (moved, released, stayed) of all.
pub(super) async fn count_moves(
    conn: &mut crate::db::Tx,
    op: &str,
    now: i64,
) -> Result<(), StoreError> {
    let row = crate::db::query(
        "SELECT count(*) AS total, \
            coalesce(sum(CASE WHEN status IN ($1, $2, $3) THEN 1 ELSE 0 END), 0) AS done \
         FROM moves WHERE operation_id = $4",
    )
    .bind(MoveStatus::Moved.as_str())
    .bind(MoveStatus::Released.as_str())
    .bind(MoveStatus::Stayed.as_str())
    .bind(op)
    .fetch_one(&mut *conn)
    .await?;
    let (done, total): (i64, i64) = (row.try_get("done")?, row.try_get("total")?);
    set_items(conn, op, done.max(0) as u64, total.max(0) as u64, now).await
}

struct Migrating {
    source: String,
    target: String,
    cores: i64,
    memory: i64,
}

/// The instance while it migrates for `op`; `None` when it does not.
async fn migrating(
    conn: &mut crate::db::Tx,
    op: &str,
    instance: &str,
) -> Result<Option<Migrating>, StoreError> {
    let row = crate::db::query(
        "SELECT host_id, migrating_to, vcpus, memory_bytes FROM instances \
         WHERE id = $1 AND operation_id = $2 AND migrating_to IS NOT NULL",
    )
    .bind(instance)
    .bind(op)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Migrating {
            source: r.try_get("host_id")?,
            target: r.try_get("migrating_to")?,
            cores: r.try_get("vcpus")?,
            memory: r.try_get("memory_bytes")?,
        })
    })
    .transpose()
}

/// The one statement that writes a move's status: the status it is in now, `event` applied by
/// the move table, then a compare-and-swap on that status. A move that is not where the event
/// starts from (or that moved meanwhile) is an error: only its drain writes it.
async fn swap_move(
    conn: &mut crate::db::Tx,
    op: &str,
    instance: &str,
    event: MoveEvent,
) -> Result<MoveStatus, StoreError> {
    let now: Option<String> = crate::db::query_scalar(
        "SELECT status FROM moves WHERE operation_id = $1 AND instance_id = $2",
    )
    .bind(op)
    .bind(instance)
    .fetch_optional(&mut *conn)
    .await?;
    let now = now.ok_or_else(|| StoreError::Corrupt(format!("no move of {instance} in {op}")))?;
    let from = parse(&now, "move status", MoveStatus::parse)?;
    let to = from
        .transition(event)
        .map_err(|e| StoreError::Corrupt(format!("{instance} in {op}: {e}")))?;
    let swapped = crate::db::query(
        "UPDATE moves SET status = $1 WHERE operation_id = $2 AND instance_id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(op)
    .bind(instance)
    .bind(from.as_str())
    .execute(conn)
    .await?
    .rows_affected()
        == 1;
    if !swapped {
        return Err(StoreError::Corrupt(format!(
            "the move of {instance} in {op} left {from} meanwhile"
        )));
    }
    Ok(to)
}

/// Records where a move stands after an attempt that did not move the instance (or a move
/// that will not happen): `event` applied, with its reason and end.
async fn set_outcome(
    conn: &mut crate::db::Tx,
    op: &str,
    instance: &str,
    event: MoveEvent,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let status = swap_move(&mut *conn, op, instance, event).await?;
    let ended = status.is_final().then_some(now);
    crate::db::query(
        "UPDATE moves SET reason = $1, ended_at = $2 WHERE operation_id = $3 AND instance_id = $4",
    )
    .bind(reason)
    .bind(ended)
    .bind(op)
    .bind(instance)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a migrating instance back to `running` for the end of `op`'s attempt.
async fn end_migrating(
    conn: &mut crate::db::Tx,
    op: &str,
    instance: &str,
    now: i64,
) -> Result<(), StoreError> {
    let change = StateChange {
        from: InstanceState::Migrating,
        to: InstanceState::Running,
        owner: Owner::Job(op),
        operation: None,
        reason: None,
        now,
    };
    if !swap_state(conn, instance, &change).await? {
        return Err(StoreError::Corrupt(format!(
            "instance {instance} is not migrating for {op}"
        )));
    }
    Ok(())
}

impl Store {
    /// Starts an attempt: takes the claim on `target` and moves the instance, still `running`
    /// on `source` with no job of its own, into `migrating` for `op`.
    pub async fn start_move(
        &self,
        op: &str,
        instance: &str,
        source: &str,
        target: &str,
        oc: Overcommit,
        now: i64,
    ) -> Result<Result<(), ClaimRefused>, StoreError> {
        let _turn = self.claims.lock().await;
        let mut tx = self.write().await?;
        let row = crate::db::query(
            "SELECT state, vcpus, memory_bytes FROM instances \
             WHERE id = $1 AND host_id = $2 AND operation_id IS NULL",
        )
        .bind(instance)
        .bind(source)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(ClaimRefused::Moved));
        };
        if row.try_get::<String, _>("state")? != InstanceState::Running.as_str() {
            return Ok(Err(ClaimRefused::Moved));
        }
        let change = StateChange {
            from: InstanceState::Running,
            to: InstanceState::Migrating,
            owner: Owner::Nobody,
            operation: Some(op),
            reason: None,
            now,
        };
        if !swap_state(&mut tx, instance, &change).await? {
            return Ok(Err(ClaimRefused::Moved));
        }
        crate::db::query("UPDATE instances SET migrating_to = $1 WHERE id = $2")
            .bind(target)
            .bind(instance)
            .execute(&mut tx)
            .await?;
        let claim = json!([{
            "host": target,
            "cores": row.try_get::<i64, _>("vcpus")?,
            "memory": row.try_get::<i64, _>("memory_bytes")?,
        }])
        .to_string();
        let Some(&(cores, memory)) = host_claims(&mut tx, &claim, oc).await?.get(target) else {
            return Ok(Err(ClaimRefused::HostFull));
        };
        swap_move(&mut tx, op, instance, MoveEvent::Claim).await?;
        crate::db::query(
            "UPDATE moves SET target_host = $1, attempts = attempts + 1, \
                started_at = COALESCE(started_at, $2), reason = NULL \
             WHERE operation_id = $3 AND instance_id = $4",
        )
        .bind(target)
        .bind(now)
        .bind(op)
        .bind(instance)
        .execute(&mut tx)
        .await?;
        let what = format!("live migration to {target} started");
        move_step(&mut tx, op, instance, &what, now).await?;
        tx.commit().await?;
        self.events_committed();
        self.set_allocation(target, cores, memory);
        Ok(Ok(()))
    }

    /// Records a migration that ended with the instance running on its target: the source's
    /// claim is given back and the instance is placed on the target, `running`.
    pub async fn finish_move(
        &self,
        op: &str,
        instance: &str,
        timings: &MoveTimings,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let Some(m) = migrating(&mut tx, op, instance).await? else {
            return Err(StoreError::Corrupt(format!(
                "instance {instance} is not migrating for {op}"
            )));
        };
        let released = give_back(&mut tx, &m.source, m.cores, m.memory).await?;
        crate::db::query(
            "UPDATE instances SET host_id = migrating_to, migrating_to = NULL WHERE id = $1",
        )
        .bind(instance)
        .execute(&mut tx)
        .await?;
        end_migrating(&mut tx, op, instance, now).await?;
        swap_move(&mut tx, op, instance, MoveEvent::Moved).await?;
        crate::db::query(
            "UPDATE moves SET target_host = $1, ended_at = $2, prepare_ms = $3, \
                libvirt_ms = $4, total_ms = $5, reason = NULL \
                WHERE operation_id = $6 AND instance_id = $7",
        )
        .bind(&m.target)
        .bind(now)
        .bind(timings.prepare_ms.map(|v| v as i64))
        .bind(timings.libvirt_ms.map(|v| v as i64))
        .bind(timings.total_ms as i64)
        .bind(op)
        .bind(instance)
        .execute(&mut tx)
        .await?;
        let what = format!("moved to {}", m.target);
        move_step(&mut tx, op, instance, &what, now).await?;
        tx.commit().await?;
        self.events_committed();
        self.set_allocation(&released.0, released.1, released.2);
        Ok(())
    }

    /// Records an attempt that left the instance running on its source: the target's claim
    /// is given back; the move waits for another attempt, or (`give_up`) stays with `reason`.
    pub async fn fail_move(
        &self,
        op: &str,
        instance: &str,
        reason: &str,
        give_up: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let mut released = None;
        if let Some(m) = migrating(&mut tx, op, instance).await? {
            released = Some(give_back(&mut tx, &m.target, m.cores, m.memory).await?);
            crate::db::query("UPDATE instances SET migrating_to = NULL WHERE id = $1")
                .bind(instance)
                .execute(&mut tx)
                .await?;
            end_migrating(&mut tx, op, instance, now).await?;
        }
        let event = if give_up {
            MoveEvent::GiveUp
        } else {
            MoveEvent::Retry
        };
        set_outcome(&mut tx, op, instance, event, reason, now).await?;
        let what = if give_up {
            format!("left on its host: {reason}")
        } else {
            format!("migration attempt failed, to be tried again: {reason}")
        };
        move_step(&mut tx, op, instance, &what, now).await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, cores, memory)) = released {
            self.set_allocation(&host, cores, memory);
        }
        Ok(())
    }

    /// Releases a stopped instance from `source` (its claim given back, no host: placed anew
    /// when next started). `false` when it is no longer stopped there, or a job owns it.
    pub async fn release_move(
        &self,
        op: &str,
        instance: &str,
        source: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let still = crate::db::query(
            "SELECT 1 FROM instances WHERE id = $1 AND host_id = $2 AND state = $3 \
                AND operation_id IS NULL",
        )
        .bind(instance)
        .bind(source)
        .bind(InstanceState::Stopped.as_str())
        .fetch_optional(&mut tx)
        .await?
        .is_some();
        if !still {
            return Ok(false);
        }
        let released = release_claim(&mut tx, instance).await?;
        let reason = format!("released from {source} by its maintenance drain");
        crate::db::query("UPDATE instances SET state_reason = $1, updated_at = $2 WHERE id = $3")
            .bind(&reason)
            .bind(now)
            .bind(instance)
            .execute(&mut tx)
            .await?;
        let data = json!({ "host_id": null, "reason": reason });
        crate::events::record_change(&mut tx, crate::events::EventType::Instance, instance, data)
            .await?;
        swap_move(&mut tx, op, instance, MoveEvent::Release).await?;
        crate::db::query(
            "UPDATE moves SET started_at = $1, ended_at = $2 WHERE operation_id = $3 AND instance_id = $4",
        )
        .bind(now)
        .bind(now)
        .bind(op)
        .bind(instance)
        .execute(&mut tx)
        .await?;
        let what = format!("stopped, so released from {source} without moving");
        move_step(&mut tx, op, instance, &what, now).await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, cores, memory)) = released {
            self.set_allocation(&host, cores, memory);
        }
        Ok(true)
    }

    /// Ends a move that will not happen (the instance changed, or went away).
    pub async fn stay_move(
        &self,
        op: &str,
        instance: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        set_outcome(&mut tx, op, instance, MoveEvent::Stay, reason, now).await?;
        move_step(
            &mut tx,
            op,
            instance,
            &format!("left on its host: {reason}"),
            now,
        )
        .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }
}
