//! One live migration, from claiming its target to knowing where the domain runs: used by a
//! drain for each running instance and by a manual migration. An attempt prepares the target
//! (before its turn), migrates in its turn, follows the source agent with a deadline, then
//! asks both agents where the domain is ([`super::verdict`]) and records that in the store.

use crate::agents::AgentEndpoint;
use crate::agents::AgentError;
use crate::db::StoreError;
use crate::instances::placement::{PlacementError, place};
use crate::instances::{JobError, create_request, endpoint, record};
use crate::maintenance::moves::Turns;
use crate::maintenance::store::{MoveRecord, MoveTimings};
use crate::maintenance::verdict::{Ended, Outcome, Seen, Sighting, verdict};
use crate::scheduler::Request;
use crate::state::AppState;
use plinth_common::api::{AgentMigrate, AgentMigrationState, Instance, MoveStatus};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::now_ms;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

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

/// The cluster of `host` (empty when the host is gone).
pub(crate) async fn host_cluster(st: &AppState, host: &str) -> anyhow::Result<String> {
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
pub(crate) async fn move_instance(
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
/// not the source and not one already tried) and takes its claim, through the one placement
/// of instances.
pub async fn claim_target(
    st: &AppState,
    op: &str,
    inst: &Instance,
    cluster: &str,
    pinned: Option<String>,
    tried: &[String],
) -> Result<Claim, StoreError> {
    let source = inst.host_id.clone().unwrap_or_default();
    let nics = crate::instances::lifecycle::instance_nics(st, &inst.id).await?;
    let mut req = move_request(inst, &nics, cluster, &source);
    req.exclude.extend(tried.iter().cloned());
    let oc = st.settings.overcommit;
    let placed = place(st, req, pinned.as_deref(), |target| {
        let (store, source) = (&st.store, &source);
        async move {
            store
                .start_move(op, &inst.id, source, &target, oc, now_ms())
                .await
        }
    })
    .await;
    let reason = match placed {
        Ok(target) => return Ok(Claim::Taken(target)),
        Err(PlacementError::Store(e)) => return Err(e),
        Err(PlacementError::NoHost(why)) => {
            format!("no host of cluster {cluster} can take it: {why}")
        }
        Err(PlacementError::Moved) => "it changed meanwhile; enter maintenance again".into(),
        Err(
            e @ (PlacementError::PinnedFull(_)
            | PlacementError::AllFull
            | PlacementError::Quota(_)
            | PlacementError::EipTaken(_)),
        ) => e.to_string(),
    };
    Ok(Claim::Refused(reason))
}

/// Where `inst` may go when it leaves `source`: another host of `cluster` that has `nics` (its
/// EIPs' segments').
pub fn move_request(inst: &Instance, nics: &[String], cluster: &str, source: &str) -> Request {
    Request {
        cores: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        cluster: Some(cluster.to_string()),
        gpu_type: None,
        exclude: vec![source.to_string()],
        nics: nics.to_vec(),
    }
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
        Err(e) => {
            warn!(instance = %id, host = %target, error = ?e, "The target could not prepare the migration.");
            let started = Instant::now();
            return (
                Outcome::Stayed(e.to_string()),
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
) -> Result<AgentMigrate, JobError> {
    let req = create_request(st, &record(st, id).await?).await?;
    let (src, dst) = (&peers.source, &peers.target);
    let shared = src.shares_storage_with(dst);
    let dest_uri = dst
        .migration_uri
        .clone()
        .ok_or_else(|| JobError::NoMigrationUri(target.to_string()))?;
    let prepared = st
        .agents
        .prepare_migration(dst, &req, shared)
        .await
        .map_err(|e| JobError::Host {
            host: target.to_string(),
            action: "prepare",
            reason: e.explain(),
        })?;
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
    let found = |r: Result<AgentEndpoint, JobError>| r.map_err(|e| e.to_string());
    let peers = match (
        found(endpoint(st, source).await),
        found(endpoint(st, target).await),
    ) {
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
