//! Operations: long-running work with progress and steps (imports, uploads, copies, exports,
//! instance jobs, drains, bare-metal preparation and power). A job writes its row before it
//! acts and updates it as it goes, so a restart can find what was running. Every change of
//! a row — begun, progress, a step, ended — is also an operation event of the change feed,
//! written in the same transaction.

use crate::db::{Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::{Operation, OperationStatus, OperationStep};
use plinth_common::timefmt::rfc3339;

pub(crate) fn status_name(s: OperationStatus) -> &'static str {
    s.as_str()
}

pub(crate) fn parse_status(text: &str) -> Result<OperationStatus, StoreError> {
    OperationStatus::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("operation status '{text}'")))
}

fn count(row: &crate::db::Row, column: &str) -> Result<Option<u64>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(|n| n.max(0) as u64))
}

fn operation(row: &crate::db::Row) -> Result<Operation, StoreError> {
    Ok(Operation {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        target_id: row.try_get("target_id")?,
        owner_tenant_id: row.try_get("owner_tenant_id")?,
        status: parse_status(row.try_get("status")?)?,
        progress_bytes: row.try_get::<i64, _>("progress_bytes")? as u64,
        total_bytes: count(row, "total_bytes")?,
        items_done: count(row, "items_done")?,
        items_total: count(row, "items_total")?,
        error: row.try_get("error")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(rfc3339),
        steps: None,
    })
}

/// An operation row as first written.
#[derive(Debug, Clone)]
pub struct NewOperation<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub target_id: &'a str,
    pub owner_tenant_id: Option<&'a str>,
    pub now: i64,
}

impl NewOperation<'_> {
    /// The row as `insert_operations` reads it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "target": self.target_id,
            "owner": self.owner_tenant_id,
            "now": self.now,
        })
    }
}

