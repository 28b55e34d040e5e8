//! Compute hosts: enrollment, heartbeats, the filtered list, and state transitions.

pub mod certificates;
pub mod clusters;
pub mod enrollment;
pub mod index;

use crate::agents::{AgentEndpoint, socket_host};
use crate::db::{QueryBuilder, Store, StoreError};
use crate::hosts::store::index::{Capacity, HostIndex, IndexEntry};
use crate::scheduler::Candidate;
use plinth_common::api::{AgentStatus, Domain, Heartbeat, Host, HostDetail};
use plinth_common::host::{HostEvent, HostState, InvalidTransition};
use plinth_common::timefmt::rfc3339;
use std::collections::HashMap;

const LIST_COLUMNS: &str = "id, ip, hostname, cluster_id, cpu_model, total_cores, allocated_cores, \
    total_memory_bytes, allocated_memory_bytes, state, updated_at, last_seen, offline_after";

const INDEX_COLUMNS: &str = "cluster_id, state, offline_after, search_text, total_cores, \
    allocated_cores, total_memory_bytes, allocated_memory_bytes, nics";

/// A host as first written, at enrollment (facts arrive with the first heartbeat).
#[derive(Debug, Clone)]
pub struct NewHost<'a> {
    pub id: &'a str,
    pub ip: &'a str,
    pub hostname: &'a str,
    pub cluster_id: &'a str,
    pub cert_expires_at: i64,
    pub now: i64,
}

#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    pub q: Option<String>,
    pub cluster: Option<String>,
    pub state: Option<HostState>,
    pub agent: Option<AgentStatus>,
    /// How many hosts to read (a page request's `fetch`).
    pub limit: u32,
    /// The last host shown, (cluster, id): the page holds the hosts after it.
    pub after: Option<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such host")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a heartbeat changed in the agent's announced presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    /// The agent's window had closed without that being announced yet.
    pub went_offline: bool,
    pub came_online: bool,
}

pub(crate) fn search_text(id: &str, ip: &str, cluster: &str, cpu_model: &str) -> String {
    // Newline-separated so a search never matches across two fields (q may not hold one).
    format!("{id}\n{ip}\n{cluster}\n{cpu_model}").to_lowercase()
}

fn index_entry(row: &crate::db::Row) -> Result<IndexEntry, StoreError> {
    Ok(IndexEntry {
        state: parse_state(row.try_get("state")?)?,
        offline_after: row.try_get("offline_after")?,
        search_text: row.try_get("search_text")?,
        capacity: Capacity {
            total_cores: row.try_get::<i64, _>("total_cores")? as u32,
            allocated_cores: row.try_get::<i64, _>("allocated_cores")? as u32,
            total_memory_bytes: row.try_get::<i64, _>("total_memory_bytes")? as u64,
            allocated_memory_bytes: row.try_get::<i64, _>("allocated_memory_bytes")? as u64,
        },
        free_gpus: Vec::new(),
        nics: parse_nics(row.try_get("nics")?)?,
    })
}

fn parse_nics(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("host NICs: {e}")))
}

fn parse_state(text: &str) -> Result<HostState, StoreError> {
    HostState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("host state '{text}'")))
}

fn host(row: &crate::db::Row, now: i64) -> Result<Host, StoreError> {
    let offline_after: Option<i64> = row.try_get("offline_after")?;
    Ok(Host {
        id: row.try_get("id")?,
        ip: row.try_get("ip")?,
        hostname: row.try_get("hostname")?,
        cluster_id: row.try_get("cluster_id")?,
        cpu_model: row.try_get("cpu_model")?,
        total_cores: row.try_get::<i64, _>("total_cores")? as u32,
        allocated_cores: row.try_get::<i64, _>("allocated_cores")? as u32,
        total_memory_bytes: row.try_get::<i64, _>("total_memory_bytes")? as u64,
        allocated_memory_bytes: row.try_get::<i64, _>("allocated_memory_bytes")? as u64,
        state: parse_state(row.try_get("state")?)?,
        updated_at: rfc3339(row.try_get("updated_at")?),
        agent: if offline_after.is_some_and(|t| now < t) {
            AgentStatus::Online
        } else {
            AgentStatus::Offline
        },
        last_seen: row.try_get::<Option<i64>, _>("last_seen")?.map(rfc3339),
    })
}

