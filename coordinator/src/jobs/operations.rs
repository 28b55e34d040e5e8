//! Operations: long-running work with progress (imports, uploads, copies). A job writes its
//! row before it acts and updates it as it goes, so a restart can find what was running.

use crate::db::{Store, StoreError};
use plinth_common::api::{Operation, OperationStatus};
use plinth_common::timefmt::rfc3339;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(crate) fn status_name(s: OperationStatus) -> &'static str {
    match s {
        OperationStatus::Running => "running",
        OperationStatus::Succeeded => "succeeded",
        OperationStatus::Failed => "failed",
    }
}

pub(crate) fn parse_status(text: &str) -> Result<OperationStatus, StoreError> {
    match text {
        "running" => Ok(OperationStatus::Running),
        "succeeded" => Ok(OperationStatus::Succeeded),
        "failed" => Ok(OperationStatus::Failed),
        other => Err(StoreError::Corrupt(format!("operation status '{other}'"))),
    }
}

fn operation(row: &SqliteRow) -> Result<Operation, StoreError> {
    Ok(Operation {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        target_id: row.try_get("target_id")?,
        status: parse_status(row.try_get("status")?)?,
        progress_bytes: row.try_get::<i64, _>("progress_bytes")? as u64,
        total_bytes: row
            .try_get::<Option<i64>, _>("total_bytes")?
            .map(|b| b as u64),
        error: row.try_get("error")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
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

/// Writes new operations, `running`, from a JSON array of `NewOperation::to_json` rows.
pub(crate) async fn insert_operations(
    conn: &mut sqlx::SqliteConnection,
    ops: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operations (id, kind, target_id, owner_tenant_id, status, progress_bytes, \
            created_at, updated_at) \
         SELECT value ->> 'id', value ->> 'kind', value ->> 'target', value ->> 'owner', \
            ?2, 0, value ->> 'now', value ->> 'now' \
         FROM json_each(?1)",
    )
    .bind(ops)
    .bind(status_name(OperationStatus::Running))
    .execute(&mut *conn)
    .await?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(ops)
        .map_err(|e| StoreError::Corrupt(format!("new operations: {e}")))?;
    for row in rows {
        let id = row["id"].as_str().unwrap_or_default();
        let data = serde_json::json!({
            "status": status_name(OperationStatus::Running),
            "kind": row["kind"],
            "target": row["target"],
        });
        crate::events::record_change(conn, crate::events::EventType::Operation, id, data).await?;
    }
    Ok(())
}

/// Removes an operation that never began (its work was undone before it started), with its
/// change-feed event `{"deleted": true}`, recorded first: its tenant is read from the row.
pub(crate) async fn discard_operation(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<(), StoreError> {
    let data = serde_json::json!({ "deleted": true });
    crate::events::record_change(conn, crate::events::EventType::Operation, id, data).await?;
    sqlx::query("DELETE FROM operations WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const COLUMNS: &str =
    "id, kind, target_id, status, progress_bytes, total_bytes, error, created_at, updated_at";

impl Store {
    pub(crate) async fn insert_operation(
        &self,
        conn: &mut sqlx::SqliteConnection,
        op: &NewOperation<'_>,
    ) -> Result<(), StoreError> {
        insert_operations(conn, &format!("[{}]", op.to_json())).await
    }

    /// An operation, if `tenant` (when given) owns it.
    pub async fn get_operation(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<Operation>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operations WHERE id = ? AND (? IS NULL OR owner_tenant_id = ?)"
        ))
        .bind(id)
        .bind(tenant)
        .bind(tenant)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(operation).transpose()
    }

    pub async fn operation_progress(
        &self,
        id: &str,
        progress: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE operations SET progress_bytes = ?, total_bytes = ?, updated_at = ? \
             WHERE id = ? AND status = ?",
        )
        .bind(progress as i64)
        .bind(total.map(|t| t as i64))
        .bind(now)
        .bind(id)
        .bind(status_name(OperationStatus::Running))
        .execute(&mut *tx)
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
        conn: &mut sqlx::SqliteConnection,
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
        let done = sqlx::query(
            "UPDATE operations SET status = ?, error = ?, updated_at = ? WHERE id = ? AND status = ?",
        )
        .bind(status_name(status))
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(status_name(OperationStatus::Running))
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 1 {
            let data = serde_json::json!({ "status": status_name(status), "error": error });
            crate::events::record_change(conn, crate::events::EventType::Operation, id, data)
                .await?;
        }
        Ok(())
    }

    /// Operations still running (of one kind): after a restart, what must be resumed or failed.
    pub async fn running_operations(&self, kind: &str) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operations WHERE status = ? AND kind = ? ORDER BY created_at"
        ))
        .bind(status_name(OperationStatus::Running))
        .bind(kind)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(operation).collect()
    }
}
