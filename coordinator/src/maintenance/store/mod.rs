//! Drains and live migrations. A drain (or a manual migration) is an operation with a `moves`
//! row per instance. While an instance migrates it holds claims on both hosts (its own and
//! `migrating_to`); the move's end gives one of them back in the same transaction that records
//! where the instance is, so an instance is never on two hosts or none in the store.

use crate::db::{Store, StoreError};
use crate::jobs::operations::{NewOperation, add_step, parse_status, status_name};
use plinth_common::api::{MoveAction, MoveItem, MoveStatus, OperationStatus};
use plinth_common::maintenance::{DrainEvent, drain_transition};
use plinth_common::timefmt::rfc3339;

mod moves;

/// A move as the drain first writes it.
#[derive(Debug, Clone)]
pub struct NewMove {
    pub instance_id: String,
    pub instance_name: String,
    pub action: MoveAction,
    /// Why it stays (for `MoveAction::Stay`).
    pub reason: Option<String>,
}

/// A move row and what only the coordinator reads of it.
#[derive(Debug, Clone)]
pub struct MoveRecord {
    pub item: MoveItem,
    pub operation_id: String,
    pub pinned_target: Option<String>,
}

/// A drain row with its operation's status.
#[derive(Debug, Clone)]
pub struct DrainRecord {
    pub operation_id: String,
    pub host_id: String,
    pub parallelism: u32,
    pub status: OperationStatus,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// How long the parts of a move that succeeded took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveTimings {
    /// The target preparing the files (before the migration's turn).
    pub prepare_ms: Option<u64>,
    /// libvirt's migrate call on the source.
    pub libvirt_ms: Option<u64>,
    /// From the migration's turn until the coordinator knew it moved.
    pub total_ms: u64,
}

const MOVE_COLUMNS: &str = "m.operation_id, m.instance_id, m.instance_name, m.action, m.status, \
    m.source_host, m.target_host, m.pinned_target, m.attempts, m.reason, m.started_at, \
    m.ended_at, m.prepare_ms, m.libvirt_ms, m.total_ms";

fn parse<T>(text: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt(format!("{what} '{text}'")))
}

fn move_record(row: &crate::db::Row) -> Result<MoveRecord, StoreError> {
    let ms = |c: &str| -> Result<Option<u64>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(c)?.map(|v| v as u64))
    };
    let at = |c: &str| -> Result<Option<String>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(c)?.map(rfc3339))
    };
    Ok(MoveRecord {
        item: MoveItem {
            instance_id: row.try_get("instance_id")?,
            instance_name: row.try_get("instance_name")?,
            action: parse(row.try_get("action")?, "move action", MoveAction::parse)?,
            status: parse(row.try_get("status")?, "move status", MoveStatus::parse)?,
            source_host: row.try_get("source_host")?,
            target_host: row.try_get("target_host")?,
            attempts: row.try_get::<i64, _>("attempts")? as u32,
            reason: row.try_get("reason")?,
            started_at: at("started_at")?,
            ended_at: at("ended_at")?,
            prepare_ms: ms("prepare_ms")?,
            libvirt_ms: ms("libvirt_ms")?,
            total_ms: ms("total_ms")?,
            progress: None,
        },
        operation_id: row.try_get("operation_id")?,
        pinned_target: row.try_get("pinned_target")?,
    })
}

