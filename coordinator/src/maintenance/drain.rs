//! Maintenance drains (SPEC §2) and manual live migrations. The API writes the drain (host in
//! `entering_maintenance`, a move per instance) before this runs; then, top to bottom:
//! stopped instances are released; running ones are live-migrated, a bounded number at once
//! (per host and per cluster), each attempt with its claim on the target taken first, a
//! deadline, and a bounded number of attempts; the host ends in `maintenance` when nothing is
//! left, else back in `locked` with the report. Every step is in the store before the next,
//! so `resume` continues a drain after a restart: a move that was in flight is settled by
//! asking both agents where the domain is.

use crate::agents::AgentError;
use crate::db::StoreError;
use crate::hosts::store::AgentEndpoint;
use crate::instances::jobs::{create_request, endpoint, record};
use crate::instances::store::ClaimRefused;
use crate::maintenance::store::{MoveRecord, MoveTimings};
use crate::scheduler::{self, Request};
use crate::state::AppState;
use plinth_common::api::{
    AgentMigrate, AgentMigration, AgentMigrationState, Instance, MigrationProgress, MoveAction,
    MoveStatus,
};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::now_ms;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

pub const DRAIN: &str = "host_drain";
pub const MIGRATE: &str = "instance_migrate";

/// How long the source agent holds a request about its migration (it answers at once when
/// the migration ends): the progress shown is at most this old.
const FOLLOW_WAIT: Duration = Duration::from_secs(1);
/// A status that comes back sooner than this while the migration still runs is asked again
/// only after it (an agent that does not hold the request is not asked in a busy loop).
const POLL: Duration = Duration::from_millis(100);
/// A target agent that misses this many checks in a row (one per `FOLLOW_WAIT`) is taken as
/// gone: the migration is aborted (a guest must not land on a host nobody can manage).
const TARGET_MISSES: u32 = 5;
/// Beyond the agent's own deadline, how long the coordinator waits before it aborts.
const GRACE: Duration = Duration::from_secs(30);
/// Times a drain takes up moves that stopped on an error before it gives up on them.
const ROUNDS: usize = 3;
/// Hosts tried for one attempt when the chosen one fills up meanwhile.
const CLAIM_TRIES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainSettings {
    /// Migrations at once out of one host.
    pub parallelism: u32,
    /// Migrations at once within one cluster, all drains together.
    pub cluster_parallelism: u32,
    pub migration_timeout: Duration,
    /// Attempts per instance before a drain leaves it.
    pub attempts: u32,
    pub bandwidth_mib_s: Option<u64>,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            parallelism: 2,
            cluster_parallelism: 8,
            migration_timeout: Duration::from_secs(600),
            attempts: 3,
            bandwidth_mib_s: None,
        }
    }
}

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

    fn set_progress(&self, instance: &str, progress: Option<MigrationProgress>) {
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
    fn new(st: &AppState, cluster: &str, parallelism: u32) -> Turns {
        Turns {
            host: Arc::new(Semaphore::new(parallelism.max(1) as usize)),
            cluster: st
                .moves
                .cluster_slots(cluster, st.settings.drains.cluster_parallelism),
        }
    }

    /// Waits for a turn; it lasts until the value is dropped.
    async fn take(&self) -> impl Sized {
        // The semaphores are never closed: a permit always comes.
        let host = self.host.clone().acquire_owned().await.ok();
        let cluster = self.cluster.clone().acquire_owned().await.ok();
        (host, cluster)
    }
}

/// What a drain does with an instance, and why when it leaves it.
pub fn plan_action(inst: &Instance) -> (MoveAction, Option<String>) {
    if let Some(gpu) = &inst.gpu_type {
        let held: Vec<&str> = inst
            .devices
            .iter()
            .map(String::as_str)
            .filter(|d| d.starts_with("vgpu:") || d.starts_with("gpu:"))
            .collect();
        let named = if held.is_empty() {
            String::new()
        } else {
            format!(" ({})", held.join(", "))
        };
        return (
            MoveAction::Stay,
            Some(format!(
                "it has a {gpu} GPU/vGPU{named}, which cannot be live-migrated"
            )),
        );
    }
    if !inst.devices.is_empty() {
        return (
            MoveAction::Stay,
            Some(format!(
                "it has devices attached ({}), which cannot be live-migrated",
                inst.devices.join(", ")
            )),
        );
    }
    match inst.state {
        InstanceState::Running if inst.operation_id.is_none() => (MoveAction::Migrate, None),
        InstanceState::Stopped if inst.operation_id.is_none() => (MoveAction::Release, None),
        InstanceState::Error => (
            MoveAction::Stay,
            Some("it is in error; repair or delete it, then enter maintenance again".into()),
        ),
        state => (
            MoveAction::Stay,
            Some(format!(
                "it is {state}, which cannot move; enter maintenance again once it settles"
            )),
        ),
    }
}

