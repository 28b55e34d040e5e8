//! An in-memory copy of what the host list filters and sorts on (cluster, id, state, online
//! window, search text) and of what placement reads (size and claims). A fuzzy search is a
//! substring scan, which SQL can only do row by row through LIKE; here it is a pass over a few
//! bytes per host, and the database is asked only for the page's rows, by primary key. A
//! placement decision runs over the hosts as a slice of `Candidate`s kept here, under the read
//! lock, without copying them. The store updates the index after every write to a host, so it
//! never disagrees with the table for longer than one statement.

use crate::hosts::store::HostFilter;
use crate::scheduler::Candidate;
use plinth_common::api::AgentStatus;
use plinth_common::host::HostState;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub state: HostState,
    pub offline_after: Option<i64>,
    /// Lowercase `id\nip\ncluster\ncpu model`.
    pub search_text: String,
    pub capacity: Capacity,
    /// Free vGPUs and passthrough GPUs by type (devices/store.rs keeps it).
    pub free_gpus: Vec<(String, u32)>,
    /// The host's NICs (facts).
    pub nics: Vec<String>,
}

/// What placement reads of a host: its size and what instances have claimed of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    pub total_cores: u32,
    pub allocated_cores: u32,
    pub total_memory_bytes: u64,
    pub allocated_memory_bytes: u64,
}

#[derive(Debug, Default)]
pub struct HostIndex {
    /// In list order: (cluster_id, id).
    entries: BTreeMap<(String, String), IndexEntry>,
    placement: Placement,
}

/// Every host as placement sees it, one `Candidate` per host in a fixed slot. `agent_online`
/// depends on the time: the flags are right for any time in `[as_of, until)`, and a decision
/// at a time outside it first recomputes them (`refresh`).
#[derive(Debug, Default)]
struct Placement {
    hosts: Vec<Candidate>,
    offline_after: Vec<Option<i64>>,
    slot: HashMap<String, usize>,
    as_of: i64,
    until: i64,
}

impl Placement {
    /// Copies `entry` into the host's slot (a new one for a new host).
    fn sync(&mut self, id: &str, cluster_id: &str, entry: &IndexEntry) {
        let online = entry.offline_after.is_some_and(|t| self.as_of < t);
        if let Some(t) = entry.offline_after.filter(|t| *t > self.as_of) {
            self.until = self.until.min(t);
        }
        let c = &entry.capacity;
        let candidate = Candidate {
            host_id: id.to_string(),
            cluster_id: cluster_id.to_string(),
            state: entry.state,
            agent_online: online,
            total_cores: c.total_cores,
            allocated_cores: c.allocated_cores,
            total_memory_bytes: c.total_memory_bytes,
            allocated_memory_bytes: c.allocated_memory_bytes,
            free_gpus: entry.free_gpus.clone(),
            nics: entry.nics.clone(),
        };
        match self.slot.get(id) {
            Some(&i) => {
                self.hosts[i] = candidate;
                self.offline_after[i] = entry.offline_after;
            }
            None => {
                self.slot.insert(id.to_string(), self.hosts.len());
                self.hosts.push(candidate);
                self.offline_after.push(entry.offline_after);
            }
        }
    }

    fn fresh_at(&self, now: i64) -> bool {
        self.as_of <= now && now < self.until
    }

    /// Recomputes every `agent_online` for `now`, and until when they hold.
    fn refresh(&mut self, now: i64) {
        self.as_of = now;
        self.until = i64::MAX;
        for (host, after) in self.hosts.iter_mut().zip(&self.offline_after) {
            host.agent_online = after.is_some_and(|t| now < t);
            if let Some(t) = after.filter(|t| *t > now) {
                self.until = self.until.min(t);
            }
        }
    }
}

impl HostIndex {
    pub fn upsert(&mut self, id: &str, cluster_id: &str, entry: IndexEntry) {
        if let Some(&i) = self.placement.slot.get(id) {
            let old = self.placement.hosts[i].cluster_id.clone();
            self.entries.remove(&(old, id.to_string()));
        }
        self.placement.sync(id, cluster_id, &entry);
        self.entries
            .insert((cluster_id.to_string(), id.to_string()), entry);
    }

    /// [`HostIndex::upsert`], with the free GPUs the host had here (counted apart).
    pub fn upsert_keeping_gpus(&mut self, id: &str, cluster_id: &str, mut entry: IndexEntry) {
        if let Some(&i) = self.placement.slot.get(id) {
            let cluster = self.placement.hosts[i].cluster_id.clone();
            if let Some(old) = self.entries.get(&(cluster, id.to_string())) {
                entry.free_gpus = old.free_gpus.clone();
            }
        }
        self.upsert(id, cluster_id, entry);
    }

