//! The job lease: one coordinator at a time runs the region's jobs (drains, migrations,
//! imports, preparation, the power sync, presence), in a term numbered by the lease's epoch.
//! The lease lives in the store on the database's clock; its holder renews it every third of
//! its TTL and, when it could not for two thirds of it, stops its jobs itself before the lease
//! can expire under it. Should a job of an ended term still write, the store refuses it
//! (`Store::write` checks the epoch under the writer lock): the fence holds even for a holder
//! that was paused past its lease and does not know yet.
//!
//! On SQLite the store has one coordinator, the one that opened it: it takes the lease
//! outright at start and holds it until it stops.

pub mod api;
pub mod store;

use crate::db::Dialect;
use crate::state::AppState;
use std::time::Duration;
use store::Ask;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// How long a lease lasts unless renewed.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);

/// Who this coordinator is, in the `coordinators` table and the lease.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    /// Where it serves the API.
    pub address: String,
}

impl Identity {
    /// `name` when configured, else this machine's hostname and the listen address (unique
    /// on one machine, and across machines by the hostname).
    pub fn new(name: Option<&str>, address: std::net::SocketAddr) -> Identity {
        let id = match name {
            Some(name) => name.to_string(),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
                format!("{host}/{address}")
            }
        };
        Identity {
            id,
            address: address.to_string(),
        }
    }
}

/// A held term: its epoch, and the instant by which it must be renewed or given up.
#[derive(Debug, Clone, Copy)]
struct Held {
    epoch: i64,
    until: Instant,
}