/// Restarts the drains and migrations a stopped coordinator left running.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for op in st.store.running_operations(DRAIN).await? {
        info!(operation = %op.id, host = %op.target_id, "Resuming a maintenance drain.");
        st.jobs.spawn("drain", run(st.clone(), op.target_id, op.id));
    }
    for op in st.store.running_operations(MIGRATE).await? {
        info!(operation = %op.id, instance = %op.target_id, "Resuming a live migration.");
        st.jobs
            .spawn("live migration", migrate(st.clone(), op.id, false));
    }
    Ok(())
}

/// The drain of `host` written as `op`.
pub async fn run(st: AppState, host: String, op: String) {
    if let Err(e) = drain(&st, &host, &op).await {
        error!(host = %host, operation = %op, error = %format!("{e:#}"), "The drain stopped on a store error; it resumes at the next start.");
    }
}

async fn drain(st: &AppState, host: &str, op: &str) -> anyhow::Result<()> {
    let parallelism = st
        .store
        .latest_drain(host)
        .await?
        .filter(|d| d.operation_id == op)
        .map_or(st.settings.drains.parallelism, |d| d.parallelism);
    let cluster = host_cluster(st, host).await?;

    // 1. Stopped instances leave the host without moving.
    for m in st.store.moves(op).await? {
        if m.item.action == MoveAction::Release && m.item.status == MoveStatus::Pending {
            let id = &m.item.instance_id;
            if !st.store.release_move(op, id, host, now_ms()).await? {
                let reason =
                    "it was no longer stopped when the drain reached it; enter maintenance again";
                st.store.stay_move(op, id, reason, now_ms()).await?;
            }
        }
    }

    // 2. Running instances migrate, `parallelism` at once from this host; as many more
    //    have their target claimed and prepared, ready for the next turn. A move that stops
    //    on an error is taken up again (a `migrating` one is first settled by asking both
    //    agents where the domain is), a bounded number of rounds.
    let turns = Turns::new(st, &cluster, parallelism);
    let ahead = Arc::new(Semaphore::new(2 * parallelism.max(1) as usize));
    let mut last_error = None;
    for _round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for m in st.store.moves(op).await? {
            if m.item.action != MoveAction::Migrate || m.item.status.is_final() {
                continue;
            }
            let (st, cluster, turns) = (st.clone(), cluster.clone(), turns.clone());
            let ahead = ahead.clone();
            tasks.push(st.jobs.clone().spawn("drain move", async move {
                let _ahead = ahead.acquire_owned().await;
                move_instance(&st, m, &cluster, false, &turns).await
            }));
        }
        if tasks.is_empty() {
            break;
        }
        for task in tasks {
            let failed = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => e.to_string(),
            };
            error!(host = %host, operation = %op, error = %failed, "A move stopped on an error; it is taken up again.");
            last_error = Some(failed);
        }
    }
    for m in st.store.moves(op).await? {
        if m.item.status == MoveStatus::Pending {
            let reason = last_error
                .clone()
                .unwrap_or_else(|| "the drain could not move it".into());
            st.store
                .stay_move(op, &m.item.instance_id, &reason, now_ms())
                .await?;
        }
    }
    if st
        .store
        .moves(op)
        .await?
        .iter()
        .any(|m| !m.item.status.is_final())
    {
        anyhow::bail!("moves are still in flight after {ROUNDS} rounds: {last_error:?}");
    }

    // 3. The host's verdict.
    let moves = st.store.moves(op).await?;
    let stayed: Vec<String> = moves
        .iter()
        .filter(|m| m.item.status == MoveStatus::Stayed)
        .map(|m| {
            format!(
                "{} ({})",
                m.item.instance_name,
                m.item.reason.as_deref().unwrap_or("no reason recorded")
            )
        })
        .collect();
    let summary = (!stayed.is_empty()).then(|| {
        format!(
            "{} of {} instances stayed on the host: {}",
            stayed.len(),
            moves.len(),
            stayed.join("; ")
        )
    });
    let state = st
        .store
        .end_drain(op, host, summary.as_deref(), now_ms())
        .await?;
    st.store
        .audit(
            "drain",
            "drain ended",
            host,
            summary.as_deref().unwrap_or(""),
        )
        .await?;
    info!(host = %host, operation = %op, %state, stayed = stayed.len(), "Drain ended.");
    Ok(())
}

