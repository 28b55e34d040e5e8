//! The job runner: every background task of the coordinator starts here, named, tracked and
//! cancellable, so that shutdown can stop them and wait for them (and so that "start a job"
//! stays in one place for whatever later decides which coordinator may run jobs).
//!
//! Two kinds of task: [`Jobs::spawn`] runs a task of this coordinator's own (a listener, a
//! console bridge, an upload it receives); [`Jobs::spawn_job`] runs a job of the region
//! (drains, migrations, imports, preparation ...), which only the coordinator holding the job
//! lease (`lease.rs`) runs, inside its term: every store write such a job makes checks the
//! term's epoch, and the term's end cancels what [`Jobs::token`] gave its tasks.
//!
//! Tests inside `#[cfg(test)] mod tests` may still call `tokio::spawn` directly (concurrent
//! callers, fake peers); the coordinator's own code never does.

pub mod api;
pub mod lease;
pub mod operations;

use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// A term of the job lease: its epoch, the token its tasks stop on, and its tasks.
#[derive(Clone, Debug)]
pub struct Term {
    pub epoch: i64,
    token: CancellationToken,
    tasks: TaskTracker,
}

tokio::task_local! {
    /// The term a job runs in; tasks it spawns inherit it.
    static TERM: Term;
}

/// The epoch the current task's store writes must find in the lease, when it is a job.
pub fn fence() -> Option<i64> {
    TERM.try_with(|t| t.epoch).ok()
}

/// The current task's term's epoch for a query of what the term does not run yet
/// (`COALESCE(epoch, -1) <> $n`): outside a term, one no operation holds, so that every
/// running one is listed.
pub fn term_epoch() -> i64 {
    fence().unwrap_or(i64::MIN)
}

/// Starts background tasks and stops them: a `TaskTracker` plus the root `CancellationToken`
/// that long-running loops watch. Cheap to clone; clones share the tasks.
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// How many tasks of each name are running, for the log at the shutdown deadline.
    running: Mutex<BTreeMap<&'static str, usize>>,
    /// The lease's term while this coordinator holds it.
    term: Mutex<Option<Term>>,
}

impl Inner {
    // The map is plain counts, updated without an await: a poisoned lock is still usable.
    fn running(&self) -> MutexGuard<'_, BTreeMap<&'static str, usize>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a task as running from its spawn until it ends, however it ends.
struct Running {
    inner: Arc<Inner>,
    name: &'static str,
}

impl Running {
    fn enter(inner: &Arc<Inner>, name: &'static str) -> Running {
        *inner.running().entry(name).or_default() += 1;
        Running {
            inner: inner.clone(),
            name,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.inner.running();
        if let Some(n) = running.get_mut(self.name) {
            *n -= 1;
            if *n == 0 {
                running.remove(self.name);
            }
        }
    }
}

/// What `shutdown` left behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Tasks still running at the deadline, by name, with how many of each.
    pub still_running: Vec<(&'static str, usize)>,
}

impl Stopped {
    /// Every task ended within the deadline.
    pub fn finished(&self) -> bool {
        self.still_running.is_empty()
    }
}

impl Jobs {
    pub fn new() -> Jobs {
        Jobs::default()
    }

    /// Starts `job` as a tracked task named `name` (the name is in the logs). A task that
    /// panics is logged with its name; its handle still reports the panic, and the runner
    /// and the other tasks carry on.
    ///
    /// Spawned from a job, the task stays in the job's term.
    pub fn spawn<F>(&self, name: &'static str, job: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_in(TERM.try_with(Term::clone).ok(), name, job)
    }

    /// Starts a job of the region in this coordinator's term of the job lease (the caller's,
    /// when a job starts it). Without one it does not run: the operation row it would have
    /// worked on waits for the lease's holder. Answers whether it runs here.
    pub fn spawn_job<F>(&self, name: &'static str, job: F) -> bool
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let term = TERM.try_with(Term::clone).ok().or_else(|| self.term());
        match term {
            Some(term) => {
                drop(self.spawn_in(Some(term), name, job));
                true
            }
            None => {
                info!(
                    job = name,
                    "Not starting a job here: another coordinator holds the job lease."
                );
                false
            }
        }
    }

    fn spawn_in<F>(&self, term: Option<Term>, name: &'static str, job: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = Running::enter(&self.inner, name);
        let job = async move {
            let _running = running;
            match AssertUnwindSafe(job).catch_unwind().await {
                Ok(out) => out,
                Err(panic) => {
                    error!(job = name, panic = %panic_message(panic.as_ref()), "A background job panicked.");
                    std::panic::resume_unwind(panic)
                }
            }
        };
        match term {
            None => self.inner.tracker.spawn(job),
            Some(term) => {
                let tracked = term.tasks.track_future(job);
                self.inner.tracker.spawn(TERM.scope(term, tracked))
            }
        }
    }

    /// The token loops stop on: the term's inside a job (cancelled when the term ends or
    /// shutdown begins), else the runner's (cancelled when shutdown begins).
    pub fn token(&self) -> CancellationToken {
        TERM.try_with(|t| t.token.clone())
            .unwrap_or_else(|_| self.inner.cancel.clone())
    }

