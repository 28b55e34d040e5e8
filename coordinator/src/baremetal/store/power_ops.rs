//! Power actions as operations: the row a `POST .../power` writes (one running per server),
//! the mark that a reboot or cycle was sent (so a resumed job never sends it twice), and
//! the end.

use crate::db::{Store, StoreError};
use crate::jobs::operations::{NewOperation, add_step, status_name};
use plinth_common::api::{OperationStatus, PowerRequest, operation_kinds::BAREMETAL_POWER};
use plinth_common::baremetal::PowerAction;
use serde::{Deserialize, Serialize};

/// What a power operation's job needs, kept in its row's `params` so a restart can resume it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PowerParams {
    pub action: PowerAction,
    #[serde(default)]
    pub hard: bool,
    /// Who asked, for the audit entry written when it is done.
    pub actor: String,
    /// Whether the request went to the agent: set, with its step, just before it is sent.
    #[serde(default)]
    pub sent: bool,
}

impl PowerParams {
    pub fn new(req: &PowerRequest, actor: &str) -> PowerParams {
        PowerParams {
            action: req.action,
            hard: req.hard,
            actor: actor.to_string(),
            sent: false,
        }
    }
}

/// A running power operation of a server, as a resumed job reads it.
#[derive(Debug, Clone)]
pub struct PowerJob {
    pub op: String,
    pub server: String,
    pub params: PowerParams,
}

fn corrupt_params(op: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("power operation {op}'s params: {e}"))
}

impl Store {
    /// Writes power operation `op` for server `op.target_id`, with its first step, unless
    /// one is running for the server already: then `Err` with that one's id.
    pub async fn begin_power(
        &self,
        op: &NewOperation<'_>,
        params: &PowerParams,
        step: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.write().await?;
        let running: Option<String> = crate::db::query_scalar(
            "SELECT id FROM operations WHERE kind = $1 AND target_id = $2 AND status = $3 LIMIT 1",
        )
        .bind(BAREMETAL_POWER)
        .bind(op.target_id)
        .bind(status_name(OperationStatus::Running))
        .fetch_optional(&mut tx)
        .await?;
        if let Some(running) = running {
            return Ok(Err(running));
        }
        self.insert_operation(&mut tx, op).await?;
        let json = serde_json::to_string(params).map_err(|e| corrupt_params(op.id, e))?;
        crate::db::query("UPDATE operations SET params = $1 WHERE id = $2")
            .bind(json)
            .bind(op.id)
            .execute(&mut tx)
            .await?;
        add_step(&mut tx, op.id, step, op.now).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(Ok(()))
    }

    /// Marks power operation `op` as sent, with its step, in one transaction: done before
    /// the request goes to the agent, so that a restart knows it may have reached the BMC.
    pub async fn power_sent(&self, op: &str, step: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let sql = format!(
            "UPDATE operations SET params = {} WHERE id = $1",
            self.dialect().json_set_true("params", "sent")
        );
        crate::db::query(&sql).bind(op).execute(&mut tx).await?;
        add_step(&mut tx, op, step, now).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// Ends power operation `op` (failed with `error`), after its last step, if any.
    pub async fn end_power(
        &self,
        op: &str,
        step: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        if let Some(step) = step {
            add_step(&mut tx, op, step, now).await?;
        }
        self.finish_operation(&mut tx, op, error, now).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// The power operations still running: after a restart, what to resume.
    pub async fn running_power(&self) -> Result<Vec<PowerJob>, StoreError> {
        let rows = crate::db::query(
            "SELECT id, target_id, params FROM operations WHERE kind = $1 AND status = $2 \
             AND COALESCE(epoch, -1) <> $3 ORDER BY created_at",
        )
        .bind(BAREMETAL_POWER)
        .bind(status_name(OperationStatus::Running))
        .bind(crate::jobs::term_epoch())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let op: String = r.try_get("id")?;
                let text: Option<String> = r.try_get("params")?;
                let params = serde_json::from_str(text.as_deref().unwrap_or("null"))
                    .map_err(|e| corrupt_params(&op, e))?;
                Ok(PowerJob {
                    server: r.try_get("target_id")?,
                    op,
                    params,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(id: &'a str, server: &'a str, now: i64) -> NewOperation<'a> {
        NewOperation {
            id,
            kind: BAREMETAL_POWER,
            target_id: server,
            owner_tenant_id: Some("ten-1"),
            now,
        }
    }

    crate::db::store_test! {
    async fn one_power_action_runs_per_server_and_its_sent_mark_survives(store, _dir) -> Result<(), StoreError>
    {
        let req = PowerRequest {
            action: PowerAction::Reboot,
            hard: false,
        };
        let params = PowerParams::new(&req, "tenant:ten-1");
        assert_eq!(
            store
                .begin_power(&op("op-1", "bm-1", 1), &params, "asked")
                .await?,
            Ok(())
        );
        assert_eq!(
            store
                .begin_power(&op("op-2", "bm-1", 2), &params, "asked")
                .await?,
            Err("op-1".to_string()),
            "the second names the running one"
        );
        assert_eq!(
            store
                .begin_power(&op("op-3", "bm-2", 2), &params, "asked")
                .await?,
            Ok(())
        );
        store
            .power_sent("op-1", "soft reboot sent to the BMC", 3)
            .await?;
        let running = store.running_power().await?;
        let found: Vec<(&str, &str, bool)> = running
            .iter()
            .map(|j| (j.op.as_str(), j.server.as_str(), j.params.sent))
            .collect();
        assert_eq!(found, [("op-1", "bm-1", true), ("op-3", "bm-2", false)]);
        assert_eq!(running[0].params.action, PowerAction::Reboot);
        store
            .end_power("op-1", Some("power now on"), None, 4)
            .await?;
        assert_eq!(
            store
                .begin_power(&op("op-4", "bm-1", 5), &params, "asked")
                .await?,
            Ok(())
        );
        let done = store.get_operation("op-1", None).await?.expect("op");
        let steps = crate::jobs::operations::step_messages(&done);
        assert_eq!(
            steps,
            ["asked", "soft reboot sent to the BMC", "power now on"]
        );
        assert_eq!(done.status, OperationStatus::Succeeded);
        Ok(())
    }
    }
}