async fn host_cluster(st: &AppState, host: &str) -> anyhow::Result<String> {
    Ok(st
        .store
        .get_host(host, now_ms())
        .await?
        .map(|h| h.host.cluster_id)
        .unwrap_or_default())
}

/// A manual migration (`POST /v1/instances/{id}/migrate`) written as `op`; `claimed` when
/// the API took its first claim.
pub async fn migrate(st: AppState, op: String, claimed: bool) {
    let outcome = async {
        let Some(m) = st.store.moves(&op).await?.into_iter().next() else {
            anyhow::bail!("the migration has no move recorded");
        };
        let cluster = host_cluster(&st, &m.item.source_host).await?;
        let turns = Turns::new(&st, &cluster, 1);
        move_instance(&st, m, &cluster, claimed, &turns).await?;
        let ended = st.store.moves(&op).await?.into_iter().next();
        Ok(ended
            .filter(|m| m.item.status != MoveStatus::Moved)
            .map(|m| m.item.reason.unwrap_or_else(|| "it did not move".into())))
    }
    .await;
    let error = match outcome {
        Ok(error) => error,
        Err(e) => Some(format!("{e:#}")),
    };
    if let Err(e) = st
        .store
        .end_migration(&op, error.as_deref(), now_ms())
        .await
    {
        error!(operation = %op, error = ?e, "Could not record the end of a migration.");
    }
}

/// Moves one instance: settles an attempt a restart cut off, then tries until it moved or
/// its attempts are spent, each migration in one of `turns`. A store error ends this call;
/// the drain takes the move up again. `claimed`: the caller took the first attempt's claim
/// (a manual migration) and nothing has been asked of the agents yet; otherwise a move found
/// `migrating` was cut off by a restart and is followed to its end first (without waiting
/// for a turn: libvirt may be moving it already).
async fn move_instance(
    st: &AppState,
    m: MoveRecord,
    cluster: &str,
    claimed: bool,
    turns: &Turns,
) -> anyhow::Result<()> {
    let op = m.operation_id.clone();
    let id = m.item.instance_id.clone();
    let source = m.item.source_host.clone();
    if m.item.status == MoveStatus::Migrating
        && let Some(target) = m.item.target_host.clone()
        && run_attempt(
            st,
            &op,
            &id,
            &source,
            &target,
            m.item.attempts,
            claimed.then_some(turns),
        )
        .await?
    {
        return Ok(());
    }
    let mut tried = Vec::new();
    loop {
        let Some(rec) = st
            .store
            .moves(&op)
            .await?
            .into_iter()
            .find(|r| r.item.instance_id == id)
        else {
            return Ok(());
        };
        if rec.item.status.is_final() {
            return Ok(());
        }
        if rec.item.attempts >= st.settings.drains.attempts {
            let reason = rec
                .item
                .reason
                .unwrap_or_else(|| "its attempts are spent".into());
            st.store.stay_move(&op, &id, &reason, now_ms()).await?;
            return Ok(());
        }
        let Some(inst) = st.store.instance(&id).await? else {
            st.store
                .stay_move(&op, &id, "it was deleted", now_ms())
                .await?;
            return Ok(());
        };
        let inst = inst.instance;
        if inst.host_id.as_deref() != Some(source.as_str())
            || inst.state != InstanceState::Running
            || inst.operation_id.is_some()
        {
            let reason = format!(
                "it changed meanwhile (now {} on {}); enter maintenance again",
                inst.state,
                inst.host_id.as_deref().unwrap_or("no host")
            );
            st.store.stay_move(&op, &id, &reason, now_ms()).await?;
            return Ok(());
        }
        let target = match claim_target(st, &op, &inst, cluster, rec.pinned_target, &tried).await? {
            Claim::Taken(target) => target,
            Claim::Refused(reason) => {
                st.store.stay_move(&op, &id, &reason, now_ms()).await?;
                return Ok(());
            }
        };
        if run_attempt(
            st,
            &op,
            &id,
            &source,
            &target,
            rec.item.attempts + 1,
            Some(turns),
        )
        .await?
        {
            return Ok(());
        }
        tried.push(target);
    }
}

/// What [`claim_target`] got.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The claim on this host is taken (and the move records it as the attempt's target).
    Taken(String),
    /// No host can take the instance now; the reason is written for the report.
    Refused(String),
}

