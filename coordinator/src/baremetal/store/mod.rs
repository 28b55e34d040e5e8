//! Bare-metal servers: the rows and their sealed BMC passwords, added (one BMC address is
//! managed at most once: a unique column, and the add checks every address of a batch in the
//! same write transaction), listed and removed; preparation's end. The state, power and
//! console columns change only by a compare-and-swap on (from, to); power and console are in
//! power.rs, preparation's end in prepared.rs, sensors and the event log in health.rs, which
//! agent speaks to each server in agents.rs.

mod agents;
mod health;
mod power;
mod power_ops;
mod prepared;

pub use agents::{AgentMove, MoveReason, REBALANCE_PER_CALL};
pub use health::{EVENTS_KEPT, HealthRead};
pub use power_ops::{PowerJob, PowerParams};
pub use prepared::Prepared;

use crate::db::{
    Keyed, Order, QueryBuilder, Store, StoreError, like_pattern, push_after, push_order,
};
use crate::events::{EventType, record_change};
use crate::jobs::operations::{NewOperation, add_step};
use plinth_common::api::Baremetal;
use plinth_common::baremetal::{BaremetalState, ConsoleState, PowerState};
use plinth_common::timefmt::rfc3339;
use std::collections::HashMap;

pub(crate) const COLUMNS: &str = "b.id, b.name, b.tenant_id, t.email AS tenant_email, b.ipmi_ip, \
    b.ipmi_username, b.ipmi_password, b.rack_location, b.label, b.state, b.reason, b.sn, b.model, \
    b.manufacturer, b.power_state, b.power_changed_at, b.console_state, b.agent_host_id, \
    b.operation_id, b.created_at, b.updated_at, h.health, h.worst_sensor, \
    h.read_at AS health_read_at";
pub(crate) const FROM: &str = "FROM baremetal b JOIN tenants t ON t.id = b.tenant_id \
    LEFT JOIN baremetal_health h ON h.server_id = b.id";

/// A server as stored: what the API shows, plus the credentials only agents get.
#[derive(Clone)]
pub struct BaremetalRecord {
    pub server: Baremetal,
    pub username: String,
    pub password_sealed: String,
}

impl std::fmt::Debug for BaremetalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BaremetalRecord({})", self.server.id)
    }
}

/// A server to add, checked and with its password sealed.
#[derive(Debug, Clone)]
pub struct NewServerRow {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub ipmi_ip: String,
    pub username: String,
    pub password_sealed: String,
    pub rack_location: String,
    pub label: Option<String>,
    /// The preparation's operation, written with the row.
    pub operation_id: String,
}

/// The operation kind of a preparation.
pub const PREPARE: &str = plinth_common::api::operation_kinds::BAREMETAL_PREPARE;

#[derive(Debug, Clone, Default)]
pub struct BaremetalFilter {
    pub q: Option<String>,
    pub tenant: Option<String>,
    pub state: Option<BaremetalState>,
    /// How many servers to read (a page request's `fetch`).
    pub limit: u32,
    /// The last server shown, (created_at, id): the page holds those after it, newest first.
    pub after: Option<(i64, String)>,
}

/// A state column's change, applied only while the row still reads `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap<S> {
    pub from: S,
    pub to: S,
}

pub(crate) fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("bare-metal {what} '{text}'"))
}

pub(crate) fn record(row: &crate::db::Row) -> Result<BaremetalRecord, StoreError> {
    let state: &str = row.try_get("state")?;
    let power: &str = row.try_get("power_state")?;
    let console: &str = row.try_get("console_state")?;
    Ok(BaremetalRecord {
        server: Baremetal {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            state: BaremetalState::parse(state).ok_or_else(|| corrupt("state", state))?,
            reason: row.try_get("reason")?,
            sn: row.try_get("sn")?,
            ipmi_ip: row.try_get("ipmi_ip")?,
            tenant_id: row.try_get("tenant_id")?,
            tenant_email: row.try_get("tenant_email")?,
            model: row.try_get("model")?,
            manufacturer: row.try_get("manufacturer")?,
            rack_location: row.try_get("rack_location")?,
            label: row.try_get("label")?,
            power_state: PowerState::parse(power).ok_or_else(|| corrupt("power", power))?,
            power_changed_at: row
                .try_get::<Option<i64>, _>("power_changed_at")?
                .map(rfc3339),
            console_state: ConsoleState::parse(console)
                .ok_or_else(|| corrupt("console", console))?,
            health: health::summary(row)?,
            agent_host_id: row.try_get("agent_host_id")?,
            operation_id: row.try_get("operation_id")?,
            created_at: rfc3339(row.try_get("created_at")?),
            updated_at: rfc3339(row.try_get("updated_at")?),
        },
        username: row.try_get("ipmi_username")?,
        password_sealed: row.try_get("ipmi_password")?,
    })
}