async fn insert_moves(
    conn: &mut crate::db::Tx,
    op: &str,
    source: &str,
    pinned_target: Option<&str>,
    moves: &[NewMove],
    now: i64,
) -> Result<(), StoreError> {
    for m in moves {
        let status = match m.action {
            MoveAction::Migrate | MoveAction::Release => MoveStatus::Pending,
            MoveAction::Stay => MoveStatus::Stayed,
        };
        let ended = (status == MoveStatus::Stayed).then_some(now);
        crate::db::query(
            "INSERT INTO moves (operation_id, instance_id, instance_name, action, status, \
                source_host, pinned_target, reason, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(op)
        .bind(&m.instance_id)
        .bind(&m.instance_name)
        .bind(m.action.as_str())
        .bind(status.as_str())
        .bind(source)
        .bind(pinned_target)
        .bind(&m.reason)
        .bind(ended)
        .execute(&mut *conn)
        .await?;
    }
    let count = |a: MoveAction| moves.iter().filter(|m| m.action == a).count();
    let begun = format!(
        "from {source}: {} to migrate, {} stopped to release, {} to stay",
        count(MoveAction::Migrate),
        count(MoveAction::Release),
        count(MoveAction::Stay)
    );
    add_step(conn, op, &begun, now).await?;
    for m in moves.iter().filter(|m| m.action == MoveAction::Stay) {
        let reason = m.reason.as_deref().unwrap_or("no reason recorded");
        moves::move_step(conn, op, &m.instance_id, &format!("stays: {reason}"), now).await?;
    }
    moves::count_moves(conn, op, now).await
}

impl Store {
    /// Writes a drain of `host`: the operation, the drain row and a move per instance, in one
    /// transaction. The host's own state changes through its transition, after this (the drain
    /// job makes sure of it when it resumes one written just before a restart).
    pub async fn begin_drain(
        &self,
        host: &str,
        op: &NewOperation<'_>,
        parallelism: u32,
        moves: &[NewMove],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        self.insert_operation(&mut tx, op).await?;
        crate::db::query(
            "INSERT INTO drains (operation_id, host_id, parallelism, started_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(op.id)
        .bind(host)
        .bind(i64::from(parallelism))
        .bind(op.now)
        .execute(&mut tx)
        .await?;
        insert_moves(&mut tx, op.id, host, None, moves, op.now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a drain that never began (its host left `locked` before it could enter
    /// maintenance): its moves, its row and its operation.
    pub async fn discard_drain(&self, op: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for sql in [
            "DELETE FROM moves WHERE operation_id = $1",
            "DELETE FROM drains WHERE operation_id = $1",
        ] {
            crate::db::query(sql).bind(op).execute(&mut tx).await?;
        }
        crate::jobs::operations::discard_operation(&mut tx, op).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// Writes a manual migration of one instance: its operation and its move (to `target`
    /// when the caller named one).
    pub async fn begin_migration(
        &self,
        source: &str,
        target: Option<&str>,
        op: &NewOperation<'_>,
        instance: &NewMove,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        self.insert_operation(&mut tx, op).await?;
        insert_moves(
            &mut tx,
            op.id,
            source,
            target,
            std::slice::from_ref(instance),
            op.now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a drain's row and operation (failed with `summary` when something stayed), by the
    /// drain table and a compare-and-swap on the operation's status. The host's state is the
    /// caller's to change, through its transition. `false` when the drain had already ended
    /// (nothing written).
    pub async fn end_drain(
        &self,
        op: &str,
        summary: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let event = if summary.is_none() {
            DrainEvent::Completed
        } else {
            DrainEvent::Incomplete
        };
        let mut tx = self.write().await?;
        let status: String = crate::db::query_scalar("SELECT status FROM operations WHERE id = $1")
            .bind(op)
            .fetch_one(&mut tx)
            .await?;
        let from = parse_status(&status)?;
        let Ok(to) = drain_transition(from, event) else {
            return Ok(false);
        };
        let swapped = crate::db::query(
            "UPDATE operations SET status = $1, error = $2, updated_at = $3, finished_at = $4 \
             WHERE id = $5 AND status = $6",
        )
        .bind(status_name(to))
        .bind(summary)
        .bind(now)
        .bind(now)
        .bind(op)
        .bind(status_name(from))
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if !swapped {
            return Ok(false);
        }
        let step = match summary {
            None => "drain ended: every instance left the host",
            Some(_) => "drain ended with instances left on the host",
        };
        add_step(&mut tx, op, step, now).await?;
        let data = serde_json::json!({ "status": status_name(to), "error": summary });
        crate::events::record_change(&mut tx, crate::events::EventType::Operation, op, data)
            .await?;
        crate::db::query("UPDATE drains SET ended_at = $1 WHERE operation_id = $2")
            .bind(now)
            .bind(op)
            .execute(&mut tx)
            .await?;
        let data = serde_json::json!({ "status": status_name(to), "from": status_name(from),
            "error": summary });
        crate::events::record_change(&mut tx, crate::events::EventType::Operation, op, data)
            .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    /// Ends a manual migration's operation.
    pub async fn end_migration(
        &self,
        op: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        self.finish_operation(&mut tx, op, error, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn moves(&self, op: &str) -> Result<Vec<MoveRecord>, StoreError> {
        let rows = crate::db::query(&format!(
            "SELECT {MOVE_COLUMNS} FROM moves m WHERE m.operation_id = $1 \
             ORDER BY m.instance_name, m.instance_id"
        ))
        .bind(op)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(move_record).collect()
    }

    /// The instance's latest move (a drain's or a manual migration's).
    pub async fn latest_move(&self, instance: &str) -> Result<Option<MoveRecord>, StoreError> {
        let row = crate::db::query(&format!(
            "SELECT {MOVE_COLUMNS} FROM moves m JOIN operations o ON o.id = m.operation_id \
             WHERE m.instance_id = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT 1"
        ))
        .bind(instance)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(move_record).transpose()
    }

    /// The host's current or last drain.
    pub async fn latest_drain(&self, host: &str) -> Result<Option<DrainRecord>, StoreError> {
        let row = crate::db::query(
            "SELECT d.operation_id, d.host_id, d.parallelism, d.started_at, d.ended_at, o.status \
             FROM drains d JOIN operations o ON o.id = d.operation_id \
             WHERE d.host_id = $1 ORDER BY d.started_at DESC, d.operation_id DESC LIMIT 1",
        )
        .bind(host)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(DrainRecord {
                operation_id: r.try_get("operation_id")?,
                host_id: r.try_get("host_id")?,
                parallelism: r.try_get::<i64, _>("parallelism")? as u32,
                status: crate::jobs::operations::parse_status(r.try_get("status")?)?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{test_hosts, test_image};
    use crate::instances::store::ClaimRefused;
    use crate::instances::store::{NewInstanceRow, Reconciled};
    use crate::scheduler::Overcommit;
    use plinth_common::host::{HostEvent, HostState};
    use plinth_common::instance::{InstanceKind, InstanceState};

    const GIB: u64 = 1 << 30;

    /// Three available hosts of 4 cores / 8 GiB in one cluster, a tenant and an image.
    async fn region(store: &Store) -> Result<(), StoreError> {
        test_hosts(store, 3, 4, 8 * GIB).await?;
        store.create_tenant("ten-1", "t@x", "T").await?;
        test_image(store, "img-1").await
    }

    /// Instance `id` (2 vCPU, 2 GiB) on host-1 in `state`.
    async fn instance(store: &Store, id: &str, state: InstanceState) -> Result<(), StoreError> {
        let row = NewInstanceRow {
            id,
            name: id,
            kind: InstanceKind::Vm,
            tenant_id: "ten-1",
            tenant_email: "t@x",
            image_id: "img-1",
            vcpus: 2,
            memory_bytes: 2 * GIB,
            disk_bytes: GIB,
            gpu_type: None,
            admin_password_sealed: "s",
            eips: &[],
        };
        let op_id = format!("op-create-{id}");
        let op = NewOperation {
            id: &op_id,
            kind: "instance_create",
            target_id: id,
            owner_tenant_id: None,
            now: 1,
        };
        let oc = Overcommit::default();
        assert_eq!(
            store.create_instance(&row, "host-1", oc, &op).await?,
            Ok(())
        );
        store
            .finish_instance_job(id, &op_id, InstanceState::Running, Some("uuid"), 2)
            .await?;
        // A create ends running; another state comes the way it does in a region.
        if state != InstanceState::Running {
            let seen = Reconciled {
                instance_id: id.to_string(),
                from: InstanceState::Running,
                to: state,
                reason: None,
            };
            assert!(store.apply_reconciled(&seen, 2).await?);
        }
        Ok(())
    }

    /// Each host's allocated cores, from the table and from the placement index.
    async fn cores(store: &Store) -> Result<Vec<(i64, u32)>, StoreError> {
        let rows = crate::db::query("SELECT id, allocated_cores FROM hosts ORDER BY id")
            .fetch_all(store.pool())
            .await?;
        let index = store.placement_candidates(0);
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let indexed = index
                    .iter()
                    .find(|c| c.host_id == id)
                    .map_or(0, |c| c.allocated_cores);
                Ok((r.try_get("allocated_cores")?, indexed))
            })
            .collect()
    }

    crate::db::store_test! {
    /// A drain's moves keep the claims right at every step: a migrating instance holds both
    /// hosts' claims, a finished move only the target's, a failed one only the source's, and a
    /// released instance none; the host ends where the drain's outcome says.
    async fn moves_keep_claims_and_placement_consistent(store, _dir) -> Result<(), StoreError> {
        region(&store).await?;
        instance(&store, "vm-a", InstanceState::Running).await?;
        instance(&store, "vm-b", InstanceState::Running).await?;
        instance(&store, "vm-c", InstanceState::Stopped).await?;
        crate::db::query("UPDATE hosts SET state = 'locked' WHERE id = 'host-1'")
            .execute(store.pool())
            .await?;
        let op = NewOperation {
            id: "op-drain",
            kind: "host_drain",
            target_id: "host-1",
            owner_tenant_id: None,
            now: 3,
        };
        let moves: Vec<NewMove> = [
            ("vm-a", MoveAction::Migrate),
            ("vm-b", MoveAction::Migrate),
            ("vm-c", MoveAction::Release),
        ]
        .into_iter()
        .map(|(id, action)| NewMove {
            instance_id: id.into(),
            instance_name: id.into(),
            action,
            reason: None,
        })
        .collect();
        store.begin_drain("host-1", &op, 2, &moves).await?;
        let enter = |now| store.transition_host("host-1", HostEvent::EnterMaintenance, now);
        assert_eq!(
            enter(3).await.map(|h| h.state).ok(),
            Some(HostState::EnteringMaintenance)
        );
        assert!(enter(3).await.is_err(), "no longer locked");
        assert_eq!(cores(&store).await?, [(6, 6), (0, 0), (0, 0)]);

        let oc = Overcommit::default();
        assert_eq!(
            store
                .start_move("op-drain", "vm-a", "host-1", "host-2", oc, 4)
                .await?,
            Ok(())
        );
        assert_eq!(
            store
                .start_move("op-drain", "vm-a", "host-1", "host-3", oc, 4)
                .await?,
            Err(ClaimRefused::Moved),
            "already migrating"
        );
        assert_eq!(
            store
                .start_move("op-drain", "vm-b", "host-1", "host-3", oc, 4)
                .await?,
            Ok(())
        );
        assert_eq!(cores(&store).await?, [(6, 6), (2, 2), (2, 2)]);
        let a = store.instance("vm-a").await?.expect("vm-a").instance;
        assert_eq!(a.state, InstanceState::Migrating);

        store
            .finish_move(
                "op-drain",
                "vm-a",
                &MoveTimings {
                    prepare_ms: Some(40),
                    libvirt_ms: Some(900),
                    total_ms: 1000,
                },
                5,
            )
            .await?;
        store
            .fail_move("op-drain", "vm-b", "target gone", true, 5)
            .await?;
        assert!(store.release_move("op-drain", "vm-c", "host-1", 5).await?);
        assert_eq!(cores(&store).await?, [(2, 2), (2, 2), (0, 0)]);

        let a = store.instance("vm-a").await?.expect("vm-a").instance;
        assert_eq!(
            (a.host_id.as_deref(), a.state),
            (Some("host-2"), InstanceState::Running)
        );
        let b = store.instance("vm-b").await?.expect("vm-b").instance;
        assert_eq!(
            (b.host_id.as_deref(), b.state),
            (Some("host-1"), InstanceState::Running)
        );
        assert_eq!(b.operation_id, None);
        let c = store.instance("vm-c").await?.expect("vm-c").instance;
        assert_eq!((c.host_id, c.state), (None, InstanceState::Stopped));

        let report: Vec<(String, MoveStatus, Option<String>, u32)> = store
            .moves("op-drain")
            .await?
            .into_iter()
            .map(|m| {
                (
                    m.item.instance_id,
                    m.item.status,
                    m.item.target_host,
                    m.item.attempts,
                )
            })
            .collect();
        assert_eq!(
            report,
            [
                ("vm-a".into(), MoveStatus::Moved, Some("host-2".into()), 1),
                ("vm-b".into(), MoveStatus::Stayed, Some("host-3".into()), 1),
                ("vm-c".into(), MoveStatus::Released, None, 0),
            ]
        );
        let latest = store.latest_move("vm-a").await?.expect("a move");
        assert_eq!(
            (
                latest.item.prepare_ms,
                latest.item.libvirt_ms,
                latest.item.total_ms
            ),
            (Some(40), Some(900), Some(1000))
        );

        let ended = store
            .transition_host("host-1", HostEvent::DrainIncomplete, 6)
            .await
            .map(|h| h.state)
            .ok();
        assert_eq!(ended, Some(HostState::Locked));
        assert!(store.end_drain("op-drain", Some("vm-b stayed"), 6).await?);
        assert!(!store.end_drain("op-drain", None, 7).await?, "ended once");
        let d = store.latest_drain("host-1").await?.expect("drain");
        assert_eq!((d.status, d.ended_at), (OperationStatus::Failed, Some(6)));

        // The drain's operation tells the same story: a step per move, in order, and its
        // moves ended of all as the item progress.
        let op = store.get_operation("op-drain", None).await?.expect("op");
        let steps = crate::jobs::operations::step_messages(&op);
        assert_eq!(
            steps,
            [
                "from host-1: 2 to migrate, 1 stopped to release, 0 to stay",
                "vm-a (vm-a): live migration to host-2 started",
                "vm-b (vm-b): live migration to host-3 started",
                "vm-a (vm-a): moved to host-2",
                "vm-b (vm-b): left on its host: target gone",
                "vm-c (vm-c): stopped, so released from host-1 without moving",
                "drain ended with instances left on the host",
            ]
        );
        assert_eq!((op.items_done, op.items_total), (Some(3), Some(3)));
        assert_eq!(op.finished_at.as_deref(), Some(rfc3339(6).as_str()));
        Ok(())
    }
    }

    crate::db::store_test! {
    /// A drain whose host could not enter maintenance leaves nothing behind; a move's status
    /// and its instance's state change only from where their tables start them.
    async fn refused_changes_write_nothing(store, _dir) -> Result<(), StoreError> {
        use crate::instances::store::state::{Owner, StateChange, swap_state};
        region(&store).await?;
        instance(&store, "vm-a", InstanceState::Running).await?;
        let op = NewOperation {
            id: "op-drain",
            kind: "host_drain",
            target_id: "host-1",
            owner_tenant_id: None,
            now: 3,
        };
        let moves = [NewMove {
            instance_id: "vm-a".into(),
            instance_name: "vm-a".into(),
            action: MoveAction::Migrate,
            reason: None,
        }];
        store.begin_drain("host-1", &op, 1, &moves).await?;
        assert_eq!(store.moves("op-drain").await?.len(), 1);
        store.discard_drain("op-drain").await?;
        assert!(store.latest_drain("host-1").await?.is_none());
        assert!(store.moves("op-drain").await?.is_empty());

        // A release of a running instance, and a move that is not migrating, are refused.
        store.begin_drain("host-1", &op, 1, &moves).await?;
        assert!(!store.release_move("op-drain", "vm-a", "host-1", 4).await?);
        assert!(
            store
                .finish_move("op-drain", "vm-a", &MoveTimings::default(), 4)
                .await
                .is_err()
        );
        let m = store.latest_move("vm-a").await?.expect("a move");
        assert_eq!(m.item.status, MoveStatus::Pending);

        // The instance swap: a stale `from` changes nothing; an illegal change is an error.
        let mut conn = store.write().await?;
        let change = |from, to| StateChange {
            from,
            to,
            owner: Owner::Nobody,
            operation: None,
            reason: None,
            now: 5,
        };
        let stale = change(InstanceState::Stopped, InstanceState::Starting);
        assert!(!swap_state(&mut conn, "vm-a", &stale).await?);
        let illegal = change(InstanceState::Running, InstanceState::Creating);
        assert!(swap_state(&mut conn, "vm-a", &illegal).await.is_err());
        let a = store.instance("vm-a").await?.expect("vm-a").instance;
        assert_eq!(a.state, InstanceState::Running);
        Ok(())
    }
    }
}