/// Picks a target (the pinned one, or the scheduler's random suitable host of the cluster,
/// not the source and not one already tried) and takes its claim.
pub async fn claim_target(
    st: &AppState,
    op: &str,
    inst: &Instance,
    cluster: &str,
    pinned: Option<String>,
    tried: &[String],
) -> Result<Claim, StoreError> {
    let source = inst.host_id.clone().unwrap_or_default();
    let mut req = move_request(inst, cluster, &source);
    req.exclude.extend(tried.iter().cloned());
    let oc = st.settings.overcommit;
    for _ in 0..CLAIM_TRIES {
        let chosen = match &pinned {
            Some(target) => Ok(target.clone()),
            None => st.store.with_placement(now_ms(), |hosts| {
                match scheduler::choose(
                    hosts,
                    &req,
                    st.settings.policy,
                    oc,
                    &mut rand::thread_rng(),
                ) {
                    Some(h) => Ok(h.host_id.clone()),
                    None => {
                        let (_, rejected) = scheduler::filter(hosts, &req, oc);
                        Err(format!(
                            "no host of cluster {cluster} can take it: {}",
                            scheduler::explain(hosts.len(), &rejected)
                        ))
                    }
                }
            }),
        };
        let target = match chosen {
            Ok(t) => t,
            Err(reason) => return Ok(Claim::Refused(reason)),
        };
        match st
            .store
            .start_move(op, &inst.id, &source, &target, oc, now_ms())
            .await?
        {
            Ok(()) => return Ok(Claim::Taken(target)),
            Err(ClaimRefused::HostFull) if pinned.is_some() => {
                return Ok(Claim::Refused(format!("host {target} cannot take it now")));
            }
            Err(ClaimRefused::HostFull) => req.exclude.push(target),
            Err(ClaimRefused::Moved) => {
                return Ok(Claim::Refused(
                    "it changed meanwhile; enter maintenance again".into(),
                ));
            }
            Err(ClaimRefused::Quota(q)) => return Ok(Claim::Refused(q.to_string())),
        }
    }
    Ok(Claim::Refused(
        "every host tried filled up meanwhile".into(),
    ))
}

/// Where `inst` may go when it leaves `source`: another host of `cluster`.
pub fn move_request(inst: &Instance, cluster: &str, source: &str) -> Request {
    Request {
        cores: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        cluster: Some(cluster.to_string()),
        gpu_type: None,
        exclude: vec![source.to_string()],
    }
}

/// How an attempt ended, as far as the agents tell.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// libvirt reports the job done and the domain is off the source.
    Moved { libvirt_ms: Option<u64> },
    /// The domain is still on the source (and nothing of it runs on the target, whose
    /// prepared files can go).
    Stayed(String),
    /// Where it runs is not clear (both hosts, or neither agent answers): nothing is cleaned
    /// up, and the reason says what the agents told.
    Unclear(String),
}

/// When an attempt's parts began and how long the target took to prepare.
struct Timing {
    prepare_ms: Option<u64>,
    /// The migration's turn began (or, for one a restart cut off, its following).
    started: Instant,
}

/// The agents of an attempt, read from the store once when it begins: where an agent listens
/// does not change while it runs, and whether it still answers is told by its answers (the
/// target's misses while following), not by its row.
struct Peers {
    source: AgentEndpoint,
    target: AgentEndpoint,
}

/// One attempt, its target's claim already taken: the target prepares the instance's files
/// (before the attempt's turn, while the migration ahead of it runs); in its turn the source
/// migrates it live, and the coordinator follows until it ends.
async fn attempt(
    st: &AppState,
    id: &str,
    source: &str,
    target: &str,
    peers: &Peers,
    turns: &Turns,
) -> (Outcome, Timing) {
    let asked = Instant::now();
    let prepared = prepare(st, id, target, peers).await;
    let prepare_ms = Some(asked.elapsed().as_millis() as u64);
    let migrate = match prepared {
        Ok(migrate) => migrate,
        Err(reason) => {
            let started = Instant::now();
            return (
                Outcome::Stayed(reason),
                Timing {
                    prepare_ms,
                    started,
                },
            );
        }
    };
    let _turn = turns.take().await;
    let started = Instant::now();
    let begun = st
        .agents
        .migrate(&peers.source, id, &migrate)
        .await
        .map_err(|e| {
            format!(
                "host {source} could not start the migration: {}",
                e.explain()
            )
        });
    let outcome = match begun {
        Ok(_) => follow(st, id, source, target, peers, started).await,
        Err(reason) => Outcome::Stayed(reason),
    };
    (
        outcome,
        Timing {
            prepare_ms,
            started,
        },
    )
}

