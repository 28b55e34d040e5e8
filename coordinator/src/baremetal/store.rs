//! Bare-metal servers: the rows, their sealed BMC passwords, which agent speaks to each, and
//! the power changes seen. One BMC address is managed at most once (a unique column, and the
//! add checks every address of a batch in the same write transaction).

use crate::db::{Store, StoreError};
use crate::jobs::operations::NewOperation;
use plinth_common::api::{Baremetal, Inventory, PowerChange};
use plinth_common::baremetal::{BaremetalState, ConsoleState, PowerState};
use plinth_common::timefmt::rfc3339;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;

const COLUMNS: &str = "b.id, b.name, b.tenant_id, t.email AS tenant_email, b.ipmi_ip, \
    b.ipmi_username, b.ipmi_password, b.rack_location, b.label, b.state, b.reason, b.sn, b.model, \
    b.manufacturer, b.power_state, b.power_changed_at, b.console_state, b.agent_host_id, \
    b.operation_id, b.created_at, b.updated_at";
const FROM: &str = "FROM baremetal b JOIN tenants t ON t.id = b.tenant_id";

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
pub const PREPARE: &str = "baremetal_prepare";

#[derive(Debug, Clone, Default)]
pub struct BaremetalFilter {
    pub q: Option<String>,
    pub tenant: Option<String>,
    pub state: Option<BaremetalState>,
    pub limit: u32,
    pub offset: u64,
}

/// How preparation ended.
#[derive(Debug, Clone)]
pub enum Prepared {
    Ok {
        sn: Option<String>,
        model: Option<String>,
        manufacturer: Option<String>,
        power: PowerState,
    },
    Failed(String),
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("bare-metal {what} '{text}'"))
}

fn record(row: &SqliteRow) -> Result<BaremetalRecord, StoreError> {
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
            agent_host_id: row.try_get("agent_host_id")?,
            operation_id: row.try_get("operation_id")?,
            created_at: rfc3339(row.try_get("created_at")?),
            updated_at: rfc3339(row.try_get("updated_at")?),
        },
        username: row.try_get("ipmi_username")?,
        password_sealed: row.try_get("ipmi_password")?,
    })
}