impl Store {
    /// Copies a host's row into the in-memory list index.
    pub(crate) async fn reindex_host(&self, id: &str) -> Result<(), StoreError> {
        let row = crate::db::query(&format!("SELECT {INDEX_COLUMNS} FROM hosts WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = row {
            let cluster: String = row.try_get("cluster_id")?;
            let entry = index_entry(&row)?;
            self.host_index().upsert(id, &cluster, entry);
            self.note_for_peers(crate::db::follow::Note::Host(id.to_string()));
        }
        Ok(())
    }

    /// Re-reads hosts `ids` into the index as the table holds them now (another coordinator
    /// changed them; a host whose row is gone was removed), keeping their free GPUs.
    pub(crate) async fn reindex_hosts_quietly(&self, ids: &[String]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::new(format!(
                "SELECT id, {INDEX_COLUMNS} FROM hosts WHERE id IN ("
            ));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.clone());
            }
            q.push(")");
            let rows = q.build().fetch_all(self.pool()).await?;
            let mut found = HashMap::new();
            for row in &rows {
                let id: String = row.try_get("id")?;
                let cluster: String = row.try_get("cluster_id")?;
                found.insert(id, (cluster, index_entry(row)?));
            }
            let mut index = self.host_index();
            for id in chunk {
                match found.remove(id) {
                    Some((cluster, entry)) => index.upsert_keeping_gpus(id, &cluster, entry),
                    None => index.remove(id),
                }
            }
        }
        Ok(())
    }

    /// Builds the list index anew from the table (at start-up, and after this coordinator
    /// may have missed other coordinators' changes); its free GPUs are counted next, by
    /// `load_gpu_index`.
    pub(crate) async fn load_host_index(&self) -> Result<(), StoreError> {
        let rows = crate::db::query(&format!("SELECT id, {INDEX_COLUMNS} FROM hosts"))
            .fetch_all(self.pool())
            .await?;
        let mut fresh = HostIndex::default();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let cluster: String = row.try_get("cluster_id")?;
            fresh.upsert(&id, &cluster, index_entry(row)?);
        }
        *self.host_index() = fresh;
        Ok(())
    }

    /// Runs `decide` over every host as placement sees it at `now` (the in-memory index, no
    /// query and no copy), under the index's read lock (its write lock when the agents'
    /// online flags must first be brought up to `now`). `decide` must not block.
    pub fn with_placement<R>(&self, now: i64, decide: impl FnOnce(&[Candidate]) -> R) -> R {
        {
            let index = self.host_index_read();
            if index.placement_fresh_at(now) {
                return decide(index.placement());
            }
        }
        decide(self.host_index().placement_mut(now))
    }

    /// A copy of every host as placement sees it at `now`.
    pub fn placement_candidates(&self, now: i64) -> Vec<Candidate> {
        self.with_placement(now, <[Candidate]>::to_vec)
    }

    pub(crate) async fn upsert_host(
        &self,
        tx: &mut crate::db::Tx,
        h: &NewHost<'_>,
        cpu_model: &str,
        total_cores: i64,
        total_memory_bytes: i64,
    ) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO hosts (id, ip, hostname, cluster_id, cpu_model, total_cores, allocated_cores, \
                total_memory_bytes, allocated_memory_bytes, state, created_at, updated_at, search_text, \
                libvirt_uri, hypervisor, agent_version, domains_json, cert_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $8, $9, $10, $11, '', '', '', '[]', $12) \
             ON CONFLICT (id) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname, \
                cluster_id = excluded.cluster_id, cert_expires_at = excluded.cert_expires_at, \
                search_text = excluded.search_text, updated_at = excluded.updated_at",
        )
        .bind(h.id)
        .bind(h.ip)
        .bind(h.hostname)
        .bind(h.cluster_id)
        .bind(cpu_model)
        .bind(total_cores)
        .bind(total_memory_bytes)
        .bind(HostState::Available.as_str())
        .bind(h.now)
        .bind(h.now)
        .bind(search_text(h.id, h.ip, h.cluster_id, cpu_model))
        .bind(h.cert_expires_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Writes a host with its facts directly: for seeding (benchmarks, imports).
    pub async fn insert_host_with_facts(
        &self,
        h: &NewHost<'_>,
        cpu_model: &str,
        total_cores: u32,
        total_memory_bytes: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        self.upsert_host(
            &mut tx,
            h,
            cpu_model,
            i64::from(total_cores),
            total_memory_bytes as i64,
        )
        .await?;
        tx.commit().await?;
        self.reindex_host(h.id).await
    }

    /// Records a heartbeat; returns the host's state and the presence changes it announced,
    /// or `None` for an unknown host. `updated_at` moves only when what the agent reports
    /// changed.
    pub async fn record_heartbeat(
        &self,
        id: &str,
        hb: &Heartbeat,
        now: i64,
    ) -> Result<Option<(HostState, PresenceChange)>, StoreError> {
        let f = &hb.facts;
        let domains = serde_json::to_string(&hb.domains)
            .map_err(|e| StoreError::Corrupt(format!("domains: {e}")))?;
        let nics = serde_json::to_string(&f.nics)
            .map_err(|e| StoreError::Corrupt(format!("NICs: {e}")))?;
        let offline_after = now + 3 * hb.interval_ms.min(i64::MAX as u64 / 4) as i64;
        // search_text also holds ip and cluster: read them first.
        let Some(current) = crate::db::query("SELECT ip, cluster_id FROM hosts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let ip: String = current.try_get("ip")?;
        let cluster: String = current.try_get("cluster_id")?;
        let text = search_text(id, &ip, &cluster, &f.cpu_model);
        // An outage shorter than the watcher's tick is announced here, before this beat.
        let went_offline = self.mark_offline(Some(id), now).await?.len() == 1;
        let row = crate::db::query(
            "UPDATE hosts SET \
                updated_at = CASE WHEN hostname = $1 AND cpu_model = $2 AND total_cores = $3 \
                    AND total_memory_bytes = $4 AND libvirt_uri = $5 AND hypervisor = $6 \
                    AND agent_version = $7 AND domains_json = $8 THEN updated_at ELSE $9 END, \
                hostname = $1, cpu_model = $2, total_cores = $3, total_memory_bytes = $4, \
                libvirt_uri = $5, hypervisor = $6, agent_version = $7, domains_json = $8, \
                last_seen = $9, offline_after = $10, api_port = $11, search_text = $12, \
                migration_uri = $14, migrate_uri = $15, shared_storage = $16, nics = $17 \
             WHERE id = $13 RETURNING state, presence",
        )
        .bind(&f.hostname)
        .bind(&f.cpu_model)
        .bind(i64::from(f.total_cores))
        .bind(f.total_memory_bytes as i64)
        .bind(&f.libvirt_uri)
        .bind(&f.hypervisor)
        .bind(&f.agent_version)
        .bind(&domains)
        .bind(now)
        .bind(offline_after)
        .bind(i64::from(hb.api_port))
        .bind(&text)
        .bind(id)
        .bind(&f.migration_uri)
        .bind(&f.migrate_uri)
        .bind(&f.shared_storage)
        .bind(&nics)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state = parse_state(row.try_get("state")?)?;
        self.host_index().update(id, |e| {
            e.offline_after = Some(offline_after);
            e.search_text = text;
            e.capacity.total_cores = f.total_cores;
            e.capacity.total_memory_bytes = f.total_memory_bytes;
            e.nics = f.nics.clone();
        });
        self.note_for_peers(crate::db::follow::Note::Host(id.to_string()));
        let was_offline = row.try_get::<&str, _>("presence")? == "offline";
        let came_online = was_offline && self.mark_online(id).await?;
        let change = PresenceChange {
            went_offline,
            came_online,
        };
        Ok(Some((state, change)))
    }

    /// Announces an agent back online (one event); `false` when it was not offline.
    async fn mark_online(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let came_online = crate::db::query(
            "UPDATE hosts SET presence = 'online' WHERE id = $1 AND presence = 'offline'",
        )
        .bind(id)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if came_online {
            let data = serde_json::json!({ "agent": AgentStatus::Online });
            crate::events::record_change(&mut tx, crate::events::EventType::Host, id, data).await?;
        }
        tx.commit().await?;
        if came_online {
            self.events_committed();
        }
        Ok(came_online)
    }

    /// Announces agents whose online window has closed (all hosts, or one): flips their
    /// presence to offline and returns their ids. Each outage is returned exactly once, and
    /// is one event in the change feed.
    pub async fn mark_offline(
        &self,
        id: Option<&str>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        // Most ticks find none: look before taking the write lock.
        let due = crate::db::query(
            "SELECT 1 FROM hosts WHERE presence = 'online' AND offline_after <= $1 \
             AND ($2 IS NULL OR id = $3) LIMIT 1",
        )
        .bind(now)
        .bind(id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let rows = crate::db::query(
            "UPDATE hosts SET presence = 'offline' \
             WHERE presence = 'online' AND offline_after <= $1 AND ($2 IS NULL OR id = $3) RETURNING id",
        )
        .bind(now)
        .bind(id)
        .bind(id)
        .fetch_all(&mut tx)
        .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for host in &ids {
            let data = serde_json::json!({ "agent": AgentStatus::Offline });
            crate::events::record_change(&mut tx, crate::events::EventType::Host, host, data)
                .await?;
        }
        tx.commit().await?;
        if !ids.is_empty() {
            self.events_committed();
        }
        Ok(ids)
    }

    /// One page of hosts and the number matching in all.
    pub async fn list_hosts(
        &self,
        filter: &HostFilter,
        now: i64,
    ) -> Result<(Vec<Host>, u64), StoreError> {
        let (ids, total) = self.host_index_read().query(filter, now);
        if ids.is_empty() {
            return Ok((Vec::new(), total));
        }
        let mut page = QueryBuilder::new(format!("SELECT {LIST_COLUMNS} FROM hosts WHERE id IN ("));
        let mut list = page.separated(", ");
        for id in &ids {
            list.push_bind(id);
        }
        list.push_unseparated(")");
        let rows = page.build().fetch_all(self.pool()).await?;
        let mut by_id: HashMap<String, Host> = rows
            .iter()
            .map(|r| host(r, now).map(|h| (h.id.clone(), h)))
            .collect::<Result<_, _>>()?;
        let items = ids.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok((items, total))
    }

    pub async fn get_host(&self, id: &str, now: i64) -> Result<Option<HostDetail>, StoreError> {
        let row = crate::db::query(&format!(
            "SELECT {LIST_COLUMNS}, created_at, libvirt_uri, hypervisor, agent_version, api_port, \
                domains_json, unknown_domains_json, cert_expires_at, nics FROM hosts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let host = host(&row, now)?;
        let domains: Vec<Domain> = serde_json::from_str(row.try_get("domains_json")?)
            .map_err(|e| StoreError::Corrupt(format!("domains of {id}: {e}")))?;
        let unknown_domains: Vec<String> =
            serde_json::from_str(row.try_get("unknown_domains_json")?)
                .map_err(|e| StoreError::Corrupt(format!("unknown domains of {id}: {e}")))?;
        let port: Option<i64> = row.try_get("api_port")?;
        let nics = parse_nics(row.try_get("nics")?)?;
        let segments = crate::db::query("SELECT id, nic FROM segments ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .filter(|r| {
                r.try_get::<&str, _>("nic")
                    .is_ok_and(|n| plinth_common::api::has_nic(&nics, n))
            })
            .map(|r| r.try_get("id"))
            .collect::<Result<Vec<String>, _>>()?;
        Ok(Some(HostDetail {
            unknown_domains,
            nics,
            segments,
            agent_api: port.map(|p| format!("https://{}:{p}", socket_host(&host.ip))),
            created_at: rfc3339(row.try_get("created_at")?),
            libvirt_uri: row.try_get("libvirt_uri")?,
            hypervisor: row.try_get("hypervisor")?,
            agent_version: row.try_get("agent_version")?,
            agent_cert_expires_at: row
                .try_get::<Option<i64>, _>("cert_expires_at")?
                .map(rfc3339),
            domains,
            host,
        }))
    }

    pub async fn agent_endpoint(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<AgentEndpoint>, StoreError> {
        let row = crate::db::query(
            "SELECT ip, api_port, offline_after, migration_uri, migrate_uri, shared_storage \
             FROM hosts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(AgentEndpoint {
                ip: r.try_get("ip")?,
                port: r.try_get::<Option<i64>, _>("api_port")?.map(|p| p as u16),
                online: r
                    .try_get::<Option<i64>, _>("offline_after")?
                    .is_some_and(|t| now < t),
                migration_uri: r.try_get("migration_uri")?,
                migrate_uri: r.try_get("migrate_uri")?,
                shared_storage: r.try_get("shared_storage")?,
            })
        })
        .transpose()
    }

    /// Applies `event` to a host's state. The update is conditional on the state read, so two
    /// racing requests cannot both succeed.
    pub async fn transition_host(
        &self,
        id: &str,
        event: HostEvent,
        now: i64,
    ) -> Result<Host, TransitionError> {
        let row = crate::db::query("SELECT state FROM hosts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::from)?
            .ok_or(TransitionError::NotFound)?;
        let from = parse_state(row.try_get("state").map_err(StoreError::from)?)?;
        let to = from.transition(event)?;
        let mut tx = self.write().await?;
        let res = crate::db::query(
            "UPDATE hosts SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut tx)
        .await
        .map_err(StoreError::from)?;
        if res.rows_affected() != 1 {
            drop(tx);
            // Someone moved it first: report against the state it is in now.
            return Box::pin(self.transition_host(id, event, now)).await;
        }
        crate::events::record_change(
            &mut tx,
            crate::events::EventType::Host,
            id,
            serde_json::json!({ "state": to.as_str(), "from": from.as_str() }),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.events_committed();
        self.host_index().update(id, |e| e.state = to);
        self.note_for_peers(crate::db::follow::Note::Host(id.to_string()));
        let row = crate::db::query(&format!("SELECT {LIST_COLUMNS} FROM hosts WHERE id = $1"))
            .bind(id)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::from)?;
        Ok(host(&row, now)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use plinth_common::api::HostFacts;

    async fn seed(store: &Store) -> Result<(), StoreError> {
        store.create_cluster("alpha", "").await?;
        store.create_cluster("beta", "").await?;
        let hosts = [
            (
                "host-00000000000a",
                "10.0.0.1",
                "alpha",
                "Intel(R) Xeon(R) Gold 6338",
            ),
            ("host-00000000000b", "10.0.0.2", "alpha", "AMD EPYC 7763"),
            ("host-00000000000c", "10.0.1.1", "beta", "Kunpeng-920"),
        ];
        for (id, ip, cluster, cpu) in hosts {
            let h = NewHost {
                id,
                ip,
                hostname: id,
                cluster_id: cluster,
                cert_expires_at: 0,
                now: 1,
            };
            store.insert_host_with_facts(&h, cpu, 64, 1 << 30).await?;
        }
        Ok(())
    }

    async fn ids(store: &Store, filter: HostFilter) -> Result<(Vec<String>, u64), StoreError> {
        let (items, total) = store.list_hosts(&filter, 1_000).await?;
        Ok((items.into_iter().map(|h| h.id).collect(), total))
    }

    crate::db::store_test! {
    async fn search_matches_fields_but_not_across_them(store, _dir) -> Result<(), StoreError> {
        seed(&store).await?;
        let q = |q: &str| HostFilter {
            q: Some(q.into()),
            limit: 50,
            ..HostFilter::default()
        };
        let cases = [
            ("cpu, any case", "xEoN", vec!["host-00000000000a"]),
            (
                "ip prefix",
                "10.0.0.",
                vec!["host-00000000000a", "host-00000000000b"],
            ),
            ("cluster", "BETA", vec!["host-00000000000c"]),
            ("id fragment", "00b", vec!["host-00000000000b"]),
            ("underscore is literal", "_", vec![]),
            // "alpha\nAMD": the end of one field and the start of the next must not match.
            ("across fields", "alphaamd", vec![]),
        ];
        for (label, text, want) in cases {
            let (got, total) = ids(&store, q(text)).await?;
            assert_eq!(got, want, "{label}");
            assert_eq!(total, want.len() as u64, "{label}");
        }
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn heartbeat_sets_online_window_and_updated_at_only_on_change(store, _dir) -> Result<(), StoreError>
    {
        seed(&store).await?;
        let hb = Heartbeat {
            facts: HostFacts {
                hostname: "n1".into(),
                cpu_model: "Intel(R) Xeon(R) Gold 6338".into(),
                total_cores: 64,
                total_memory_bytes: 1 << 30,
                libvirt_uri: "test:///default".into(),
                hypervisor: "TEST".into(),
                agent_version: "0".into(),
                migration_uri: None,
                migrate_uri: None,
                shared_storage: None,
                ipmi: true,
                nics: vec![],
            },
            domains: vec![],
            api_port: 7444,
            interval_ms: 1_000,
            devices: None,
        };
        let id = "host-00000000000a";
        let change = |went_offline, came_online| {
            Some((
                HostState::Available,
                PresenceChange {
                    went_offline,
                    came_online,
                },
            ))
        };
        assert_eq!(
            store.record_heartbeat(id, &hb, 10_000).await?,
            change(false, true)
        );
        assert_eq!(
            store
                .record_heartbeat("host-0000000000ff", &hb, 10_000)
                .await?,
            None
        );
        let first = store.get_host(id, 10_000).await?.expect("seeded");
        assert_eq!(first.host.agent, AgentStatus::Online);
        // Same facts later: last_seen moves, updated_at does not.
        assert_eq!(
            store.record_heartbeat(id, &hb, 11_000).await?,
            change(false, false)
        );
        let second = store.get_host(id, 11_000).await?.expect("seeded");
        assert_eq!(second.host.updated_at, first.host.updated_at);
        assert_ne!(second.host.last_seen, first.host.last_seen);
        // Three intervals without a beat: offline, announced once.
        assert_eq!(
            store.mark_offline(None, 13_999).await?,
            Vec::<String>::new()
        );
        assert_eq!(
            store.mark_offline(None, 14_000).await?,
            vec![id.to_string()]
        );
        assert_eq!(
            store.mark_offline(None, 15_000).await?,
            Vec::<String>::new()
        );
        assert_eq!(
            store.record_heartbeat(id, &hb, 16_000).await?,
            change(false, true)
        );
        // An outage the watcher did not see is announced by the next beat.
        assert_eq!(
            store.record_heartbeat(id, &hb, 20_000).await?,
            change(true, true)
        );
        let later = store.get_host(id, 23_000).await?.expect("seeded");
        assert_eq!(later.host.agent, AgentStatus::Offline);
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn transitions_are_conditional_and_named(store, _dir) -> Result<(), StoreError> {
        seed(&store).await?;
        let id = "host-00000000000a";
        let locked = store
            .transition_host(id, HostEvent::Lock, 5)
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        assert_eq!(locked.state, HostState::Locked);
        match store.transition_host(id, HostEvent::Lock, 6).await {
            Err(TransitionError::Invalid(t)) => {
                assert_eq!((t.from, t.needs), (HostState::Locked, HostState::Available))
            }
            other => panic!("locking twice: {other:?}"),
        }
        assert!(matches!(
            store
                .transition_host("host-0000000000ff", HostEvent::Lock, 7)
                .await,
            Err(TransitionError::NotFound)
        ));
        let (locked, _) = ids(
            &store,
            HostFilter {
                state: Some(HostState::Locked),
                limit: 50,
                ..HostFilter::default()
            },
        )
        .await?;
        assert_eq!(locked, vec![id]);
        Ok(())
    }
    }
}