/// Has the target make the instance's files; answers what the source needs to migrate it.
async fn prepare(
    st: &AppState,
    id: &str,
    target: &str,
    peers: &Peers,
) -> Result<AgentMigrate, String> {
    let req = create_request(st, &record(st, id).await?).await?;
    let (src, dst) = (&peers.source, &peers.target);
    let shared = src.shares_storage_with(dst);
    let dest_uri = dst
        .migration_uri
        .clone()
        .ok_or_else(|| format!("host {target}'s agent reports no migration URI"))?;
    let prepared = st
        .agents
        .prepare_migration(dst, &req, shared)
        .await
        .map_err(|e| format!("host {target} could not prepare it: {}", e.explain()))?;
    Ok(AgentMigrate {
        dest_uri,
        migrate_uri: dst.migrate_uri.clone(),
        prepared,
        timeout_s: st.settings.drains.migration_timeout.as_secs(),
        bandwidth_mib_s: st.settings.drains.bandwidth_mib_s,
        shared_storage: shared.is_some(),
    })
}

/// Follows a migration the source agent runs until it ends, aborting it at the deadline or
/// when the target's agent stops answering; then asks both agents where the domain is.
async fn follow(
    st: &AppState,
    id: &str,
    source: &str,
    target: &str,
    peers: &Peers,
    started: Instant,
) -> Outcome {
    let (src, dst) = (&peers.source, &peers.target);
    let deadline = started + st.settings.drains.migration_timeout + GRACE;
    let mut misses = 0;
    let mut aborted: Option<String> = None;
    let mut aborted_at: Option<Instant> = None;
    let ended = loop {
        let asked = Instant::now();
        match st.agents.migration(src, id, Some(FOLLOW_WAIT)).await {
            Ok(m) if m.state == AgentMigrationState::Running => {
                st.moves.set_progress(id, Some(m.progress.clone()));
            }
            Ok(m) => break Ended::Reported(m),
            Err(e) => {
                break Ended::Unknown(format!(
                    "host {source}'s agent did not answer: {}",
                    e.explain()
                ));
            }
        }
        if aborted.is_none() {
            misses = match st.agents.instance(dst, id).await {
                Err(AgentError::Http(_) | AgentError::NoEndpoint) => misses + 1,
                _ => 0,
            };
            if misses >= TARGET_MISSES {
                aborted = Some(format!(
                    "host {target}'s agent stopped answering during the migration; it was aborted"
                ));
            } else if Instant::now() > deadline {
                aborted = Some(format!(
                    "the migration took longer than {} s; it was aborted",
                    st.settings.drains.migration_timeout.as_secs()
                ));
            }
            if let Some(reason) = &aborted {
                warn!(instance = %id, %reason, "Aborting a live migration.");
                aborted_at = Some(Instant::now());
                if let Err(e) = st.agents.abort_migration(src, id).await {
                    warn!(instance = %id, error = %e.explain(), "The source agent could not abort the migration.");
                }
            }
        } else if aborted_at.is_some_and(|t| t.elapsed() > GRACE) {
            // libvirt may ignore an abort (one that lands before the copy starts): the
            // drain does not wait on it without limit.
            break Ended::Unknown(format!(
                "host {source}'s agent still reports the migration running {} s after it was aborted",
                GRACE.as_secs()
            ));
        }
        if asked.elapsed() < POLL {
            tokio::time::sleep(POLL).await;
        }
    };
    st.moves.set_progress(id, None);
    locate(st, id, source, target, Ok(src), Ok(dst), ended, aborted).await
}

/// How following a migration ended.
#[derive(Debug, Clone)]
enum Ended {
    /// The source agent reports the migration over (succeeded, failed, or not known to it).
    Reported(AgentMigration),
    /// The source agent could not say (or its agent could not be found); why.
    Unknown(String),
}

/// Where one agent says the domain is.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Running,
    /// The agent answered: no domain, or one that does not run (a target's waits paused).
    NotRunning,
    /// The agent did not answer (or is not known); why.
    Unreachable(String),
}

/// What is known once a migration ended: what the source agent reported, why the coordinator
/// aborted it (if it did), and where each agent says the domain is.
struct Sighting<'a> {
    source: &'a str,
    target: &'a str,
    ended: Ended,
    aborted: Option<String>,
    on_source: Seen,
    on_target: Seen,
}