    /// Forgets a removed host.
    pub fn remove(&mut self, id: &str) {
        let Some(i) = self.placement.slot.remove(id) else {
            return;
        };
        let gone = self.placement.hosts.swap_remove(i);
        self.placement.offline_after.swap_remove(i);
        if let Some(moved) = self.placement.hosts.get(i) {
            self.placement.slot.insert(moved.host_id.clone(), i);
        }
        self.entries.remove(&(gone.cluster_id, id.to_string()));
    }

    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut IndexEntry)) {
        let Some(&i) = self.placement.slot.get(id) else {
            return;
        };
        let cluster = self.placement.hosts[i].cluster_id.clone();
        if let Some(entry) = self.entries.get_mut(&(cluster, id.to_string())) {
            change(entry);
            let cluster = std::mem::take(&mut self.placement.hosts[i].cluster_id);
            self.placement.sync(id, &cluster, entry);
        }
    }

    /// Whether `placement` may run under a read lock at `now` (else `placement_mut`).
    pub fn placement_fresh_at(&self, now: i64) -> bool {
        self.placement.fresh_at(now)
    }

    /// Every host as placement sees it, valid at a time `placement_fresh_at` accepts.
    pub fn placement(&self) -> &[Candidate] {
        &self.placement.hosts
    }

    /// Every host as placement sees it at `now`.
    pub fn placement_mut(&mut self, now: i64) -> &[Candidate] {
        if !self.placement.fresh_at(now) {
            self.placement.refresh(now);
        }
        &self.placement.hosts
    }

    /// The ids on the filter's page (up to `limit` after `after`), in list order, and how many
    /// hosts match in all.
    pub fn query(&self, filter: &HostFilter, now: i64) -> (Vec<String>, u64) {
        let needle = filter
            .q
            .as_deref()
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let matches = |entry: &IndexEntry| {
            needle
                .as_deref()
                .is_none_or(|n| entry.search_text.contains(n))
                && filter.state.is_none_or(|s| entry.state == s)
                && filter.agent.is_none_or(|want| {
                    let online = entry.offline_after.is_some_and(|t| now < t);
                    online == (want == AgentStatus::Online)
                })
        };
        let candidates: Box<dyn Iterator<Item = (&(String, String), &IndexEntry)>> =
            match &filter.cluster {
                Some(cluster) => Box::new(
                    self.entries
                        .range((cluster.clone(), String::new())..)
                        .take_while(move |((c, _), _)| c == cluster),
                ),
                None => Box::new(self.entries.iter()),
            };
        let mut page = Vec::with_capacity(filter.limit as usize);
        let mut total = 0u64;
        for (key, entry) in candidates {
            if !matches(entry) {
                continue;
            }
            total += 1;
            let past = filter.after.as_ref().is_none_or(|after| key > after);
            if past && page.len() < filter.limit as usize {
                page.push(key.1.clone());
            }
        }
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: HostState, offline_after: Option<i64>, text: &str) -> IndexEntry {
        IndexEntry {
            state,
            offline_after,
            search_text: text.to_string(),
            capacity: Capacity::default(),
            free_gpus: Vec::new(),
            nics: Vec::new(),
        }
    }

    #[test]
    fn filters_pages_and_moves_between_clusters() {
        let mut index = HostIndex::default();
        index.upsert(
            "h1",
            "b",
            entry(HostState::Available, Some(100), "h1\n10.0.0.1\nb\nxeon"),
        );
        index.upsert(
            "h2",
            "a",
            entry(HostState::Locked, None, "h2\n10.0.0.2\na\nepyc"),
        );
        index.upsert(
            "h3",
            "a",
            entry(HostState::Available, Some(10), "h3\n10.0.0.3\na\nxeon"),
        );
        let q = |index: &HostIndex, f: HostFilter| index.query(&HostFilter { limit: 50, ..f }, 50);
        assert_eq!(
            q(&index, HostFilter::default()),
            (vec!["h2".into(), "h3".into(), "h1".into()], 3)
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    q: Some("XEON".into()),
                    ..Default::default()
                }
            )
            .1,
            2
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    cluster: Some("a".into()),
                    ..Default::default()
                }
            )
            .1,
            2
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    cluster: Some("c".into()),
                    ..Default::default()
                }
            )
            .1,
            0
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    state: Some(HostState::Locked),
                    ..Default::default()
                }
            )
            .0,
            vec!["h2"]
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    agent: Some(AgentStatus::Online),
                    ..Default::default()
                }
            )
            .0,
            vec!["h1"]
        );
        assert_eq!(
            q(
                &index,
                HostFilter {
                    agent: Some(AgentStatus::Offline),
                    ..Default::default()
                }
            )
            .1,
            2
        );
        let page2 = index.query(
            &HostFilter {
                limit: 1,
                after: Some(("a".into(), "h2".into())),
                ..Default::default()
            },
            50,
        );
        assert_eq!(page2, (vec!["h3".to_string()], 3));

        // Re-enrolled into another cluster: one entry, in its new place.
        index.upsert(
            "h1",
            "a",
            entry(HostState::Available, None, "h1\n10.0.0.1\na\nxeon"),
        );
        assert_eq!(
            q(&index, HostFilter::default()),
            (vec!["h1".into(), "h2".into(), "h3".into()], 3)
        );
        index.update("h2", |e| e.state = HostState::Available);
        assert_eq!(
            q(
                &index,
                HostFilter {
                    state: Some(HostState::Locked),
                    ..Default::default()
                }
            )
            .1,
            0
        );
    }

    /// Placement's online flags follow the time and every write, without a copy per decision.
    #[test]
    fn placement_online_flags_follow_time_and_writes() {
        let mut index = HostIndex::default();
        index.upsert("h1", "a", entry(HostState::Available, Some(100), "h1"));
        index.upsert("h2", "a", entry(HostState::Available, Some(200), "h2"));
        index.upsert("h3", "b", entry(HostState::Available, None, "h3"));
        let online = |index: &mut HostIndex, now: i64| -> Vec<String> {
            let fresh = index.placement_fresh_at(now);
            let hosts = if fresh {
                index.placement()
            } else {
                index.placement_mut(now)
            };
            hosts
                .iter()
                .filter(|c| c.agent_online)
                .map(|c| c.host_id.clone())
                .collect()
        };
        assert_eq!(online(&mut index, 50), ["h1", "h2"]);
        assert!(index.placement_fresh_at(99) && !index.placement_fresh_at(100));
        assert_eq!(online(&mut index, 100), ["h2"]);
        // A heartbeat moves h1's window; the flag changes with the write, not at the next refresh.
        index.update("h1", |e| e.offline_after = Some(400));
        assert!(index.placement_fresh_at(150));
        assert_eq!(online(&mut index, 150), ["h1", "h2"]);
        assert_eq!(online(&mut index, 250), ["h1"]);
        // Writes reach the slot; a host moved to another cluster keeps its one slot.
        index.update("h3", |e| e.capacity.allocated_cores = 7);
        index.upsert("h2", "b", entry(HostState::Locked, Some(500), "h2"));
        let hosts = index.placement_mut(260);
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[2].allocated_cores, 7);
        assert_eq!(
            (hosts[1].cluster_id.as_str(), hosts[1].state),
            ("b", HostState::Locked)
        );
        // Time running backwards (a clock step) is not trusted either.
        assert!(!index.placement_fresh_at(10));
        assert_eq!(online(&mut index, 10), ["h1", "h2"]);

        // A removed host leaves both the list and placement; the others keep their slots.
        index.remove("h1");
        index.remove("h1");
        assert_eq!(online(&mut index, 10), ["h2"]);
        index.update("h3", |e| e.capacity.allocated_cores = 9);
        let hosts = index.placement_mut(10);
        assert_eq!(hosts.len(), 2);
        let h3 = hosts
            .iter()
            .find(|c| c.host_id == "h3")
            .map(|c| c.allocated_cores);
        assert_eq!(h3, Some(9));
        let listed = index.query(
            &HostFilter {
                limit: 50,
                ..Default::default()
            },
            10,
        );
        assert_eq!(listed, (vec!["h2".to_string(), "h3".to_string()], 2));
    }

    /// Pages follow (cluster, id) from a cursor key: a host enrolled between two pages, before
    /// or after the cursor, neither repeats nor skips one; filters hold on every page.
    #[test]
    fn pages_follow_the_cursor_key_through_inserts() {
        let mut index = HostIndex::default();
        for (id, cluster) in [("h1", "b"), ("h2", "a"), ("h4", "a"), ("h5", "b")] {
            index.upsert(id, cluster, entry(HostState::Available, None, id));
        }
        let page = |index: &HostIndex, after: Option<(&str, &str)>, state| {
            index.query(
                &HostFilter {
                    limit: 2,
                    state,
                    after: after.map(|(c, i)| (c.to_string(), i.to_string())),
                    ..Default::default()
                },
                0,
            )
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(page(&index, None, None), (ids(&["h2", "h4"]), 4));
        // Enrolled between the pages: one before the cursor (not shown), one after (shown once).
        index.upsert("h3", "a", entry(HostState::Available, None, "h3"));
        index.upsert("h0", "b", entry(HostState::Locked, None, "h0"));
        assert_eq!(
            page(&index, Some(("a", "h4")), None),
            (ids(&["h0", "h1"]), 6)
        );
        assert_eq!(page(&index, Some(("b", "h1")), None), (ids(&["h5"]), 6));
        // A filter with a cursor: the total counts every match, the page only those after.
        let available = Some(HostState::Available);
        assert_eq!(
            page(&index, Some(("a", "h3")), available),
            (ids(&["h4", "h1"]), 5)
        );
        // The cursor's host itself may be gone: the page still starts after its place.
        index.remove("h4");
        assert_eq!(
            page(&index, Some(("a", "h4")), available),
            (ids(&["h1", "h5"]), 4)
        );
    }
}
