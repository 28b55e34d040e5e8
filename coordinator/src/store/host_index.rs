//! An in-memory copy of what the host list filters and sorts on (cluster, id, state, online
//! window, search text). A fuzzy search is a substring scan, which SQL can only do row by row
//! through LIKE; here it is a pass over a few bytes per host, and the database is asked only
//! for the page's rows, by primary key. The store updates the index after every write to a
//! host, so it never disagrees with the table for longer than one statement.

use super::hosts::HostFilter;
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
    cluster_of: HashMap<String, String>,
}

impl HostIndex {
    pub fn upsert(&mut self, id: &str, cluster_id: &str, entry: IndexEntry) {
        if let Some(old) = self
            .cluster_of
            .insert(id.to_string(), cluster_id.to_string())
        {
            self.entries.remove(&(old, id.to_string()));
        }
        self.entries
            .insert((cluster_id.to_string(), id.to_string()), entry);
    }

    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut IndexEntry)) {
        if let Some(cluster) = self.cluster_of.get(id)
            && let Some(entry) = self.entries.get_mut(&(cluster.clone(), id.to_string()))
        {
            change(entry);
        }
    }

    /// Every host as placement sees it, at `now`.
    pub fn candidates(&self, now: i64) -> Vec<Candidate> {
        self.entries
            .iter()
            .map(|((cluster, id), e)| Candidate {
                host_id: id.clone(),
                cluster_id: cluster.clone(),
                state: e.state,
                agent_online: e.offline_after.is_some_and(|t| now < t),
                total_cores: e.capacity.total_cores,
                allocated_cores: e.capacity.allocated_cores,
                total_memory_bytes: e.capacity.total_memory_bytes,
                allocated_memory_bytes: e.capacity.allocated_memory_bytes,
                free_gpus: Vec::new(),
            })
            .collect()
    }

    /// The ids on the filter's page, in list order, and how many hosts match in all.
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
        let skip = usize::try_from(filter.offset).unwrap_or(usize::MAX);
        let mut page = Vec::with_capacity(filter.limit as usize);
        let mut total = 0u64;
        for ((_, id), entry) in candidates {
            if !matches(entry) {
                continue;
            }
            if total as usize >= skip && page.len() < filter.limit as usize {
                page.push(id.clone());
            }
            total += 1;
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
                offset: 1,
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
}