/// `%q%` for LIKE, with LIKE's own characters escaped (`ESCAPE '\'`).
fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Servers one [`Store::assign_baremetal_agents`] call moves to even out agents (it runs every
/// second): enough to spread hundreds within a minute, few enough that the sessions the moves
/// open never crowd one agent's work.
pub const REBALANCE_PER_CALL: usize = 10;

/// A server given to another agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMove {
    pub server: String,
    pub from: Option<String>,
    pub to: String,
    pub why: MoveReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveReason {
    /// A new server's first agent.
    Unassigned,
    /// Its agent went offline or stopped speaking IPMI.
    AgentGone,
    /// Its agent had more servers than another by two or more.
    Rebalance,
}

/// Where online, IPMI-speaking agents are (`?` is now).
const ONLINE_IPMI_AGENTS: &str = "SELECT id FROM hosts WHERE ipmi = 1 AND offline_after > ?";

impl Store {
    /// The tenant with this email: (id, email).
    pub async fn tenant_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT id, email FROM tenants WHERE lower(email) = lower(?)")
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
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT id, ipmi_ip FROM baremetal WHERE ipmi_ip IN (");
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

    /// Adds every row or none: `Err` lists the addresses managed already (a racing add).
    pub async fn create_baremetal(
        &self,
        rows: &[NewServerRow],
        now: i64,
    ) -> Result<Result<(), Vec<String>>, StoreError> {
        let mut tx = self.write().await?;
        let mut taken = Vec::new();
        for r in rows {
            let exists = sqlx::query("SELECT 1 FROM baremetal WHERE ipmi_ip = ?")
                .bind(&r.ipmi_ip)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                taken.push(r.ipmi_ip.clone());
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
            sqlx::query(
                "INSERT INTO baremetal (id, name, tenant_id, ipmi_ip, ipmi_username, ipmi_password, \
                    rack_location, label, state, operation_id, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'preparing', ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.tenant_id)
            .bind(&r.ipmi_ip)
            .bind(&r.username)
            .bind(&r.password_sealed)
            .bind(&r.rack_location)
            .bind(&r.label)
            .bind(&r.operation_id)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn baremetal(&self, id: &str) -> Result<Option<BaremetalRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE b.id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    pub async fn list_baremetal(
        &self,
        f: &BaremetalFilter,
    ) -> Result<(Vec<Baremetal>, u64), StoreError> {
        let push_filters = |query: &mut QueryBuilder<'_, Sqlite>| {
            query.push(" WHERE 1 = 1");
            if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
                // Newline-separated so a search never matches across two fields.
                query
                    .push(
                        " AND lower(b.name || char(10) || b.id || char(10) || b.ipmi_ip || char(10) || \
                         coalesce(b.sn, '') || char(10) || coalesce(b.model, '') || char(10) || \
                         b.rack_location || char(10) || coalesce(b.label, '') || char(10) || t.email) LIKE ",
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
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) AS n {FROM}"));
        push_filters(&mut query);
        let total: i64 = query.build().fetch_one(self.pool()).await?.try_get("n")?;
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} {FROM}"));
        push_filters(&mut query);
        query
            .push(" ORDER BY b.created_at DESC, b.id LIMIT ")
            .push_bind(i64::from(f.limit))
            .push(" OFFSET ")
            .push_bind(f.offset.min(i64::MAX as u64) as i64);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| Ok(record(r)?.server))
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }

    /// Servers still `preparing` (a restarted coordinator prepares them again).
    pub async fn preparing_baremetal(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM baremetal WHERE state = 'preparing'")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?)
    }

    /// Ends preparation; `false` when the server is gone or no longer preparing.
    pub async fn finish_prepare(
        &self,
        id: &str,
        outcome: &Prepared,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = match outcome {
            Prepared::Ok {
                sn,
                model,
                manufacturer,
                power,
            } => {
                let n = sqlx::query(
                    "UPDATE baremetal SET state = 'running', reason = NULL, sn = ?, model = ?, \
                        manufacturer = ?, power_state = ?, power_changed_at = ?, \
                        power_checked_at = ?, updated_at = ? \
                     WHERE id = ? AND state = 'preparing'",
                )
                .bind(sn)
                .bind(model)
                .bind(manufacturer)
                .bind(power.as_str())
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    log_power(&mut tx, id, *power, "prepare", now).await?;
                }
                n == 1
            }
            Prepared::Failed(reason) => {
                sqlx::query(
                    "UPDATE baremetal SET state = 'failed', reason = ?, updated_at = ? \
                     WHERE id = ? AND state = 'preparing'",
                )
                .bind(reason)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1
            }
        };
        if done {
            let op: Option<String> = sqlx::query("SELECT operation_id FROM baremetal WHERE id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("operation_id")?;
            if let Some(op) = op {
                let error = match outcome {
                    Prepared::Ok { .. } => None,
                    Prepared::Failed(reason) => Some(reason.as_str()),
                };
                self.finish_operation(&mut tx, &op, error, now).await?;
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Rack location and label; `None` leaves a field as it is, an empty label clears it.
    pub async fn update_baremetal(
        &self,
        id: &str,
        rack_location: Option<&str>,
        label: Option<Option<&str>>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE baremetal SET rack_location = coalesce(?, rack_location), \
                label = CASE WHEN ? THEN ? ELSE label END, updated_at = ? WHERE id = ?",
        )
        .bind(rack_location)
        .bind(label.is_some())
        .bind(label.flatten())
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Removes a server from management; returns what it was.
    pub async fn delete_baremetal(&self, id: &str) -> Result<Option<BaremetalRecord>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE b.id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
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
        sqlx::query("DELETE FROM baremetal WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    /// Records a power reading; a change is logged with its time and source. Returns the
    /// previous state when it changed.
    pub async fn set_baremetal_power(
        &self,
        id: &str,
        power: PowerState,
        source: &str,
        now: i64,
    ) -> Result<Option<PowerState>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT power_state FROM baremetal WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let before: &str = row.try_get("power_state")?;
        let before = PowerState::parse(before).ok_or_else(|| corrupt("power", before))?;
        let changed = before != power;
        sqlx::query(
            "UPDATE baremetal SET power_state = ?, power_checked_at = ?, \
                power_changed_at = CASE WHEN ? THEN ? ELSE power_changed_at END WHERE id = ?",
        )
        .bind(power.as_str())
        .bind(now)
        .bind(changed)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if changed {
            log_power(&mut tx, id, power, source, now).await?;
        }
        tx.commit().await?;
        Ok(changed.then_some(before))
    }

    pub async fn baremetal_power_history(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<Vec<PowerChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, power_state, source FROM baremetal_power_log WHERE server_id = ? \
             ORDER BY at DESC, rowid DESC LIMIT ?",
        )
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

    pub async fn set_baremetal_console(
        &self,
        id: &str,
        state: ConsoleState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE baremetal SET console_state = ?, updated_at = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn set_baremetal_inventory(
        &self,
        id: &str,
        inventory: &Inventory,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(inventory)
            .map_err(|e| StoreError::Corrupt(format!("inventory of {id}: {e}")))?;
        sqlx::query("UPDATE baremetal SET inventory_json = ? WHERE id = ?")
            .bind(text)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The inventory last read; `None` before the first read.
    pub async fn baremetal_inventory(&self, id: &str) -> Result<Option<Inventory>, StoreError> {
        let row = sqlx::query("SELECT inventory_json FROM baremetal WHERE id = ?")
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

    /// Records whether an agent speaks IPMI (from its heartbeat); writes only on a change.
    pub async fn set_host_ipmi(&self, host_id: &str, ipmi: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE hosts SET ipmi = ? WHERE id = ? AND ipmi != ?")
            .bind(ipmi)
            .bind(host_id)
            .bind(ipmi)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Gives every server without an online IPMI agent (none yet, or its agent went offline or
    /// stopped speaking IPMI) to the online IPMI agent with the fewest servers, then evens
    /// out agents whose counts differ by more than one (an agent that joined or came back
    /// takes its share), at most [`REBALANCE_PER_CALL`] servers a call and never one being
    /// prepared or with its console open.
    pub async fn assign_baremetal_agents(&self, now: i64) -> Result<Vec<AgentMove>, StoreError> {
        let mut tx = self.write().await?;
        let rows = sqlx::query(&format!(
            "SELECT h.id, (SELECT COUNT(*) FROM baremetal b WHERE b.agent_host_id = h.id) AS n \
             FROM hosts h WHERE h.id IN ({ONLINE_IPMI_AGENTS}) ORDER BY h.id"
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut load: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("n")?)))
            .collect::<Result<_, StoreError>>()?;
        if load.is_empty() {
            return Ok(Vec::new());
        }
        let orphans = sqlx::query(&format!(
            "SELECT id, agent_host_id FROM baremetal \
             WHERE agent_host_id IS NULL OR agent_host_id NOT IN ({ONLINE_IPMI_AGENTS}) \
             ORDER BY created_at, id"
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut moves = Vec::new();
        for o in &orphans {
            let id: String = o.try_get("id")?;
            let from: Option<String> = o.try_get("agent_host_id")?;
            // Fewest servers first; ties go to the first by id, so a sweep is deterministic.
            let Some(slot) = load.iter_mut().min_by_key(|(_, n)| *n) else {
                break;
            };
            slot.1 += 1;
            set_agent(&mut tx, &id, &slot.0).await?;
            moves.push(AgentMove {
                why: if from.is_some() {
                    MoveReason::AgentGone
                } else {
                    MoveReason::Unassigned
                },
                server: id,
                from,
                to: slot.0.clone(),
            });
        }
        for _ in 0..REBALANCE_PER_CALL {
            // Most loaded and least loaded; ties go to the first by id, as above.
            let (Some(most), Some(least)) = (
                (0..load.len()).rev().max_by_key(|&i| load[i].1),
                (0..load.len()).min_by_key(|&i| load[i].1),
            ) else {
                break;
            };
            if load[most].1 - load[least].1 <= 1 {
                break;
            }
            let Some(row) = sqlx::query(
                "SELECT id FROM baremetal WHERE agent_host_id = ? AND state != 'preparing' \
                 AND console_state = 'inactive' ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(&load[most].0)
            .fetch_optional(&mut *tx)
            .await?
            else {
                break;
            };
            let id: String = row.try_get("id")?;
            set_agent(&mut tx, &id, &load[least].0).await?;
            load[most].1 -= 1;
            load[least].1 += 1;
            moves.push(AgentMove {
                server: id,
                from: Some(load[most].0.clone()),
                to: load[least].0.clone(),
                why: MoveReason::Rebalance,
            });
        }
        tx.commit().await?;
        Ok(moves)
    }

    /// Running servers by their agent, for the power sweep.
    pub async fn baremetal_by_agent(
        &self,
    ) -> Result<HashMap<String, Vec<BaremetalRecord>>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE b.state = 'running' AND b.agent_host_id IS NOT NULL"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<BaremetalRecord>> = HashMap::new();
        for r in &rows {
            let rec = record(r)?;
            if let Some(agent) = rec.server.agent_host_id.clone() {
                out.entry(agent).or_default().push(rec);
            }
        }
        Ok(out)
    }
}

async fn set_agent(
    conn: &mut sqlx::SqliteConnection,
    server: &str,
    agent: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE baremetal SET agent_host_id = ? WHERE id = ?")
        .bind(agent)
        .bind(server)
        .execute(conn)
        .await?;
    Ok(())
}

async fn log_power(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    power: PowerState,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO baremetal_power_log (server_id, at, power_state, source) VALUES (?, ?, ?, ?)",
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
    use crate::db::test_store;

    async fn online_agents(store: &Store, ids: &[&str], ipmi: &[bool]) -> Result<(), StoreError> {
        store.create_cluster("az1", "az1").await?;
        for (n, (id, ipmi)) in ids.iter().zip(ipmi).enumerate() {
            let ip = format!("10.0.0.{}", n + 1);
            let h = crate::hosts::store::NewHost {
                id,
                ip: &ip,
                hostname: id,
                cluster_id: "az1",
                cert_expires_at: 0,
                now: 1,
            };
            store.insert_host_with_facts(&h, "cpu", 8, 1 << 30).await?;
            store.set_host_ipmi(id, *ipmi).await?;
        }
        sqlx::query("UPDATE hosts SET offline_after = 1000")
            .execute(store.pool())
            .await?;
        Ok(())
    }

    fn row(n: u32, tenant: &str) -> NewServerRow {
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

    #[tokio::test]
    async fn servers_spread_evenly_and_move_when_their_agent_goes_offline() -> Result<(), StoreError>
    {
        let (store, _dir) = test_store().await;
        online_agents(
            &store,
            &["host-a", "host-b", "host-c"],
            &[true, true, false],
        )
        .await?;
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        let rows: Vec<_> = (1..=6).map(|n| row(n, "tenant-1")).collect();
        assert!(store.create_baremetal(&rows, 1).await?.is_ok());
        let moves = store.assign_baremetal_agents(10).await?;
        assert_eq!(moves.len(), 6);
        let count = |who: &str| moves.iter().filter(|m| m.to == who).count();
        assert_eq!(
            (count("host-a"), count("host-b"), count("host-c")),
            (3, 3, 0)
        );
        assert!(
            store.assign_baremetal_agents(10).await?.is_empty(),
            "settled"
        );
        // host-a goes offline: its three move to host-b, the only IPMI agent left.
        sqlx::query("UPDATE hosts SET offline_after = 5 WHERE id = 'host-a'")
            .execute(store.pool())
            .await?;
        let moves = store.assign_baremetal_agents(10).await?;
        assert_eq!(moves.len(), 3);
        assert!(moves.iter().all(|m| m.from.as_deref() == Some("host-a")
            && m.to == "host-b"
            && m.why == MoveReason::AgentGone));

        // host-a comes back: three move back to it, but not the one being prepared nor the
        // one with its console open.
        sqlx::query("UPDATE hosts SET offline_after = 1000 WHERE id = 'host-a'")
            .execute(store.pool())
            .await?;
        sqlx::query("UPDATE baremetal SET state = 'running'")
            .execute(store.pool())
            .await?;
        let busy = ["bm-0006", "bm-0005"];
        sqlx::query("UPDATE baremetal SET state = 'preparing' WHERE id = ?")
            .bind(busy[0])
            .execute(store.pool())
            .await?;
        sqlx::query("UPDATE baremetal SET console_state = 'active' WHERE id = ?")
            .bind(busy[1])
            .execute(store.pool())
            .await?;
        let moves = store.assign_baremetal_agents(10).await?;
        assert_eq!(moves.len(), 3, "{moves:?}");
        assert!(moves.iter().all(|m| m.from.as_deref() == Some("host-b")
            && m.to == "host-a"
            && m.why == MoveReason::Rebalance
            && !busy.contains(&m.server.as_str())));
        assert!(
            store.assign_baremetal_agents(10).await?.is_empty(),
            "3 and 3: even"
        );
        Ok(())
    }

    #[tokio::test]
    async fn rebalancing_moves_a_bounded_number_per_call() -> Result<(), StoreError> {
        let (store, _dir) = test_store().await;
        online_agents(&store, &["host-a", "host-b"], &[true, false]).await?;
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        let rows: Vec<_> = (1..=40).map(|n| row(n, "tenant-1")).collect();
        assert!(store.create_baremetal(&rows, 1).await?.is_ok());
        assert_eq!(store.assign_baremetal_agents(10).await?.len(), 40);
        sqlx::query("UPDATE baremetal SET state = 'running'")
            .execute(store.pool())
            .await?;
        // host-b starts speaking IPMI: 20 of the 40 are its share, 10 a call.
        store.set_host_ipmi("host-b", true).await?;
        for _ in 0..2 {
            let moves = store.assign_baremetal_agents(10).await?;
            assert_eq!(moves.len(), REBALANCE_PER_CALL);
            assert!(moves.iter().all(|m| m.to == "host-b"));
        }
        assert!(store.assign_baremetal_agents(10).await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn one_bmc_address_is_managed_once() -> Result<(), StoreError> {
        let (store, _dir) = test_store().await;
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        assert!(
            store
                .create_baremetal(&[row(1, "tenant-1")], 1)
                .await?
                .is_ok()
        );
        let mut again = row(2, "tenant-1");
        again.ipmi_ip = "10.9.0.1".into();
        let refused = store
            .create_baremetal(&[row(3, "tenant-1"), again], 1)
            .await?;
        assert_eq!(refused, Err(vec!["10.9.0.1".to_string()]));
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

    #[tokio::test]
    async fn power_changes_are_logged_with_their_time() -> Result<(), StoreError> {
        let (store, _dir) = test_store().await;
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        assert!(
            store
                .create_baremetal(&[row(1, "tenant-1")], 1)
                .await?
                .is_ok()
        );
        let id = "bm-0001";
        assert_eq!(
            store
                .set_baremetal_power(id, PowerState::On, "sync", 10)
                .await?,
            Some(PowerState::Unknown)
        );
        assert_eq!(
            store
                .set_baremetal_power(id, PowerState::On, "sync", 20)
                .await?,
            None
        );
        assert_eq!(
            store
                .set_baremetal_power(id, PowerState::Off, "action", 30)
                .await?,
            Some(PowerState::On)
        );
        let history = store.baremetal_power_history(id, 10).await?;
        let got: Vec<_> = history
            .iter()
            .map(|c| (c.power_state, c.source.as_str()))
            .collect();
        assert_eq!(got, [(PowerState::Off, "action"), (PowerState::On, "sync")]);
        let rec = store.baremetal(id).await?.expect("row");
        assert_eq!(rec.server.power_changed_at, Some(rfc3339(30)));
        Ok(())
    }
}
