//! Live migrations out of this host, by instance: the one in flight and the last outcome, in
//! memory (an agent that restarts knows none: the coordinator then asks each host whether it
//! runs the domain). And the driver that ends a job overrunning its time by aborting it.

use crate::libvirt::JobProgress;
use plinth_common::api::{AgentMigration, AgentMigrationState, MigrationProgress};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Why a running migration is being aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    Requested,
    TimedOut(Duration),
}

impl Abort {
    fn reason(self) -> String {
        match self {
            Abort::Requested => "aborted on request".into(),
            Abort::TimedOut(after) => format!("timed out after {}s", after.as_secs()),
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    view: AgentMigration,
    abort: Option<Abort>,
    /// Tells the running job that an abort was asked for.
    wake: Arc<Notify>,
    /// Wakes those waiting for the migration to end.
    ended: Arc<Notify>,
}

/// Cheap to clone: the clones share one table.
#[derive(Clone, Default)]
pub struct Migrations {
    table: Arc<Mutex<HashMap<String, Record>>>,
}

fn none() -> AgentMigration {
    AgentMigration {
        state: AgentMigrationState::None,
        progress: MigrationProgress::default(),
        libvirt_ms: None,
        error: None,
    }
}

fn progress_of(p: JobProgress) -> MigrationProgress {
    MigrationProgress {
        elapsed_ms: p.elapsed_ms,
        data_total_bytes: p.data_total,
        data_processed_bytes: p.data_processed,
        data_remaining_bytes: p.data_remaining,
    }
}

impl Migrations {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Record>) -> T) -> T {
        f(&mut self.table.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The instance's migration as it stands; `none` when it never migrated from here.
    pub fn get(&self, id: &str) -> AgentMigration {
        self.with(|t| t.get(id).map_or_else(none, |r| r.view.clone()))
    }

    /// Waits until the instance's running migration ends, at most `wait`; at once when none
    /// runs.
    pub async fn wait_end(&self, id: &str, wait: Duration) {
        let Some(ended) = self.with(|t| t.get(id).map(|r| r.ended.clone())) else {
            return;
        };
        let notified = ended.notified();
        tokio::pin!(notified);
        // Registered before the check, so an end between the two is not missed.
        notified.as_mut().enable();
        if self.is_running(id) {
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.with(|t| {
            t.get(id)
                .is_some_and(|r| r.view.state == AgentMigrationState::Running)
        })
    }

    /// Records a new migration as running; `None` when one runs already. The job waits on
    /// the `Notify` for an abort on request.
    pub fn begin(&self, id: &str) -> Option<(AgentMigration, Arc<Notify>)> {
        self.with(|t| {
            if t.get(id)
                .is_some_and(|r| r.view.state == AgentMigrationState::Running)
            {
                return None;
            }
            let view = AgentMigration {
                state: AgentMigrationState::Running,
                ..none()
            };
            let wake = Arc::new(Notify::new());
            t.insert(
                id.to_string(),
                Record {
                    view: view.clone(),
                    abort: None,
                    wake: wake.clone(),
                    ended: Arc::default(),
                },
            );
            Some((view, wake))
        })
    }

    /// The running migration's latest numbers.
    pub fn progress(&self, id: &str, now: JobProgress) {
        self.with(|t| {
            let running = t
                .get_mut(id)
                .filter(|r| r.view.state == AgentMigrationState::Running);
            if let Some(r) = running {
                r.view.progress = progress_of(now);
            }
        })
    }

    /// Marks the running migration as being aborted (the first reason stays), wakes its job
    /// for it, and answers it; `None` when none runs.
    pub fn aborting(&self, id: &str, why: Abort) -> Option<AgentMigration> {
        self.with(|t| {
            let r = t
                .get_mut(id)
                .filter(|r| r.view.state == AgentMigrationState::Running)?;
            let why = *r.abort.get_or_insert(why);
            r.view.error = Some(format!("{}; aborting", why.reason()));
            r.wake.notify_one();
            Some(r.view.clone())
        })
    }

    /// The migration ended well; `measured`: libvirt's call from start to return.
    pub fn succeeded(&self, id: &str, measured: Duration) {
        self.end(id, AgentMigrationState::Succeeded, None, measured);
    }

    /// The migration ended with `cause`; the domain still runs here.
    pub fn failed(&self, id: &str, cause: String, measured: Duration) {
        self.end(id, AgentMigrationState::Failed, Some(cause), measured);
    }

    fn end(&self, id: &str, state: AgentMigrationState, cause: Option<String>, measured: Duration) {
        self.with(|t| {
            let r = t.entry(id.to_string()).or_insert_with(|| Record {
                view: none(),
                abort: None,
                wake: Arc::default(),
                ended: Arc::default(),
            });
            r.view.state = state;
            r.view.error = match (cause, r.abort) {
                (Some(cause), Some(why)) => Some(format!("{}: {cause}", why.reason())),
                (cause, _) => cause,
            };
            r.view.libvirt_ms = Some(measured.as_millis() as u64);
            r.ended.notify_waiters();
        })
    }
}

/// Runs `job` to its end. Past `timeout`, or once `requested` fires, it calls `abort`, and
/// again every `retry` until the job ends: libvirt acts on an abort only while the job
/// transfers (disks or memory), not while it is still connecting to the target.
pub async fn drive<T, A, F>(
    job: impl Future<Output = T>,
    timeout: Duration,
    requested: impl Future<Output = ()>,
    retry: Duration,
    mut abort: A,
) -> T
where
    A: FnMut() -> F,
    F: Future<Output = ()>,
{
    tokio::pin!(job);
    tokio::select! {
        out = &mut job => return out,
        _ = tokio::time::sleep(timeout) => {}
        _ = requested => {}
    }
    loop {
        let attempt = abort();
        tokio::select! {
            out = &mut job => return out,
            _ = async { attempt.await; tokio::time::sleep(retry).await } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn stats(elapsed_ms: u64) -> JobProgress {
        JobProgress {
            elapsed_ms,
            data_total: 100,
            data_processed: 100,
            data_remaining: 0,
        }
    }

    #[test]
    fn one_at_a_time_and_the_last_outcome_stays() {
        let m = Migrations::default();
        assert_eq!(m.get("i").state, AgentMigrationState::None);
        assert!(m.aborting("i", Abort::Requested).is_none(), "nothing runs");
        let (started, _) = m.begin("i").expect("first");
        assert_eq!(started.state, AgentMigrationState::Running);
        assert!(m.begin("i").is_none(), "a second waits for the first");
        assert!(m.begin("j").is_some(), "another instance may");
        m.progress(
            "i",
            JobProgress {
                data_remaining: 40,
                ..stats(5)
            },
        );
        assert_eq!(m.get("i").progress.data_remaining_bytes, 40);

        m.succeeded("i", Duration::from_secs(2));
        let done = m.get("i");
        assert_eq!(
            (done.state, done.libvirt_ms, done.error),
            (AgentMigrationState::Succeeded, Some(2000), None)
        );
        m.progress("i", stats(1));
        assert_eq!(
            m.get("i").progress.elapsed_ms,
            5,
            "ended: the last numbers stay"
        );
        assert!(!m.is_running("i"));
        assert!(m.begin("i").is_some(), "it may migrate again");
    }

    #[test]
    fn failures_say_why() {
        let cases = [
            ("plain", None, "unable to connect"),
            (
                "timed out",
                Some(Abort::TimedOut(Duration::from_secs(30))),
                "timed out after 30s: unable to connect",
            ),
            (
                "on request",
                Some(Abort::Requested),
                "aborted on request: unable to connect",
            ),
        ];
        for (label, abort, want) in cases {
            let m = Migrations::default();
            m.begin("i");
            if let Some(why) = abort {
                let now = m.aborting("i", why).expect(label);
                assert_eq!(now.state, AgentMigrationState::Running, "{label}");
                assert!(
                    now.error
                        .as_deref()
                        .is_some_and(|e| e.ends_with("; aborting")),
                    "{label}: {now:?}"
                );
                m.aborting("i", Abort::Requested);
            }
            m.failed("i", "unable to connect".into(), Duration::from_millis(1500));
            let ended = m.get("i");
            assert_eq!(ended.state, AgentMigrationState::Failed, "{label}");
            assert_eq!(ended.error.as_deref(), Some(want), "{label}");
            assert_eq!(ended.libvirt_ms, Some(1500), "{label}: measured");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_with_the_migration_or_its_time() {
        let m = Migrations::default();
        let started = tokio::time::Instant::now();
        m.wait_end("i", Duration::from_secs(9)).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "none ran: at once");
        m.begin("i");
        m.wait_end("i", Duration::from_secs(3)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(3), "still running");
        let ends = {
            let m = m.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                m.failed("i", "gone".into(), Duration::from_secs(4));
            }
        };
        tokio::join!(m.wait_end("i", Duration::from_secs(60)), ends);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(4),
            "woken at its end"
        );
        assert_eq!(m.get("i").state, AgentMigrationState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_in_time_is_left_alone() {
        let aborts = AtomicUsize::new(0);
        let out = drive(
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                7
            },
            Duration::from_secs(10),
            std::future::pending(),
            Duration::from_secs(1),
            || async {
                aborts.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await;
        assert_eq!((out, aborts.load(Ordering::SeqCst)), (7, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_overrun_is_aborted_until_it_ends() {
        let (end, ended) = tokio::sync::oneshot::channel::<&str>();
        let end = Mutex::new(Some(end));
        let aborts = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let out = drive(
            async { ended.await.unwrap_or("dropped") },
            Duration::from_secs(10),
            std::future::pending(),
            Duration::from_secs(3),
            || {
                // The first abort is refused (the job is not in QEMU yet); the second ends it.
                if aborts.fetch_add(1, Ordering::SeqCst) == 1 {
                    let end = end.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(end) = end {
                        let _ = end.send("aborted");
                    }
                }
                async {}
            },
        )
        .await;
        assert_eq!(out, "aborted");
        assert_eq!(aborts.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_on_request_comes_before_the_timeout() {
        let m = Migrations::default();
        let (_, wake) = m.begin("i").expect("begin");
        let started = tokio::time::Instant::now();
        let (end, ended) = tokio::sync::oneshot::channel::<&str>();
        let end = Mutex::new(Some(end));
        let asker = {
            let m = m.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                m.aborting("i", Abort::Requested)
            })
        };
        let out = drive(
            async { ended.await.unwrap_or("dropped") },
            Duration::from_secs(600),
            wake.notified(),
            Duration::from_secs(3),
            || {
                let end = end.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(end) = end {
                    let _ = end.send("aborted");
                }
                async {}
            },
        )
        .await;
        assert_eq!(out, "aborted");
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        let now = asker.await.expect("asker").expect("it ran");
        assert_eq!(now.error.as_deref(), Some("aborted on request; aborting"));
    }
}