/// Asks both agents where the domain is once the migration ended (or its agent could not
/// say), and settles the attempt. An agent not known to the store counts as not answering.
#[allow(clippy::too_many_arguments)]
async fn locate(
    st: &AppState,
    id: &str,
    source: &str,
    target: &str,
    src: Result<&AgentEndpoint, &str>,
    dst: Result<&AgentEndpoint, &str>,
    ended: Ended,
    aborted: Option<String>,
) -> Outcome {
    let (on_source, on_target) = tokio::join!(seen(st, id, src), seen(st, id, dst));
    verdict(Sighting {
        source,
        target,
        ended,
        aborted,
        on_source,
        on_target,
    })
}

/// Where one agent (`Err`: one the store no longer knows) says the domain is.
async fn seen(st: &AppState, id: &str, ep: Result<&AgentEndpoint, &str>) -> Seen {
    let ep = match ep {
        Ok(ep) => ep,
        Err(e) => return Seen::Unreachable(e.to_string()),
    };
    match st.agents.instance(ep, id).await {
        Ok(Some(d)) if d.state == "running" => Seen::Running,
        Ok(_) => Seen::NotRunning,
        Err(e) => Seen::Unreachable(e.explain()),
    }
}

/// Where the domain is, from what the agents told: moved, stayed (a retry may follow), or
/// unclear (a person should look before anything is cleaned up or retried).
fn verdict(s: Sighting<'_>) -> Outcome {
    let Sighting {
        source,
        target,
        ended,
        aborted,
        on_source,
        on_target,
    } = s;
    let libvirt_ms = match &ended {
        Ended::Reported(m) => m.libvirt_ms,
        Ended::Unknown(_) => None,
    };
    match (&ended, &on_source, &on_target) {
        // Only a finished migration runs the guest on the target (it waits paused before).
        (_, Seen::NotRunning | Seen::Unreachable(_), Seen::Running) => {
            Outcome::Moved { libvirt_ms }
        }
        (_, Seen::Running, Seen::Running) => Outcome::Unclear(format!(
            "the domain runs on both {source} and {target}; check them before anything else"
        )),
        // The target's agent is gone but libvirt finished and the source no longer has it.
        (Ended::Reported(m), Seen::NotRunning, Seen::Unreachable(_))
            if m.state == AgentMigrationState::Succeeded =>
        {
            Outcome::Moved { libvirt_ms }
        }
        _ => {
            let why = aborted
                .or(match ended {
                    Ended::Reported(m) => m.error,
                    Ended::Unknown(e) => Some(e),
                })
                .unwrap_or_else(|| "the migration did not complete".into());
            match on_source {
                Seen::Running => Outcome::Stayed(why),
                Seen::NotRunning => Outcome::Unclear(format!(
                    "{why}; the domain runs on neither host as far as their agents tell"
                )),
                Seen::Unreachable(e) => {
                    Outcome::Unclear(format!("{why}; host {source}'s agent: {e}"))
                }
            }
        }
    }
}

