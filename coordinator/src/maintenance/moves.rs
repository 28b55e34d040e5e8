//! Live migrations in flight, shared by every drain and manual migration: the progress the
//! API shows for each, and the per-cluster slots that bound how many run at once.

use crate::state::AppState;
use plinth_common::api::MigrationProgress;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Migrations in flight: their last progress, and the per-cluster slots.
#[derive(Default)]
pub struct Moves {
    progress: Mutex<HashMap<String, MigrationProgress>>,
    clusters: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Moves {
    pub fn progress(&self, instance: &str) -> Option<MigrationProgress> {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance)
            .cloned()
    }

    pub(crate) fn set_progress(&self, instance: &str, progress: Option<MigrationProgress>) {
        let mut map = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        match progress {
            Some(p) => map.insert(instance.to_string(), p),
            None => map.remove(instance),
        };
    }

    fn cluster_slots(&self, cluster: &str, n: u32) -> Arc<Semaphore> {
        self.clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(cluster.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(n as usize)))
            .clone()
    }
}

/// Turns to migrate: a bounded number at once out of a host, and within its cluster. A move
/// takes its target's claim and has its files prepared before it waits for its turn, so the
/// next migration starts as soon as one ends.
#[derive(Clone)]
pub struct Turns {
    host: Arc<Semaphore>,
    cluster: Arc<Semaphore>,
}

impl Turns {
    pub(crate) fn new(st: &AppState, cluster: &str, parallelism: u32) -> Turns {
        Turns {
            host: Arc::new(Semaphore::new(parallelism.max(1) as usize)),
            cluster: st
                .moves
                .cluster_slots(cluster, st.settings.drains.cluster_parallelism),
        }
    }

    /// Waits for a turn; it lasts until the value is dropped.
    pub(crate) async fn take(&self) -> impl Sized {
        // The semaphores are never closed: a permit always comes.
        let host = self.host.clone().acquire_owned().await.ok();
        let cluster = self.cluster.clone().acquire_owned().await.ok();
        (host, cluster)
    }
}