/// A server that manages a BMC address an add asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcHolder {
    pub ipmi_ip: String,
    pub server_id: String,
    pub tenant_id: String,
}

impl Store {
    /// The tenant with this email: (id, email).
    pub async fn tenant_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = crate::db::query("SELECT id, email FROM tenants WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("email")?)))
            .transpose()
    }

    /// Which of `ips` are managed already: address → server id.
    pub async fn baremetal_ips_taken(
        &self,
        ips: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        if ips.is_empty() {
            return Ok(HashMap::new());
        }
        let mut q = QueryBuilder::new("SELECT id, ipmi_ip FROM baremetal WHERE ipmi_ip IN (");
        let mut list = q.separated(", ");
        for ip in ips {
            list.push_bind(ip);
        }
        list.push_unseparated(")");
        let rows = q.build().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("ipmi_ip")?, r.try_get("id")?)))
            .collect()
    }

    /// Adds every row or none: `Err` names the addresses managed already and the servers that
    /// manage them.
    pub async fn create_baremetal(
        &self,
        rows: &[NewServerRow],
        now: i64,
    ) -> Result<Result<(), Vec<BmcHolder>>, StoreError> {
        let mut tx = self.write().await?;
        let mut taken = Vec::new();
        for r in rows {
            let holder = crate::db::query("SELECT id, tenant_id FROM baremetal WHERE ipmi_ip = $1")
                .bind(&r.ipmi_ip)
                .fetch_optional(&mut tx)
                .await?;
            if let Some(holder) = holder {
                taken.push(BmcHolder {
                    ipmi_ip: r.ipmi_ip.clone(),
                    server_id: holder.try_get("id")?,
                    tenant_id: holder.try_get("tenant_id")?,
                });
            }
        }
        if !taken.is_empty() {
            return Ok(Err(taken));
        }
        for r in rows {
            let op = NewOperation {
                id: &r.operation_id,
                kind: PREPARE,
                target_id: &r.id,
                owner_tenant_id: Some(&r.tenant_id),
                now,
            };
            self.insert_operation(&mut tx, &op).await?;
            let step = "added; waiting for an agent that reaches its BMC";
            add_step(&mut tx, op.id, step, now).await?;
            crate::db::query(
                "INSERT INTO baremetal (id, name, tenant_id, ipmi_ip, ipmi_username, ipmi_password, \
                    rack_location, label, state, operation_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.tenant_id)
            .bind(&r.ipmi_ip)
            .bind(&r.username)
            .bind(&r.password_sealed)
            .bind(&r.rack_location)
            .bind(&r.label)
            .bind(BaremetalState::Preparing.as_str())
            .bind(&r.operation_id)
            .bind(now)
            .bind(now)
            .execute(&mut tx)
            .await?;
            let data = serde_json::json!({ "created": true,
                "state": BaremetalState::Preparing.as_str(), "name": r.name });
            record_change(&mut tx, EventType::Baremetal, &r.id, data).await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(Ok(()))
    }

    pub async fn baremetal(&self, id: &str) -> Result<Option<BaremetalRecord>, StoreError> {
        let row = crate::db::query(&format!("SELECT {COLUMNS} {FROM} WHERE b.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// A server's three state columns, (state, power, console), as an operation reads them
    /// before its compare-and-swap; `None` when the server is gone.
    pub async fn baremetal_states(
        &self,
        id: &str,
    ) -> Result<Option<(BaremetalState, PowerState, ConsoleState)>, StoreError> {
        let row = crate::db::query(
            "SELECT state, power_state, console_state FROM baremetal WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (state, power, console): (&str, &str, &str) = (
            row.try_get("state")?,
            row.try_get("power_state")?,
            row.try_get("console_state")?,
        );
        Ok(Some((
            BaremetalState::parse(state).ok_or_else(|| corrupt("state", state))?,
            PowerState::parse(power).ok_or_else(|| corrupt("power", power))?,
            ConsoleState::parse(console).ok_or_else(|| corrupt("console", console))?,
        )))
    }

    /// A page of servers (newest first, with their (created_at, id) places) and how many match
    /// the filter in all.
    pub async fn list_baremetal(
        &self,
        f: &BaremetalFilter,
    ) -> Result<(Vec<Keyed<i64, Baremetal>>, u64), StoreError> {
        let push_filters = |query: &mut QueryBuilder<'_>| {
            query.push(" WHERE 1 = 1");
            if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
                // Newline-separated so a search never matches across two fields.
                query
                    .push(
                        " AND lower(b.name || '\n' || b.id || '\n' || b.ipmi_ip || '\n' || \
                         coalesce(b.sn, '') || '\n' || coalesce(b.model, '') || '\n' || \
                         b.rack_location || '\n' || coalesce(b.label, '') || '\n' || t.email) LIKE ",
                    )
                    .push_bind(like_pattern(q))
                    .push(" ESCAPE '\\'");
            }
            if let Some(t) = &f.tenant {
                query.push(" AND b.tenant_id = ").push_bind(t.clone());
            }
            if let Some(s) = f.state {
                query.push(" AND b.state = ").push_bind(s.as_str());
            }
        };
        let mut query = QueryBuilder::new(format!("SELECT COUNT(*) AS n {FROM}"));
        push_filters(&mut query);
        let total: i64 = query.build().fetch_one(self.pool()).await?.try_get("n")?;
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} {FROM}"));
        push_filters(&mut query);
        let (key, id) = ("b.created_at", "b.id");
        push_after(&mut query, key, id, Order::Desc, f.after.as_ref());
        push_order(&mut query, key, id, Order::Desc, f.limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| {
                let server = record(r)?.server;
                Ok(((r.try_get("created_at")?, server.id.clone()), server))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }

    /// Rack location and label; `None` leaves a field as it is, an empty label clears it.
    pub async fn update_baremetal(
        &self,
        id: &str,
        rack_location: Option<&str>,
        label: Option<Option<&str>>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let n = crate::db::query(
            "UPDATE baremetal SET rack_location = coalesce($1, rack_location), \
                label = CASE WHEN $2 = 1 THEN $3 ELSE label END, updated_at = $4 WHERE id = $5",
        )
        .bind(rack_location)
        .bind(label.is_some())
        .bind(label.flatten())
        .bind(now)
        .bind(id)
        .execute(&mut tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        // The fields the request gave, as they are now (`null`: the label cleared).
        let mut data = serde_json::Map::new();
        if let Some(rack) = rack_location {
            data.insert("rack_location".into(), rack.into());
        }
        if let Some(label) = label {
            data.insert("label".into(), label.into());
        }
        record_change(&mut tx, EventType::Baremetal, id, data.into()).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    /// Removes a server from management; returns what it was.
    pub async fn delete_baremetal(&self, id: &str) -> Result<Option<BaremetalRecord>, StoreError> {
        let mut tx = self.write().await?;
        let row = crate::db::query(&format!("SELECT {COLUMNS} {FROM} WHERE b.id = $1"))
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rec = record(&row)?;
        if rec.server.state == BaremetalState::Preparing
            && let Some(op) = &rec.server.operation_id
        {
            let now = plinth_common::timefmt::now_ms();
            let reason = "the server was deleted while preparing";
            self.finish_operation(&mut tx, op, Some(reason), now)
                .await?;
        }
        // Before the delete: the event's tenant is read from the row.
        let data = serde_json::json!({ "deleted": true });
        record_change(&mut tx, EventType::Baremetal, id, data).await?;
        crate::db::query("DELETE FROM baremetal WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(Some(rec))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn row(n: u32, tenant: &str) -> NewServerRow {
        NewServerRow {
            id: format!("bm-{n:04}"),
            name: format!("server-{n}"),
            tenant_id: tenant.into(),
            ipmi_ip: format!("10.9.0.{n}"),
            username: "admin".into(),
            password_sealed: "v1:sealed".into(),
            rack_location: "R1".into(),
            label: None,
            operation_id: format!("op-{n:04}"),
        }
    }

    /// Tenant `tenant-1` and its server `bm-0001` (BMC 10.9.0.1), preparing.
    pub(super) async fn one_server(store: &Store) -> Result<(), StoreError> {
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        assert!(
            store
                .create_baremetal(&[row(1, "tenant-1")], 1)
                .await?
                .is_ok()
        );
        Ok(())
    }

    /// Ends the preparation of `id` as prepared, powered off, through the compare-and-swap.
    pub(super) async fn settle(store: &Store, id: &str) -> Result<bool, StoreError> {
        let outcome = Prepared::Ok {
            sn: None,
            model: None,
            manufacturer: None,
            power: Swap {
                from: PowerState::Unknown,
                to: PowerState::Off,
            },
        };
        let state = Swap {
            from: BaremetalState::Preparing,
            to: BaremetalState::Running,
        };
        store.swap_prepared(id, state, &outcome, 5).await
    }

    crate::db::store_test! {
    async fn one_bmc_address_is_managed_once(store, _dir) -> Result<(), StoreError> {
        one_server(&store).await?;
        let mut again = row(2, "tenant-1");
        again.ipmi_ip = "10.9.0.1".into();
        let refused = store
            .create_baremetal(&[row(3, "tenant-1"), again], 1)
            .await?;
        let holder = BmcHolder {
            ipmi_ip: "10.9.0.1".into(),
            server_id: "bm-0001".into(),
            tenant_id: "tenant-1".into(),
        };
        assert_eq!(refused, Err(vec![holder]));
        assert!(
            store.baremetal("bm-0003").await?.is_none(),
            "nothing of the batch"
        );
        store.delete_baremetal("bm-0001").await?;
        let mut again = row(2, "tenant-1");
        again.ipmi_ip = "10.9.0.1".into();
        assert!(
            store.create_baremetal(&[again], 1).await?.is_ok(),
            "free after delete"
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn preparation_ends_once_and_only_from_the_state_read(store, _dir) -> Result<(), StoreError> {
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        let rows = [row(1, "tenant-1"), row(2, "tenant-1")];
        assert!(store.create_baremetal(&rows, 1).await?.is_ok());
        assert_eq!(store.preparing_baremetal().await?.len(), 2);
        assert!(settle(&store, "bm-0001").await?, "preparing: swapped");
        assert!(!settle(&store, "bm-0001").await?, "running already: moved");
        let failed = Prepared::Failed("the BMC did not answer".into());
        let to_failed = Swap {
            from: BaremetalState::Preparing,
            to: BaremetalState::Failed,
        };
        assert!(
            !store
                .swap_prepared("bm-0001", to_failed, &failed, 6)
                .await?,
            "a late failure does not overwrite running"
        );
        assert!(
            store
                .swap_prepared("bm-0002", to_failed, &failed, 6)
                .await?
        );
        assert!(
            !store
                .swap_prepared("bm-0404", to_failed, &failed, 6)
                .await?,
            "gone"
        );
        let got = |id: &'static str| {
            let store = store.clone();
            async move { Ok::<_, StoreError>(store.baremetal(id).await?.map(|r| r.server)) }
        };
        let one = got("bm-0001").await?.expect("row");
        assert_eq!(
            (one.state, one.power_state),
            (BaremetalState::Running, PowerState::Off)
        );
        let two = got("bm-0002").await?.expect("row");
        assert_eq!(two.state, BaremetalState::Failed);
        assert_eq!(two.reason.as_deref(), Some("the BMC did not answer"));
        assert!(store.preparing_baremetal().await?.is_empty());
        Ok(())
    }
    }

    crate::db::store_test! {
    /// Newest first, ties by id; servers added between pages and a state filter with a cursor.
    async fn pages_follow_the_cursor_through_inserts_and_filters(store, _dir) -> Result<(), StoreError> {
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        for (n, at) in [(1, 100), (2, 200), (3, 200), (4, 50)] {
            let made = store.create_baremetal(&[row(n, "tenant-1")], at).await?;
            assert!(made.is_ok());
        }
        let read = |limit, after| {
            let filter = BaremetalFilter {
                limit,
                after,
                ..Default::default()
            };
            let store = &store;
            async move { store.list_baremetal(&filter).await }
        };
        let between = || async {
            for (n, at) in [(5, 300), (6, 200)] {
                let made = store.create_baremetal(&[row(n, "tenant-1")], at).await?;
                assert!(made.is_ok());
            }
            Ok(())
        };
        let (places, total) = crate::db::test_walk(read, between, crate::db::test_desc).await?;
        let ids: Vec<&str> = places.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids, ["bm-0002", "bm-0003", "bm-0006", "bm-0001", "bm-0004"]);
        assert_eq!(total, 6);
        assert!(settle(&store, "bm-0001").await? && settle(&store, "bm-0004").await?);
        let running = BaremetalFilter {
            state: Some(BaremetalState::Running),
            limit: 5,
            after: Some((100, "bm-0001".into())),
            ..Default::default()
        };
        let (rows, total) = store.list_baremetal(&running).await?;
        let ids: Vec<&str> = rows.iter().map(|(_, b)| b.id.as_str()).collect();
        assert_eq!((ids, total), (vec!["bm-0004"], 2));
        Ok(())
    }
    }
}
