//! The audit log: who did what to which resource, appended by every mutating handler.

use crate::db::{Keyed, Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::AuditEntry;
use plinth_common::timefmt::{now_ms, rfc3339};
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
        // A job's entry is fenced like its other writes: an ended term's is refused.
        let entry = crate::db::query("INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(entry_id(at))
            .bind(at)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail);
        self.write_one(entry).await?;
        Ok(())
    }
}

impl Store {
    /// A page of the audit log (newest first, after the entry `after` names) and how many
    /// entries it holds in all. Entry ids sort by time, so the id is the sort key.
    pub async fn list_audit(
        &self,
        limit: u32,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Keyed<String, AuditEntry>>, u64), StoreError> {
        let total: i64 = crate::db::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(self.pool())
            .await?;
        let mut query = QueryBuilder::new(
            "SELECT id, at, actor, action, target, detail FROM audit_log WHERE 1 = 1",
        );
        push_after(&mut query, "id", "id", Order::Desc, after);
        push_order(&mut query, "id", "id", Order::Desc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let entry = AuditEntry {
                    at: rfc3339(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                };
                Ok(((id.clone(), id), entry))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }
}
