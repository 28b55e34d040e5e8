//! Which agent speaks to each bare-metal server's BMC: new servers get the online IPMI agent
//! with the fewest, servers of an agent that went away move, and agents whose counts differ
//! by two or more are evened out a few servers at a time.

use super::{BaremetalRecord, COLUMNS, FROM, record};
use crate::db::{Store, StoreError};
use plinth_common::baremetal::{BaremetalState, ConsoleState};
use std::collections::HashMap;

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
const ONLINE_IPMI_AGENTS: &str = "SELECT id FROM hosts WHERE ipmi = 1 AND offline_after > $1";

impl Store {
    /// Records whether an agent speaks IPMI (from its heartbeat); writes only on a change.
    pub async fn set_host_ipmi(&self, host_id: &str, ipmi: bool) -> Result<(), StoreError> {
        crate::db::query("UPDATE hosts SET ipmi = $1 WHERE id = $2 AND ipmi != $3")
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
        let rows = crate::db::query(&format!(
            "SELECT h.id, (SELECT COUNT(*) FROM baremetal b WHERE b.agent_host_id = h.id) AS n \
             FROM hosts h WHERE h.id IN ({ONLINE_IPMI_AGENTS}) ORDER BY h.id"
        ))
        .bind(now)
        .fetch_all(&mut tx)
        .await?;
        let mut load: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("n")?)))
            .collect::<Result<_, StoreError>>()?;
        if load.is_empty() {
            return Ok(Vec::new());
        }
        let orphans = crate::db::query(&format!(
            "SELECT id, agent_host_id FROM baremetal \
             WHERE agent_host_id IS NULL OR agent_host_id NOT IN ({ONLINE_IPMI_AGENTS}) \
             ORDER BY created_at, id"
        ))
        .bind(now)
        .fetch_all(&mut tx)
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
            let Some(row) = crate::db::query(
                "SELECT id FROM baremetal WHERE agent_host_id = $1 AND state != $2 \
                 AND console_state = $3 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(&load[most].0)
            .bind(BaremetalState::Preparing.as_str())
            .bind(ConsoleState::Inactive.as_str())
            .fetch_optional(&mut tx)
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
        let rows = crate::db::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE b.state = $1 AND b.agent_host_id IS NOT NULL"
        ))
        .bind(BaremetalState::Running.as_str())
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

async fn set_agent(conn: &mut crate::db::Tx, server: &str, agent: &str) -> Result<(), StoreError> {
    crate::db::query("UPDATE baremetal SET agent_host_id = $1 WHERE id = $2")
        .bind(agent)
        .bind(server)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baremetal::store::Swap;
    use crate::baremetal::store::tests::{row, settle};

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
        crate::db::query("UPDATE hosts SET offline_after = 1000")
            .execute(store.pool())
            .await?;
        Ok(())
    }

    crate::db::store_test! {
    async fn servers_spread_evenly_and_move_when_their_agent_goes_offline(store, _dir) -> Result<(), StoreError>
    {
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
        crate::db::query("UPDATE hosts SET offline_after = 5 WHERE id = 'host-a'")
            .execute(store.pool())
            .await?;
        let moves = store.assign_baremetal_agents(10).await?;
        assert_eq!(moves.len(), 3);
        assert!(moves.iter().all(|m| m.from.as_deref() == Some("host-a")
            && m.to == "host-b"
            && m.why == MoveReason::AgentGone));

        // host-a comes back: three move back to it, but not the one being prepared nor the
        // one with its console open.
        crate::db::query("UPDATE hosts SET offline_after = 1000 WHERE id = 'host-a'")
            .execute(store.pool())
            .await?;
        // All prepared but busy[0]; busy[1] has its console open.
        let busy = ["bm-0006", "bm-0005"];
        for n in 1..=5 {
            assert!(settle(&store, &format!("bm-{n:04}")).await?);
        }
        let open = Swap {
            from: ConsoleState::Inactive,
            to: ConsoleState::Active,
        };
        assert!(store.swap_baremetal_console(busy[1], open, 7).await?);
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
    }

    crate::db::store_test! {
    async fn rebalancing_moves_a_bounded_number_per_call(store, _dir) -> Result<(), StoreError> {
        online_agents(&store, &["host-a", "host-b"], &[true, false]).await?;
        store
            .create_tenant("tenant-1", "t@example.com", "t")
            .await?;
        let rows: Vec<_> = (1..=40).map(|n| row(n, "tenant-1")).collect();
        assert!(store.create_baremetal(&rows, 1).await?.is_ok());
        assert_eq!(store.assign_baremetal_agents(10).await?.len(), 40);
        for r in &rows {
            assert!(settle(&store, &r.id).await?);
        }
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
    }
}
