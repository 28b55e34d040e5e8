//! Preparation's end: the row leaves `preparing` by a compare-and-swap, with what the BMC
//! said (or why it failed), and its operation ends in the same transaction.

use super::{Swap, power};
use crate::db::{Store, StoreError};
use crate::events::{EventType, record_change};
use crate::jobs::operations::add_step;
use plinth_common::baremetal::{BaremetalState, PowerState};

/// How preparation ended, as the row records it.
#[derive(Debug, Clone)]
pub enum Prepared {
    Ok {
        sn: Option<String>,
        model: Option<String>,
        manufacturer: Option<String>,
        power: Swap<PowerState>,
    },
    /// The reason, in words a tenant reads.
    Failed(String),
}

impl Store {
    /// Servers still `preparing` (a restarted coordinator prepares them again).
    pub async fn preparing_baremetal(&self) -> Result<Vec<String>, StoreError> {
        let rows = crate::db::query("SELECT id FROM baremetal WHERE state = $1")
            .bind(BaremetalState::Preparing.as_str())
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    /// Ends preparation when the row still reads `state.from` (and, when prepared, the power
    /// `from`), and finishes its operation; `false` when the row moved meanwhile or is gone.
    pub async fn swap_prepared(
        &self,
        id: &str,
        state: Swap<BaremetalState>,
        outcome: &Prepared,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = match outcome {
            Prepared::Ok {
                sn,
                model,
                manufacturer,
                power,
            } => crate::db::query(
                "UPDATE baremetal SET state = $1, reason = NULL, sn = $2, model = $3, \
                        manufacturer = $4, power_state = $5, power_changed_at = $6, \
                        power_checked_at = $7, updated_at = $8 \
                     WHERE id = $9 AND state = $10 AND power_state = $11",
            )
            .bind(state.to.as_str())
            .bind(sn)
            .bind(model)
            .bind(manufacturer)
            .bind(power.to.as_str())
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(id)
            .bind(state.from.as_str())
            .bind(power.from.as_str())
            .execute(&mut tx)
            .await?
            .rows_affected(),
            Prepared::Failed(reason) => crate::db::query(
                "UPDATE baremetal SET state = $1, reason = $2, updated_at = $3 \
                     WHERE id = $4 AND state = $5",
            )
            .bind(state.to.as_str())
            .bind(reason)
            .bind(now)
            .bind(id)
            .bind(state.from.as_str())
            .execute(&mut tx)
            .await?
            .rows_affected(),
        };
        if n != 1 {
            return Ok(false);
        }
        if let Prepared::Ok { power, .. } = outcome {
            power::log_power(&mut tx, id, power.to, "prepare", now).await?;
        }
        let data = match outcome {
            Prepared::Ok { power, .. } => serde_json::json!({ "state": state.to.as_str(),
                "from": state.from.as_str(), "power_state": power.to.as_str() }),
            Prepared::Failed(reason) => serde_json::json!({ "state": state.to.as_str(),
                "from": state.from.as_str(), "reason": reason }),
        };
        record_change(&mut tx, EventType::Baremetal, id, data).await?;
        let op: Option<String> =
            crate::db::query("SELECT operation_id FROM baremetal WHERE id = $1")
                .bind(id)
                .fetch_one(&mut tx)
                .await?
                .try_get("operation_id")?;
        if let Some(op) = op {
            if let Prepared::Ok {
                sn, model, power, ..
            } = outcome
            {
                let step = format!(
                    "BMC read: serial {}, model {}, power {}; the server is running",
                    sn.as_deref().unwrap_or("unknown"),
                    model.as_deref().unwrap_or("unknown"),
                    power.to.as_str()
                );
                add_step(&mut tx, &op, &step, now).await?;
            }
            let error = match outcome {
                Prepared::Ok { .. } => None,
                Prepared::Failed(reason) => Some(reason.as_str()),
            };
            self.finish_operation(&mut tx, &op, error, now).await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }
}