/// How recently a coordinator beat to count as alive: it beats every third of the TTL.
pub fn alive_within(ttl: Duration) -> i64 {
    ms(ttl * 2)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Measured from when the renewal was sent, so that however late its answer came, the
/// holder stops a third of the TTL before the database can let another take it.
fn held(epoch: i64, sent: Instant, ttl: Duration) -> Held {
    Held {
        epoch,
        until: sent + ttl * 2 / 3,
    }
}

/// Takes the lease before the coordinator serves (at once on SQLite; on PostgreSQL when it
/// is free) and starts the term's work; then keeps the lease, or waits for it, until
/// shutdown, and gives it up on the way out. The first term's resume failing fails the start.
pub async fn start(st: &AppState, me: Identity, ttl: Duration) -> anyhow::Result<()> {
    st.store.coordinator_heartbeat(&me.id, &me.address).await?;
    let single = st.store.dialect() == Dialect::Sqlite;
    let ask = if single { Ask::Force } else { Ask::Renew(None) };
    let sent = Instant::now();
    let mut holding = None;
    if let Some(epoch) = st.store.take_job_lease(&me.id, ask, ms(ttl)).await? {
        begin(st, &me, epoch).await?;
        holding = Some(held(epoch, sent, ttl));
    } else {
        info!(coordinator = %me.id, "Another coordinator holds the job lease; serving the API, ready to take over.");
    }
    st.jobs
        .spawn("job lease", keep(st.clone(), me, ttl, single, holding));
    Ok(())
}

/// Starts the job of running operation `op` in this coordinator's term of the lease (see
/// `Jobs::spawn_job`), claiming the operation for the term first: once per term, so that the
/// holder may pick up the store's jobs as often as it likes and never runs one twice, and
/// never by a term that ended. Answers whether it was started here.
pub fn run<F>(st: &AppState, op: &str, name: &'static str, job: F) -> bool
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (store, op) = (st.store.clone(), op.to_string());
    let started = st.jobs.spawn_job(name, {
        let store = store.clone();
        async move {
            let Some(epoch) = crate::jobs::fence() else {
                return;
            };
            match store.claim_operation(&op, epoch).await {
                Ok(true) => drop(job.await),
                Ok(false) => tracing::debug!(operation = %op, "Running already, or ended."),
                Err(e) => {
                    warn!(operation = %op, error = %e, "Could not claim a job; not running it.")
                }
            }
        }
    });
    if !started {
        st.jobs.spawn("job notice", async move {
            if let Err(e) = store.notify_jobs().await {
                warn!(error = %e, "Could not tell the job lease's holder of a new job; it finds it within a third of the lease's TTL.");
            }
        });
    }
    started
}

/// Begins a term: resumes what the last holder left running, and starts the region's loops.
async fn begin(st: &AppState, me: &Identity, epoch: i64) -> anyhow::Result<()> {
    info!(coordinator = %me.id, epoch, "Holding the job lease: running the region's jobs.");
    crate::metrics::set_job_lease_held(true);
    st.jobs
        .begin_term(epoch, async {
            crate::resume::resume(st).await?;
            let jobs = &st.jobs;
            jobs.spawn("event pruner", st.events.clone().prune(jobs.token()));
            jobs.spawn(
                "presence watcher",
                crate::hosts::presence::watch(st.store.clone(), jobs.token()),
            );
            jobs.spawn(
                "bare-metal sync",
                crate::baremetal::sync::run(st.clone(), jobs.token()),
            );
            jobs.spawn(
                "bare-metal health",
                crate::baremetal::health::run(st.clone(), jobs.token()),
            );
            Ok(())
        })
        .await
}

/// Starts the jobs other coordinators' APIs wrote (and any this term does not run yet).
async fn pick_up(st: &AppState) {
    if let Some(Err(e)) = st.jobs.within_term(crate::resume::resume(st)).await {
        warn!(error = %format!("{e:#}"), "Looking for jobs to run failed; looking again soon.");
    }
}

/// Stops the term's jobs (waiting a third of the TTL for them: later writes are refused).
async fn stand_down(st: &AppState, ttl: Duration, why: &str) {
    crate::metrics::set_job_lease_held(false);
    if let Some(epoch) = st.jobs.end_term(ttl / 3).await {
        warn!(epoch, why, "Stopped running the region's jobs.");
    }
}

async fn keep(st: AppState, me: Identity, ttl: Duration, single: bool, mut holding: Option<Held>) {
    let stop = st.jobs.token();
    let every = ttl / 3;
    let mut next = Instant::now() + every;
    let mut listener = match st.store.jobs_listener().await {
        Ok(listener) => listener,
        Err(e) => {
            warn!(error = %e, "Cannot hear other coordinators' new jobs; looking for them every third of the lease's TTL.");
            None
        }
    };
    loop {
        let wake = holding.map_or(next, |h| next.min(h.until));
        let heard = async {
            match listener.as_mut() {
                // Reconnects by itself; what was said meanwhile the next look finds.
                Some(l) => l.recv().await.map(drop),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
            told = heard => {
                match told {
                    Ok(()) if holding.is_some() => pick_up(&st).await,
                    Ok(()) => {}
                    // Listened for again at the next renewal.
                    Err(_) => listener = None,
                }
                continue;
            }
        }
        if let Some(h) = holding
            && !single
            && Instant::now() >= h.until
        {
            stand_down(&st, ttl, "the job lease could not be renewed in time").await;
            holding = None;
        }
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + every;
        if let Err(e) = st.store.coordinator_heartbeat(&me.id, &me.address).await {
            warn!(error = %e, "Could not record this coordinator's heartbeat.");
        }
        if single {
            continue;
        }
        if listener.is_none() {
            listener = st.store.jobs_listener().await.ok().flatten();
        }
        let sent = Instant::now();
        let ask = Ask::Renew(holding.map(|h| h.epoch));
        let answer = tokio::time::timeout(every, st.store.take_job_lease(&me.id, ask, ms(ttl)));
        match answer.await {
            Ok(Ok(Some(epoch))) if holding.is_some_and(|h| h.epoch == epoch) => {
                holding = Some(held(epoch, sent, ttl));
                pick_up(&st).await;
            }
            Ok(Ok(Some(epoch))) => {
                if holding.is_some() {
                    stand_down(&st, ttl, "the job lease was renewed too late").await;
                }
                holding = Some(held(epoch, sent, ttl));
                if let Err(e) = begin(&st, &me, epoch).await {
                    error!(error = %format!("{e:#}"), "Resuming the region's jobs failed.");
                }
            }
            Ok(Ok(None)) => {
                if holding.take().is_some() {
                    stand_down(&st, ttl, "another coordinator took the job lease").await;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "Could not renew the job lease."),
            Err(_) => warn!(took = ?every, "Renewing the job lease timed out."),
        }
    }
    // Shutdown: the term's jobs were cancelled with the runner; once they stopped, the lease
    // is free for another coordinator at once rather than when it expires.
    if let Some(h) = holding {
        crate::metrics::set_job_lease_held(false);
        st.jobs.end_term(ttl).await;
        match st.store.release_job_lease(&me.id, h.epoch).await {
            Ok(true) => info!(epoch = h.epoch, "Gave the job lease up."),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "Could not give the job lease up; it expires by itself."),
        }
    }
    if let Err(e) = st.store.remove_coordinator(&me.id).await {
        warn!(error = %e, "Could not remove this coordinator from the region's list.");
    }
}