/// Runs attempt number `attempts`, its target's claim held, and records how it ended:
/// a fresh one (nothing asked of the agents yet) in one of `turns`, or with `None` one a
/// restart cut off, followed to its end. `true` when the move is over (moved, or no retry).
async fn run_attempt(
    st: &AppState,
    op: &str,
    id: &str,
    source: &str,
    target: &str,
    attempts: u32,
    turns: Option<&Turns>,
) -> anyhow::Result<bool> {
    let peers = match (endpoint(st, source).await, endpoint(st, target).await) {
        (Ok(source), Ok(target)) => Ok(Peers { source, target }),
        (src, dst) => Err((src, dst)),
    };
    if turns.is_some() {
        info!(instance = %id, from = %source, to = %target, attempt = attempts, "Live migration starting.");
    }
    let (outcome, timing) = match (&peers, turns) {
        (Ok(peers), Some(turns)) => attempt(st, id, source, target, peers, turns).await,
        (Ok(peers), None) => {
            let started = Instant::now();
            let outcome = follow(st, id, source, target, peers, started).await;
            (
                outcome,
                Timing {
                    prepare_ms: None,
                    started,
                },
            )
        }
        // A host gone from the store (or the store failing): a fresh attempt stays, one a
        // restart cut off is settled by asking whichever agent is still known.
        (Err((src, dst)), turns) => {
            let started = Instant::now();
            let missing = [src, dst]
                .iter()
                .find_map(|r| r.as_ref().err())
                .cloned()
                .unwrap_or_default();
            let outcome = match turns {
                Some(_) => Outcome::Stayed(missing),
                None => {
                    let ended = Ended::Unknown(missing);
                    let src = src.as_ref().map_err(String::as_str);
                    let dst = dst.as_ref().map_err(String::as_str);
                    locate(st, id, source, target, src, dst, ended, None).await
                }
            };
            (
                outcome,
                Timing {
                    prepare_ms: None,
                    started,
                },
            )
        }
    };
    // A failed attempt's target files go (its domain never ran); an unclear end is neither
    // cleaned up nor retried: a person should look first.
    let (reason, clean_target, retry) = match outcome {
        Outcome::Moved { libvirt_ms } => {
            let timings = MoveTimings {
                prepare_ms: timing.prepare_ms,
                libvirt_ms,
                total_ms: timing.started.elapsed().as_millis() as u64,
            };
            st.store.finish_move(op, id, &timings, now_ms()).await?;
            info!(instance = %id, from = %source, to = %target, total_ms = timings.total_ms, libvirt_ms = ?libvirt_ms, prepare_ms = ?timing.prepare_ms, "Live migration done.");
            return Ok(true);
        }
        Outcome::Stayed(reason) => (reason, true, true),
        Outcome::Unclear(reason) => (reason, false, false),
    };
    warn!(instance = %id, from = %source, to = %target, %reason, "Live migration failed; the instance stays on its host.");
    // On shared storage the target's files are the source's: nothing to clean up.
    if clean_target
        && let Ok(peers) = &peers
        && peers.source.shares_storage_with(&peers.target).is_none()
        && let Err(e) = st.agents.delete_instance(&peers.target, id).await
    {
        warn!(instance = %id, host = %target, error = %e.explain(), "Could not clean up a failed migration's target.");
    }
    let give_up = !retry || attempts >= st.settings.drains.attempts;
    st.store
        .fail_move(op, id, &reason, give_up, now_ms())
        .await?;
    Ok(give_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::instance::InstanceKind;

    fn instance(
        state: InstanceState,
        gpu: Option<&str>,
        devices: &[&str],
        op: Option<&str>,
    ) -> Instance {
        Instance {
            id: "inst-000000000001".into(),
            name: "vm".into(),
            kind: InstanceKind::Vm,
            tenant_id: "ten".into(),
            tenant_email: "t@x".into(),
            host_id: Some("host-000000000001".into()),
            host_ip: None,
            image_id: None,
            vcpus: 1,
            memory_bytes: 1 << 30,
            disk_bytes: 1 << 30,
            gpu_type: gpu.map(str::to_string),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            state,
            state_reason: None,
            resource_id: None,
            operation_id: op.map(str::to_string),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn what_a_drain_does_with_each_instance() {
        use InstanceState as S;
        use MoveAction as A;
        let cases = [
            (
                "running",
                instance(S::Running, None, &[], None),
                A::Migrate,
                None,
            ),
            (
                "stopped",
                instance(S::Stopped, None, &[], None),
                A::Release,
                None,
            ),
            (
                "gpu",
                instance(S::Running, Some("A100"), &[], None),
                A::Stay,
                Some("A100"),
            ),
            (
                "usb",
                instance(S::Running, None, &["usb-1-2"], None),
                A::Stay,
                Some("usb-1-2"),
            ),
            (
                "stopped gpu",
                instance(S::Stopped, Some("T4"), &[], None),
                A::Stay,
                Some("T4"),
            ),
            (
                "vgpu named",
                instance(
                    S::Running,
                    Some("nvidia-46"),
                    &["vgpu:3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11"],
                    None,
                ),
                A::Stay,
                Some("nvidia-46 GPU/vGPU (vgpu:3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11)"),
            ),
            (
                "rebooting",
                instance(S::Rebooting, None, &[], Some("op")),
                A::Stay,
                Some("rebooting"),
            ),
            (
                "migrating",
                instance(S::Migrating, None, &[], Some("op")),
                A::Stay,
                Some("migrating"),
            ),
            (
                "error",
                instance(S::Error, None, &[], None),
                A::Stay,
                Some("error"),
            ),
            (
                "running, job",
                instance(S::Running, None, &[], Some("op")),
                A::Stay,
                Some("running"),
            ),
        ];
        for (label, inst, action, says) in cases {
            let (got, reason) = plan_action(&inst);
            assert_eq!(got, action, "{label}");
            match says {
                Some(text) => assert!(
                    reason.as_deref().is_some_and(|r| r.contains(text)),
                    "{label}: {reason:?}"
                ),
                None => assert_eq!(reason, None, "{label}"),
            }
        }
    }

    fn reported(state: AgentMigrationState, error: Option<&str>) -> Ended {
        Ended::Reported(AgentMigration {
            state,
            progress: MigrationProgress::default(),
            libvirt_ms: (state == AgentMigrationState::Succeeded).then_some(1234),
            error: error.map(str::to_string),
        })
    }

    #[test]
    fn where_a_migration_that_ended_left_the_domain() {
        use AgentMigrationState as M;
        use Outcome::{Moved, Stayed, Unclear};
        use Seen::{NotRunning as Absent, Running as Up};
        let down = || Seen::Unreachable("connection refused".into());
        let done = || reported(M::Succeeded, None);
        let failed = || reported(M::Failed, Some("libvirt: connection reset"));
        let lost = || Ended::Unknown("host hv-a's agent did not answer: timed out".into());
        let neither = "; the domain runs on neither host as far as their agents tell";
        // (label, ended, aborted, on source, on target, verdict)
        type Case = (
            &'static str,
            Ended,
            Option<&'static str>,
            Seen,
            Seen,
            Outcome,
        );
        let cases: Vec<Case> = vec![
            (
                "succeeded: off the source, running on the target",
                done(),
                None,
                Absent,
                Up,
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "running on the target, source agent gone",
                done(),
                None,
                down(),
                Up,
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "running on the target although libvirt reported a failure",
                failed(),
                None,
                Absent,
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on the target, source agent lost while following",
                lost(),
                None,
                down(),
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on the target after an abort",
                failed(),
                Some("the migration took longer than 600 s; it was aborted"),
                Absent,
                Up,
                Moved { libvirt_ms: None },
            ),
            (
                "running on both hosts",
                done(),
                None,
                Up,
                Up,
                Unclear(
                    "the domain runs on both hv-a and hv-b; check them before anything else"
                        .into(),
                ),
            ),
            (
                "succeeded, off the source, target agent gone",
                done(),
                None,
                Absent,
                down(),
                Moved {
                    libvirt_ms: Some(1234),
                },
            ),
            (
                "failed, off the source, target agent gone",
                failed(),
                None,
                Absent,
                down(),
                Unclear(format!("libvirt: connection reset{neither}")),
            ),
            (
                "failed, still on the source",
                failed(),
                None,
                Up,
                Absent,
                Stayed("libvirt: connection reset".into()),
            ),
            (
                "failed without a word, still on the source",
                reported(M::Failed, None),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "not known to the source agent, still on the source",
                reported(M::None, None),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "succeeded yet still running on the source only",
                done(),
                None,
                Up,
                Absent,
                Stayed("the migration did not complete".into()),
            ),
            (
                "still on the source, target agent gone",
                failed(),
                None,
                Up,
                down(),
                Stayed("libvirt: connection reset".into()),
            ),
            (
                "aborted: the coordinator's reason comes before libvirt's",
                failed(),
                Some("host hv-b's agent stopped answering during the migration; it was aborted"),
                Up,
                down(),
                Stayed(
                    "host hv-b's agent stopped answering during the migration; it was aborted"
                        .into(),
                ),
            ),
            (
                "source agent lost while following, domain still on the source",
                lost(),
                None,
                Up,
                Absent,
                Stayed("host hv-a's agent did not answer: timed out".into()),
            ),
            (
                "succeeded, on neither host",
                done(),
                None,
                Absent,
                Absent,
                Unclear(format!("the migration did not complete{neither}")),
            ),
            (
                "failed, on neither host",
                failed(),
                None,
                Absent,
                Absent,
                Unclear(format!("libvirt: connection reset{neither}")),
            ),
            (
                "failed, source agent gone, not on the target",
                failed(),
                None,
                down(),
                Absent,
                Unclear("libvirt: connection reset; host hv-a's agent: connection refused".into()),
            ),
            (
                "both agents gone",
                lost(),
                None,
                down(),
                down(),
                Unclear(
                    "host hv-a's agent did not answer: timed out; host hv-a's agent: connection refused"
                        .into(),
                ),
            ),
        ];
        for (label, ended, aborted, on_source, on_target, want) in cases {
            let got = verdict(Sighting {
                source: "hv-a",
                target: "hv-b",
                ended,
                aborted: aborted.map(str::to_string),
                on_source,
                on_target,
            });
            assert_eq!(got, want, "{label}");
        }
    }
}
