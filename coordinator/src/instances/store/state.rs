//! The one statement that writes an instance's state: checked against the lifecycle table
//! (`InstanceState::transition`), then applied as a compare-and-swap on the state it was read
//! in (and on who owns the instance), so a write that lost a race changes nothing.

use crate::db::StoreError;
use plinth_common::instance::InstanceState;

/// Who must own the instance for a state write to apply.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// No job (a settled instance that a job or a reconciliation takes).
    Nobody,
    /// The job `op` (its own end).
    Job(&'a str),
}

/// One instance state change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateChange<'a> {
    pub from: InstanceState,
    pub to: InstanceState,
    pub owner: Owner<'a>,
    /// The job that owns the instance afterwards (`None`: no job).
    pub operation: Option<&'a str>,
    /// Why it is in `to`, when that is not plain.
    pub reason: Option<&'a str>,
    pub now: i64,
}

/// Applies `c` to instance `id` if the table allows it and the row is still in `c.from` with
/// `c.owner`. `false` when the row moved meanwhile; an illegal change is refused as an error
/// (no caller asks for one: it would be a bug, not a race).
pub(crate) async fn swap_state(
    conn: &mut crate::db::Tx,
    id: &str,
    c: &StateChange<'_>,
) -> Result<bool, StoreError> {
    c.from
        .transition(c.to)
        .map_err(|e| StoreError::Corrupt(format!("instance {id}: {e}")))?;
    let (owned, job) = match c.owner {
        Owner::Nobody => ("operation_id IS NULL", None),
        Owner::Job(op) => ("operation_id = $7", Some(op)),
    };
    let sql = format!(
        "UPDATE instances SET state = $1, state_reason = $2, operation_id = $3, updated_at = $4 \
         WHERE id = $5 AND state = $6 AND {owned}"
    );
    let mut q = crate::db::query(&sql)
        .bind(c.to.as_str())
        .bind(c.reason)
        .bind(c.operation)
        .bind(c.now)
        .bind(id)
        .bind(c.from.as_str());
    if let Some(op) = job {
        q = q.bind(op);
    }
    if q.execute(&mut *conn).await?.rows_affected() != 1 {
        return Ok(false);
    }
    crate::events::record_change(
        conn,
        crate::events::EventType::Instance,
        id,
        serde_json::json!({ "state": c.to.as_str(), "from": c.from.as_str(), "reason": c.reason }),
    )
    .await?;
    Ok(true)
}

/// The state of instance `id` while the job `op` owns it; `None` when it does not.
pub(crate) async fn owned_state(
    conn: &mut crate::db::Tx,
    id: &str,
    op: &str,
) -> Result<Option<InstanceState>, StoreError> {
    let state: Option<String> =
        crate::db::query_scalar("SELECT state FROM instances WHERE id = $1 AND operation_id = $2")
            .bind(id)
            .bind(op)
            .fetch_optional(conn)
            .await?;
    state
        .map(|s| {
            InstanceState::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("instance state '{s}'")))
        })
        .transpose()
}

/// A job's end that found the instance no longer its own (it should not happen: only the job
/// moves an instance it owns).
pub(crate) fn not_owned(id: &str, op: &str) -> StoreError {
    StoreError::Corrupt(format!("instance {id} is no longer owned by its job {op}"))
}

/// Every instance of a host that is being removed for good ends in `error`, off the host,
/// with `reason`; the caller (the host's removal, in its transaction) has checked that each
/// is settled (running, stopped, error), and the lifecycle table allows `error` from each.
pub(crate) async fn fail_all_on_removed_host(
    conn: &mut crate::db::Tx,
    host_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let ids: Vec<String> = crate::db::query_scalar("SELECT id FROM instances WHERE host_id = $1")
        .bind(host_id)
        .fetch_all(&mut *conn)
        .await?;
    let done = crate::db::query(
        "UPDATE instances SET state = $1, state_reason = $2, host_id = NULL, \
            migrating_to = NULL, updated_at = $3 WHERE host_id = $4",
    )
    .bind(InstanceState::Error.as_str())
    .bind(reason)
    .bind(now)
    .bind(host_id)
    .execute(&mut *conn)
    .await?;
    for id in &ids {
        let data = serde_json::json!({ "state": InstanceState::Error.as_str(), "reason": reason });
        crate::events::record_change(conn, crate::events::EventType::Instance, id, data).await?;
    }
    Ok(done.rows_affected())
}

/// Puts an instance that a job had just taken back in `state` with no job: the undo of a
/// placement whose device could not be had (devices/store.rs).
pub(crate) async fn release_to(
    conn: &mut crate::db::Tx,
    id: &str,
    state: InstanceState,
    now: i64,
) -> Result<(), StoreError> {
    crate::db::query(
        "UPDATE instances SET state = $1, operation_id = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    crate::events::record_change(
        conn,
        crate::events::EventType::Instance,
        id,
        serde_json::json!({ "state": state.as_str() }),
    )
    .await
}

/// The change-feed event of an instance's row going away (its delete finished, or a create
/// undone): `{"deleted": true}`. Call it before the `DELETE`: the event's tenant is read from
/// the row.
pub(crate) async fn record_removed(conn: &mut crate::db::Tx, id: &str) -> Result<(), StoreError> {
    let data = serde_json::json!({ "deleted": true });
    crate::events::record_change(conn, crate::events::EventType::Instance, id, data).await
}