    /// The term this coordinator holds the job lease in, if it does.
    pub fn term(&self) -> Option<Term> {
        self.inner
            .term
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Begins a term of the lease at `epoch`; `work` (resuming the region's jobs, starting
    /// its loops) runs inside it.
    pub(crate) async fn begin_term<F: Future>(&self, epoch: i64, work: F) -> F::Output {
        let term = Term {
            epoch,
            token: self.inner.cancel.child_token(),
            tasks: TaskTracker::new(),
        };
        *self.inner.term.lock().unwrap_or_else(|p| p.into_inner()) = Some(term.clone());
        TERM.scope(term, work).await
    }

    /// Runs `work` inside the current term, if this coordinator holds one.
    pub(crate) async fn within_term<F: Future>(&self, work: F) -> Option<F::Output> {
        let term = self.term()?;
        Some(TERM.scope(term, work).await)
    }

    /// Ends the current term: its jobs are cancelled (and fenced, should they not stop) and
    /// waited for up to `deadline`. Answers the epoch it ended.
    pub(crate) async fn end_term(&self, deadline: Duration) -> Option<i64> {
        let term = self
            .inner
            .term
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        term.token.cancel();
        term.tasks.close();
        if tokio::time::timeout(deadline, term.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                epoch = term.epoch,
                jobs = term.tasks.len(),
                "Jobs of the lost term still running; their writes are refused."
            );
        }
        Some(term.epoch)
    }

    /// A token cancelled with the runner's, that a task may also cancel on its own.
    pub fn child_token(&self) -> CancellationToken {
        self.inner.cancel.child_token()
    }

    /// Whether shutdown has begun.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Tasks running now, by name, with how many of each.
    pub fn running(&self) -> Vec<(&'static str, usize)> {
        self.inner
            .running()
            .iter()
            .map(|(name, n)| (*name, *n))
            .collect()
    }

    /// Cancels the token, then waits up to `deadline` for every task, including those
    /// started while it waits. What is still running at the deadline is logged and left to
    /// end with the process: every durable job resumes from its store row at the next start.
    pub async fn shutdown(&self, deadline: Duration) -> Stopped {
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_ok()
        {
            info!("Every background job stopped.");
            return Stopped {
                still_running: Vec::new(),
            };
        }
        let still_running = self.running();
        let names = still_running
            .iter()
            .map(|(name, n)| format!("{name} x{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        warn!(deadline = ?deadline, still_running = %names,
            "Jobs still running at the shutdown deadline; exiting without them (they resume at the next start).");
        Stopped { still_running }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(not a string)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_task_that_watches_the_token_is_cancelled_and_awaited() {
        let jobs = Jobs::new();
        let ended = Arc::new(AtomicBool::new(false));
        let (token, flag) = (jobs.token(), ended.clone());
        let (started_tx, started) = tokio::sync::oneshot::channel();
        jobs.spawn("loop", async move {
            let _ = started_tx.send(());
            token.cancelled().await;
            // Work after the cancel still counts: shutdown waits for it.
            tokio::task::yield_now().await;
            flag.store(true, Ordering::SeqCst);
        });
        started.await.expect("the task started");
        assert_eq!(jobs.running(), vec![("loop", 1)]);
        let stopped = jobs.shutdown(Duration::from_secs(30)).await;
        assert!(stopped.finished(), "{stopped:?}");
        assert!(
            ended.load(Ordering::SeqCst),
            "shutdown returned before the task ended"
        );
        assert!(jobs.running().is_empty());
        assert!(jobs.is_cancelled());
    }

    #[tokio::test]
    async fn child_tokens_are_cancelled_with_the_runner() {
        let jobs = Jobs::new();
        let child = jobs.child_token();
        let own = jobs.child_token();
        own.cancel();
        assert!(!jobs.is_cancelled(), "a child's cancel stays its own");
        assert!(!child.is_cancelled());
        jobs.shutdown(Duration::from_secs(1)).await;
        assert!(child.is_cancelled());
    }

    #[tokio::test]
    async fn the_deadline_is_honoured_for_a_task_that_ignores_cancellation() {
        let jobs = Jobs::new();
        let stubborn = jobs.spawn("stubborn", std::future::pending::<()>());
        jobs.spawn("polite", {
            let token = jobs.token();
            async move { token.cancelled().await }
        });
        let stopped = jobs.shutdown(Duration::from_millis(200)).await;
        assert_eq!(stopped.still_running, vec![("stubborn", 1)]);
        assert!(!stopped.finished());
        assert!(!stubborn.is_finished());
        stubborn.abort();
    }

    /// Log lines written while `f` runs on this thread.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
    }

    // The current-thread runtime polls every task on this thread, under the capture.
    #[tokio::test]
    async fn a_panicking_task_is_reported_and_the_runner_carries_on() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _capture = tracing::subscriber::set_default(subscriber);
        let jobs = Jobs::new();
        let crashed = jobs.spawn("crasher", async { panic!("boom") });
        let err = crashed.await.expect_err("the handle reports the panic");
        assert!(err.is_panic());
        let text = log.text();
        assert!(
            text.contains("A background job panicked.")
                && text.contains("crasher")
                && text.contains("boom"),
            "{text}"
        );
        assert!(
            jobs.running().is_empty(),
            "a panicked task no longer counts"
        );
        let after = jobs.spawn("after", async { 7 });
        assert_eq!(after.await.expect("a later task runs"), 7);
        assert!(jobs.shutdown(Duration::from_secs(1)).await.finished());
    }

    #[test]
    fn panic_messages() {
        let cases: [(&str, Box<dyn std::any::Any + Send>, &str); 3] = [
            ("a literal", Box::new("boom"), "boom"),
            ("a formatted one", Box::new(String::from("bad 7")), "bad 7"),
            ("anything else", Box::new(7u8), "(not a string)"),
        ];
        for (label, panic, want) in cases {
            assert_eq!(panic_message(panic.as_ref()), want, "{label}");
        }
    }
}
