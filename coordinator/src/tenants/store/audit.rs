//! The audit log: who did what to which resource, appended by every mutating handler.

use crate::db::{Store, StoreError};
use plinth_common::api::AuditEntry;
use plinth_common::timefmt::{now_ms, rfc3339};
use sqlx::Row;
use std::sync::atomic::{AtomicU32, Ordering};

/// Entries in one millisecond keep their order: ids are the time, then a process counter.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

fn entry_id(at: i64) -> String {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("audit-{at:013x}-{seq:08x}")
}

impl Store {
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let at = now_ms();
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(entry_id(at))
            .bind(at)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Store {
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: rfc3339(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
