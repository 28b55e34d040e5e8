//! A bare-metal server's power and console columns, each written only by a compare-and-swap
//! on (from, to) that fails when the row moved meanwhile; the power changes seen, with their
//! time and source; and the hardware inventory last read.

use super::{Swap, corrupt};
use crate::db::{Store, StoreError};
use plinth_common::api::{Inventory, PowerChange};
use plinth_common::baremetal::{ConsoleState, PowerState};
use plinth_common::timefmt::rfc3339;

impl Store {
    /// Records a power reading when the row still reads `power.from`; a change is logged with
    /// its time and source. `false` when the row moved meanwhile (or is gone).
    pub async fn swap_baremetal_power(
        &self,
        id: &str,
        power: Swap<PowerState>,
        source: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let changed = power.from != power.to;
        let n = crate::db::query(
            "UPDATE baremetal SET power_state = $1, power_checked_at = $2, \
                power_changed_at = CASE WHEN $3 = 1 THEN $4 ELSE power_changed_at END \
             WHERE id = $5 AND power_state = $6",
        )
        .bind(power.to.as_str())
        .bind(now)
        .bind(changed)
        .bind(now)
        .bind(id)
        .bind(power.from.as_str())
        .execute(&mut tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        if changed {
            log_power(&mut tx, id, power.to, source, now).await?;
            let data = serde_json::json!({ "power_state": power.to.as_str(),
                "from": power.from.as_str(), "source": source });
            crate::events::record_change(&mut tx, crate::events::EventType::Baremetal, id, data)
                .await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    pub async fn baremetal_power_history(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<Vec<PowerChange>, StoreError> {
        let sql = format!(
            "SELECT at, power_state, source FROM baremetal_power_log WHERE server_id = $1 \
             ORDER BY at DESC, {} DESC LIMIT $2",
            self.dialect().insertion_order()
        );
        let rows = crate::db::query(&sql)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let p: &str = r.try_get("power_state")?;
                Ok(PowerChange {
                    at: rfc3339(r.try_get("at")?),
                    power_state: PowerState::parse(p).ok_or_else(|| corrupt("power", p))?,
                    source: r.try_get("source")?,
                })
            })
            .collect()
    }

    /// Sets the console state when the row still reads `console.from`; `false` when it moved
    /// meanwhile (or is gone).
    pub async fn swap_baremetal_console(
        &self,
        id: &str,
        console: Swap<ConsoleState>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = crate::db::query(
            "UPDATE baremetal SET console_state = $1, updated_at = $2 \
             WHERE id = $3 AND console_state = $4",
        )
        .bind(console.to.as_str())
        .bind(now)
        .bind(id)
        .bind(console.from.as_str())
        .execute(&mut tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        let data = serde_json::json!({ "console_state": console.to.as_str(),
            "from": console.from.as_str() });
        crate::events::record_change(&mut tx, crate::events::EventType::Baremetal, id, data)
            .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    pub async fn set_baremetal_inventory(
        &self,
        id: &str,
        inventory: &Inventory,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(inventory)
            .map_err(|e| StoreError::Corrupt(format!("inventory of {id}: {e}")))?;
        // A job's write (the power sync's): fenced by its term like the others.
        let mut tx = self.write().await?;
        crate::db::query("UPDATE baremetal SET inventory_json = $1 WHERE id = $2")
            .bind(text)
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The inventory last read; `None` before the first read.
    pub async fn baremetal_inventory(&self, id: &str) -> Result<Option<Inventory>, StoreError> {
        let row = crate::db::query("SELECT inventory_json FROM baremetal WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(text) = row
            .map(|r| r.try_get::<Option<String>, _>("inventory_json"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("inventory of {id}: {e}")))
    }
}

pub(super) async fn log_power(
    conn: &mut crate::db::Tx,
    id: &str,
    power: PowerState,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    crate::db::query(
        "INSERT INTO baremetal_power_log (server_id, at, power_state, source) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(now)
    .bind(power.as_str())
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baremetal::store::tests::one_server;

    crate::db::store_test! {
    async fn power_changes_are_logged_with_their_time(store, _dir) -> Result<(), StoreError> {
        one_server(&store).await?;
        let id = "bm-0001";
        let swap = |from, to| Swap { from, to };
        use PowerState::{Off, On, Unknown};
        let cases = [
            ("first reading", swap(Unknown, On), "sync", 10, true),
            ("the same again", swap(On, On), "sync", 20, true),
            ("moved meanwhile: refused", swap(Off, On), "sync", 25, false),
            ("an action", swap(On, Off), "action", 30, true),
        ];
        for (label, power, source, now, want) in cases {
            let got = store.swap_baremetal_power(id, power, source, now).await?;
            assert_eq!(got, want, "{label}");
        }
        let history = store.baremetal_power_history(id, 10).await?;
        let got: Vec<_> = history
            .iter()
            .map(|c| (c.power_state, c.source.as_str()))
            .collect();
        assert_eq!(got, [(PowerState::Off, "action"), (PowerState::On, "sync")]);
        let rec = store.baremetal(id).await?.expect("row");
        assert_eq!(rec.server.power_changed_at, Some(rfc3339(30)));
        assert!(
            !store
                .swap_baremetal_power("bm-0404", swap(Unknown, On), "sync", 40)
                .await?,
            "gone"
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn console_changes_only_from_the_state_read(store, _dir) -> Result<(), StoreError> {
        one_server(&store).await?;
        use ConsoleState::{Active, Inactive};
        let cases = [
            ("open", Inactive, Active, true),
            ("open again from a stale read", Inactive, Active, false),
            ("a new URL", Active, Active, true),
            ("release", Active, Inactive, true),
        ];
        for (label, from, to, want) in cases {
            let got = store
                .swap_baremetal_console("bm-0001", Swap { from, to }, 5)
                .await?;
            assert_eq!(got, want, "{label}");
        }
        let rec = store.baremetal("bm-0001").await?.expect("row");
        assert_eq!(rec.server.console_state, Inactive);
        Ok(())
    }
    }
}