/// Writes new operations, `running`, from a JSON array of `NewOperation::to_json` rows, with
/// their first steps when `first_steps` is not empty (one per row, in order), and their
/// change-feed events after `preceding` (the events of the change that made them, recorded in
/// the same statement): a statement per table, whatever the number of operations, added to
/// `writes` (which the caller runs in its transaction).
pub(crate) fn insert_operations(
    writes: &mut crate::db::Writes<'_>,
    dialect: crate::db::Dialect,
    ops: &str,
    first_steps: &[String],
    preceding: Vec<crate::events::Event<'_>>,
) -> Result<(), StoreError> {
    let rows = dialect.json_rows(
        "$1",
        "o",
        &[
            ("id", "TEXT"),
            ("kind", "TEXT"),
            ("target", "TEXT"),
            ("owner", "TEXT"),
            ("now", "BIGINT"),
        ],
    );
    let sql = format!(
        "INSERT INTO operations (id, kind, target_id, owner_tenant_id, status, progress_bytes, \
            created_at, updated_at) \
         SELECT o.id, o.kind, o.target, o.owner, $2, 0, o.now, o.now FROM {rows}"
    );
    writes.push(
        crate::db::Query::owned(sql)
            .bind(ops.to_string())
            .bind(status_name(OperationStatus::Running)),
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(ops)
        .map_err(|e| StoreError::Corrupt(format!("new operations: {e}")))?;
    let field = |row: &serde_json::Value, name: &str| row[name].as_str().map(str::to_string);
    // (operation, owner) and data of each event: the operations begun, then their steps.
    let (mut keys, mut data) = (Vec::new(), Vec::new());
    for row in &rows {
        keys.push((field(row, "id").unwrap_or_default(), field(row, "owner")));
        data.push(serde_json::json!({
            "status": status_name(OperationStatus::Running),
            "kind": row["kind"],
            "target": row["target"],
        }));
    }
    if !first_steps.is_empty() {
        if first_steps.len() != rows.len() {
            return Err(StoreError::Corrupt(format!(
                "{} first steps for {} new operations",
                first_steps.len(),
                rows.len()
            )));
        }
        let mut steps = Vec::new();
        for (n, message) in first_steps.iter().enumerate() {
            let at = rows[n]["now"].as_i64().unwrap_or_default();
            let key = keys[n].clone();
            steps.push(serde_json::json!({ "op": key.0, "at": at, "message": message }));
            data.push(serde_json::json!({ "step": { "at": rfc3339(at), "message": message } }));
            keys.push(key);
        }
        // New operations: each step is the first of its operation, at the operation's own
        // time (its updated_at already).
        let from = dialect.json_rows(
            "$1",
            "s",
            &[("op", "TEXT"), ("at", "BIGINT"), ("message", "TEXT")],
        );
        let sql = format!(
            "INSERT INTO operation_steps (operation_id, seq, at, message) \
             SELECT s.op, 1, s.at, s.message FROM {from}"
        );
        writes.push(crate::db::Query::owned(sql).bind(serde_json::Value::Array(steps).to_string()));
    }
    let mut events = preceding;
    events.extend(
        keys.iter()
            .zip(data)
            .map(|((id, owner), data)| crate::events::Event {
                kind: crate::events::EventType::Operation,
                resource_id: id,
                tenant_id: owner.as_deref(),
                data,
            }),
    );
    crate::events::record_all_in(writes, dialect, &events);
    Ok(())
}

/// Removes an operation that never began (its work was undone before it started), with its
/// change-feed event `{"deleted": true}`, recorded first: its tenant is read from the row.
pub(crate) async fn discard_operation(
    conn: &mut crate::db::Tx,
    id: &str,
) -> Result<(), StoreError> {
    let data = serde_json::json!({ "deleted": true });
    crate::events::record_change(conn, crate::events::EventType::Operation, id, data).await?;
    crate::db::query("DELETE FROM operations WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, kind, target_id, owner_tenant_id, status, progress_bytes, total_bytes, \
    items_done, items_total, error, created_at, updated_at, finished_at";

/// Appends a step to operation `id` on `conn` — the transaction that writes the change the
/// step describes, so the step and the change commit together — and records it as an
/// operation event. `message` is read by the operation's tenant: plain words, no paths or
/// tool output. Steps are numbered per operation, so their order survives equal times.
pub(crate) async fn add_step(
    conn: &mut crate::db::Tx,
    id: &str,
    message: &str,
    now: i64,
) -> Result<(), StoreError> {
    let added = crate::db::query(
        "INSERT INTO operation_steps (operation_id, seq, at, message) \
         SELECT id, (SELECT coalesce(max(seq), 0) + 1 FROM operation_steps WHERE operation_id = $1), \
            $2, $3 FROM operations WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(message)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if added == 1 {
        crate::db::query("UPDATE operations SET updated_at = CASE WHEN updated_at > $1 THEN updated_at ELSE $1 END WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let data = serde_json::json!({ "step": { "at": rfc3339(now), "message": message } });
        crate::events::record_change(conn, crate::events::EventType::Operation, id, data).await?;
    }
    Ok(())
}

/// Appends a step that describes no change of the store (a request sent to an agent) in a
/// transaction of its own; a step that cannot be written is logged, never the job's failure.
pub async fn step(store: &Store, op: &str, message: &str) {
    if let Err(e) = store.operation_step(op, message).await {
        tracing::warn!(operation = %op, error = %e, "Could not record an operation step.");
    }
}

/// Sets the item progress of operation `id` (`done` of `total`) on `conn`, recorded as an
/// operation event when it changed.
pub(crate) async fn set_items(
    conn: &mut crate::db::Tx,
    id: &str,
    done: u64,
    total: u64,
    now: i64,
) -> Result<(), StoreError> {
    let n = crate::db::query(
        "UPDATE operations SET items_done = $1, items_total = $2, updated_at = CASE WHEN updated_at > $3 THEN updated_at ELSE $3 END \
         WHERE id = $4 AND (items_done IS DISTINCT FROM $1 OR items_total IS DISTINCT FROM $2)",
    )
    .bind(done as i64)
    .bind(total as i64)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 1 {
        let data = serde_json::json!({ "items_done": done, "items_total": total });
        crate::events::record_change(conn, crate::events::EventType::Operation, id, data).await?;
    }
    Ok(())
}

/// The steps of operation `id`, oldest first.
pub(crate) async fn steps(
    conn: &mut crate::db::Tx,
    id: &str,
) -> Result<Vec<OperationStep>, StoreError> {
    let rows = crate::db::query(
        "SELECT at, message FROM operation_steps WHERE operation_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OperationStep {
                at: rfc3339(r.try_get("at")?),
                message: r.try_get("message")?,
            })
        })
        .collect()
}

/// Which operations a list shows, and the page: newest first by (created_at, id).
#[derive(Debug, Clone, Default)]
pub struct OperationFilter {
    pub kind: Option<String>,
    pub status: Option<OperationStatus>,
    /// The resource worked on.
    pub target: Option<String>,
    /// The owning tenant (a tenant caller's own, always).
    pub tenant: Option<String>,
    /// The last operation of the page before: its created_at (ms) and id.
    pub after: Option<(i64, String)>,
    /// How many rows to read.
    pub fetch: u32,
}

/// An operation of a list with its sort key (created_at in ms), for the next page's cursor.
pub struct Listed {
    pub created_ms: i64,
    pub op: Operation,
}

impl Store {
    pub(crate) async fn insert_operation(
        &self,
        conn: &mut crate::db::Tx,
        op: &NewOperation<'_>,
    ) -> Result<(), StoreError> {
        let mut writes = crate::db::Writes::new();
        let ops = format!("[{}]", op.to_json());
        insert_operations(&mut writes, conn.dialect(), &ops, &[], Vec::new())?;
        writes.run(conn).await?;
        Ok(())
    }

    /// An operation with its steps, if `tenant` (when given) owns it.
    pub async fn get_operation(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<Operation>, StoreError> {
        let mut conn = self.read().await?;
        let row = crate::db::query(&format!(
            "SELECT {COLUMNS} FROM operations WHERE id = $1 AND ($2 IS NULL OR owner_tenant_id = $3)"
        ))
        .bind(id)
        .bind(tenant)
        .bind(tenant)
        .fetch_optional(&mut conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut op = operation(&row)?;
        op.steps = Some(steps(&mut conn, id).await?);
        Ok(Some(op))
    }

    /// Appends a step in a transaction of its own: for a step that describes no change of
    /// the store (a request sent to an agent). See [`add_step`].
    pub async fn operation_step(&self, id: &str, message: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        add_step(&mut tx, id, message, plinth_common::timefmt::now_ms()).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// A page of operations (without steps) and how many match `filter` in all. Keyset
    /// paging: the page starts after `filter.after`, never at an offset.
    pub async fn list_operations(
        &self,
        filter: &OperationFilter,
    ) -> Result<(Vec<Listed>, u64), StoreError> {
        let status = filter.status.map(status_name);
        let push_filters = |q: &mut QueryBuilder<'_>| {
            q.push(" WHERE 1 = 1");
            let columns = [
                ("kind", filter.kind.as_deref()),
                ("status", status),
                ("target_id", filter.target.as_deref()),
                ("owner_tenant_id", filter.tenant.as_deref()),
            ];
            for (column, value) in columns {
                if let Some(value) = value {
                    q.push(format!(" AND {column} = "))
                        .push_bind(value.to_string());
                }
            }
        };
        let mut conn = self.read().await?;
        let mut q = QueryBuilder::new("SELECT count(*) AS n FROM operations");
        push_filters(&mut q);
        let total: i64 = q.build().fetch_one(&mut conn).await?.try_get("n")?;
        let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM operations"));
        push_filters(&mut q);
        push_after(
            &mut q,
            "created_at",
            "id",
            Order::Desc,
            filter.after.as_ref(),
        );
        push_order(&mut q, "created_at", "id", Order::Desc, filter.fetch);
        let rows = q.build().fetch_all(&mut conn).await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(Listed {
                    created_ms: r.try_get("created_at")?,
                    op: operation(r)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, total.max(0) as u64))
    }

    pub async fn operation_progress(
        &self,
        id: &str,
        progress: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let n = crate::db::query(
            "UPDATE operations SET progress_bytes = $1, total_bytes = $2, updated_at = $3 \
             WHERE id = $4 AND status = $5",
        )
        .bind(progress as i64)
        .bind(total.map(|t| t as i64))
        .bind(now)
        .bind(id)
        .bind(status_name(OperationStatus::Running))
        .execute(&mut tx)
        .await?
        .rows_affected();
        if n == 1 {
            // Progress is written every half second at most (images/import.rs): one event each.
            let data = serde_json::json!({ "progress_bytes": progress, "total_bytes": total });
            crate::events::record_change(&mut tx, crate::events::EventType::Operation, id, data)
                .await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    pub(crate) async fn finish_operation(
        &self,
        conn: &mut crate::db::Tx,
        id: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let status = if error.is_some() {
            OperationStatus::Failed
        } else {
            OperationStatus::Succeeded
        };
        // Only a running operation ends, and only once: a second finish changes nothing.
        let done = crate::db::query(
            "UPDATE operations SET status = $1, error = $2, updated_at = $3, finished_at = $4 \
             WHERE id = $5 AND status = $6",
        )
        .bind(status_name(status))
        .bind(error)
        .bind(now)
        .bind(now)
        .bind(id)
        .bind(status_name(OperationStatus::Running))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            // Every failure's last step says so; a success's last step is the caller's.
            if let Some(error) = error {
                add_step(conn, id, &format!("failed: {error}"), now).await?;
            }
            let data = serde_json::json!({ "status": status_name(status), "error": error });
            crate::events::record_change(conn, crate::events::EventType::Operation, id, data)
                .await?;
        }
        Ok(())
    }

    /// Operations still running (of one kind) that the current term of the job lease does not
    /// run yet: what the term must resume (or fail), with the epoch of the term that last ran
    /// each (none: never started). Called outside a term, every running one.
    pub async fn running_operations(&self, kind: &str) -> Result<Vec<Running>, StoreError> {
        let rows = crate::db::query(&format!(
            "SELECT {COLUMNS}, epoch, runner FROM operations \
             WHERE status = $1 AND kind = $2 AND COALESCE(epoch, -1) <> $3 ORDER BY created_at"
        ))
        .bind(status_name(OperationStatus::Running))
        .bind(kind)
        .bind(crate::jobs::term_epoch())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Running {
                    op: operation(r)?,
                    epoch: r.try_get("epoch")?,
                    runner: r.try_get("runner")?,
                    created_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Claims running operation `id` for the term at `epoch`: true once per term (a second
    /// task for it in the same term gets false), false too when it ended. A job of an ended
    /// term cannot claim (the write is fenced).
    pub async fn claim_operation(&self, id: &str, epoch: i64) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = crate::db::query(
            "UPDATE operations SET epoch = $1 \
             WHERE id = $2 AND status = $3 AND COALESCE(epoch, -1) < $4",
        )
        .bind(epoch)
        .bind(id)
        .bind(status_name(OperationStatus::Running))
        .bind(epoch)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that coordinator `runner` receives operation `id`'s data (an upload).
    pub async fn set_operation_runner(&self, id: &str, runner: &str) -> Result<(), StoreError> {
        crate::db::query("UPDATE operations SET runner = $1 WHERE id = $2")
            .bind(runner)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// A running operation as the job lease's holder finds it.
#[derive(Debug, Clone)]
pub struct Running {
    pub op: Operation,
    /// The term of the lease that last ran it; none when no job has started on it.
    pub epoch: Option<i64>,
    /// The coordinator receiving its data (uploads).
    pub runner: Option<String>,
    /// When it was written (Unix ms).
    pub created_ms: i64,
}

/// The messages of an operation's steps, oldest first (store tests compare them).
#[cfg(test)]
pub(crate) fn step_messages(op: &Operation) -> Vec<String> {
    op.steps
        .iter()
        .flatten()
        .map(|s| s.message.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn begin(
        store: &Store,
        id: &str,
        kind: &str,
        target: &str,
        owner: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let op = NewOperation {
            id,
            kind,
            target_id: target,
            owner_tenant_id: owner,
            now,
        };
        let mut tx = store.write().await?;
        store.insert_operation(&mut tx, &op).await?;
        tx.commit().await?;
        Ok(())
    }

    fn ids(items: &[Listed]) -> Vec<&str> {
        items.iter().map(|l| l.op.id.as_str()).collect()
    }

    crate::db::store_test! {
        /// A running operation is claimed once per term of the job lease: the term's listing
        /// no longer shows it, a second claim in the term fails, and a later term (the lease
        /// changed hands) lists it again with the epoch that last ran it and claims it anew.
        async fn jobs_are_claimed_once_per_term(store, _dir) -> Result<(), StoreError> {
            use crate::jobs::lease::store::Ask;
            begin(&store, "op-1", "image_import", "img-1", None, 1).await?;
            begin(&store, "op-2", "image_import", "img-2", None, 2).await?;
            let listed = |store: Store| async move {
                let running = store.running_operations("image_import").await?;
                Ok::<_, StoreError>(
                    running
                        .into_iter()
                        .map(|r| (r.op.id, r.epoch))
                        .collect::<Vec<_>>(),
                )
            };
            let jobs = crate::jobs::Jobs::new();
            let first = store.take_job_lease("a", Ask::Renew(None), 60_000).await?.unwrap_or(0);
            assert!(store.claim_operation("op-1", first).await?);
            assert!(!store.claim_operation("op-1", first).await?, "once per term");
            let seen = jobs.begin_term(first, listed(store.clone())).await?;
            assert_eq!(seen, [("op-2".to_string(), None)]);
            assert_eq!(listed(store.clone()).await?.len(), 2, "outside a term, all");

            let second = store.take_job_lease("b", Ask::Force, 60_000).await?.unwrap_or(0);
            let seen = jobs.begin_term(second, listed(store.clone())).await?;
            assert_eq!(
                seen,
                [("op-1".to_string(), Some(first)), ("op-2".to_string(), None)]
            );
            assert!(!store.claim_operation("op-1", first).await?, "the old term cannot");
            assert!(store.claim_operation("op-1", second).await?);
            let mut tx = store.write().await?;
            store.finish_operation(&mut tx, "op-2", None, 3).await?;
            tx.commit().await?;
            assert!(!store.claim_operation("op-2", second).await?, "an ended one is not run");
            jobs.end_term(std::time::Duration::from_secs(1)).await;
            Ok(())
        }
    }

    crate::db::store_test! {
    async fn steps_come_back_in_the_order_written_and_each_is_an_event(store, _dir) -> Result<(), StoreError> {
        begin(&store, "op-1", "baremetal_power", "bm-1", Some("ten-1"), 10).await?;
        // Equal times: the sequence keeps the order.
        for m in ["asked", "sent to the BMC", "power now on"] {
            let mut tx = store.write().await?;
            add_step(&mut tx, "op-1", m, 20).await?;
            tx.commit().await?;
        }
        let mut tx = store.write().await?;
        store
            .finish_operation(&mut tx, "op-1", Some("the BMC said no"), 30)
            .await?;
        tx.commit().await?;
        let op = store
            .get_operation("op-1", Some("ten-1"))
            .await?
            .expect("own op");
        let steps: Vec<(String, String)> = op
            .steps
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.at, s.message))
            .collect();
        assert_eq!(
            steps,
            [
                (rfc3339(20), "asked".to_string()),
                (rfc3339(20), "sent to the BMC".into()),
                (rfc3339(20), "power now on".into()),
                (rfc3339(30), "failed: the BMC said no".into()),
            ]
        );
        assert_eq!(op.finished_at, Some(rfc3339(30)));
        assert_eq!(op.owner_tenant_id.as_deref(), Some("ten-1"));
        let events: Vec<String> =
            crate::db::query_scalar("SELECT data FROM events WHERE resource_id = 'op-1' ORDER BY id")
                .fetch_all(store.pool())
                .await?;
        let steps_seen = events.iter().filter(|d| d.contains("\"step\"")).count();
        assert_eq!(steps_seen, 4, "{events:?}");
        // Nobody else's: not another tenant's, and a step of a missing operation is nothing.
        assert!(store.get_operation("op-1", Some("ten-2")).await?.is_none());
        let mut tx = store.write().await?;
        add_step(&mut tx, "op-missing", "x", 1).await?;
        tx.commit().await?;
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn item_progress_changes_only_when_it_moves(store, _dir) -> Result<(), StoreError> {
        begin(&store, "op-d", "host_drain", "host-1", None, 1).await?;
        for (done, total) in [(0, 3), (0, 3), (2, 3)] {
            let mut tx = store.write().await?;
            set_items(&mut tx, "op-d", done, total, 2).await?;
            tx.commit().await?;
        }
        let op = store.get_operation("op-d", None).await?.expect("op");
        assert_eq!((op.items_done, op.items_total), (Some(2), Some(3)));
        let events: i64 = crate::db::query_scalar(
            "SELECT count(*) FROM events WHERE resource_id = 'op-d' AND data LIKE '%items_done%'",
        )
        .fetch_one(store.pool())
        .await?;
        assert_eq!(events, 2, "the repeat is not an event");
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn lists_filter_page_by_key_and_keep_to_the_tenant(store, _dir) -> Result<(), StoreError> {
        // Two share a time: the id breaks the tie (ascending, as in every list).
        let rows = [
            ("op-a", "image_import", "img-1", Some("ten-1"), 1),
            ("op-b", "instance_create", "inst-1", Some("ten-1"), 2),
            ("op-c", "instance_start", "inst-1", Some("ten-1"), 2),
            ("op-d", "host_drain", "host-1", None, 3),
            ("op-e", "baremetal_power", "bm-1", Some("ten-2"), 4),
        ];
        for (id, kind, target, owner, now) in rows {
            begin(&store, id, kind, target, owner, now).await?;
        }
        let mut tx = store.write().await?;
        store.finish_operation(&mut tx, "op-a", None, 5).await?;
        tx.commit().await?;
        let list = |f: OperationFilter| {
            let store = store.clone();
            async move { store.list_operations(&f).await }
        };
        let all = OperationFilter {
            fetch: 100,
            ..Default::default()
        };
        let cases: [(&str, OperationFilter, &[&str]); 6] = [
            (
                "all, newest first",
                all.clone(),
                &["op-e", "op-d", "op-b", "op-c", "op-a"],
            ),
            (
                "kind",
                OperationFilter {
                    kind: Some("host_drain".into()),
                    ..all.clone()
                },
                &["op-d"],
            ),
            (
                "status",
                OperationFilter {
                    status: Some(OperationStatus::Succeeded),
                    ..all.clone()
                },
                &["op-a"],
            ),
            (
                "resource",
                OperationFilter {
                    target: Some("inst-1".into()),
                    ..all.clone()
                },
                &["op-b", "op-c"],
            ),
            (
                "a tenant's own",
                OperationFilter {
                    tenant: Some("ten-1".into()),
                    ..all.clone()
                },
                &["op-b", "op-c", "op-a"],
            ),
            (
                "filters together",
                OperationFilter {
                    tenant: Some("ten-2".into()),
                    kind: Some("instance_start".into()),
                    ..all.clone()
                },
                &[],
            ),
        ];
        for (label, filter, want) in cases {
            let (items, total) = list(filter).await?;
            assert_eq!(ids(&items), want, "{label}");
            assert_eq!(total, want.len() as u64, "{label}");
        }
        // Keyset pages of two: each starts after the last of the one before, the total is
        // the whole list's, and a row added meanwhile at the top shifts nothing.
        let mut after = None;
        let mut seen = Vec::new();
        for page in 0.. {
            let (items, total) = list(OperationFilter {
                after: after.clone(),
                fetch: 2,
                ..all.clone()
            })
            .await?;
            assert_eq!(total, if page == 0 { 5 } else { 6 });
            if page == 0 {
                begin(&store, "op-z", "image_copy", "img-2", None, 9).await?;
            }
            let Some(last) = items.last() else { break };
            after = Some((last.created_ms, last.op.id.clone()));
            seen.extend(ids(&items).into_iter().map(str::to_string));
        }
        assert_eq!(seen, ["op-e", "op-d", "op-b", "op-c", "op-a"]);
        assert!(
            list(all).await?.0.iter().all(|l| l.op.steps.is_none()),
            "lists carry no steps"
        );
        Ok(())
    }
    }
}
