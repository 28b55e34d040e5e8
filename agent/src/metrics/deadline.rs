//! Runs one collector's blocking work under a deadline. Work past its deadline is abandoned,
//! not killed (a thread blocked in statvfs or in libvirt cannot be): the collector is then
//! "stuck" until that work returns, and is skipped rather than started again, so a hung peer
//! holds at most one thread per collector.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use tokio::time::Instant;

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// What became of one run.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// The work ended in an error (or panicked).
    Failed(String),
    /// The deadline passed first; the work goes on and the collector is stuck until it ends.
    TimedOut,
    /// Not started: an earlier run is still stuck.
    Stuck,
}

impl<T> Outcome<T> {
    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Done(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// Whether the deadline cost this run its result.
    pub fn was_late(&self) -> bool {
        matches!(self, Outcome::TimedOut | Outcome::Stuck)
    }
}

/// One collector's bookkeeping.
#[derive(Debug, Default)]
pub struct Slot {
    /// Runs past their deadline that have not returned yet.
    stuck: Arc<AtomicUsize>,
    /// Runs the deadline cost their result (timed out or skipped while stuck).
    timeouts: AtomicU64,
}

/// Travels with the work and marks the run done when dropped, wherever that happens.
pub struct Ticket {
    state: Arc<AtomicU8>,
    stuck: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.state.swap(DONE, Ordering::AcqRel) == ABANDONED {
            self.stuck.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The caller's side of a run: abandons it at the deadline.
pub struct Watch {
    state: Arc<AtomicU8>,
    stuck: Arc<AtomicUsize>,
}

impl Watch {
    fn abandon(&self) {
        if self
            .state
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.stuck.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Slot {
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    pub fn is_stuck(&self) -> bool {
        self.stuck.load(Ordering::Acquire) > 0
    }

    /// A ticket for new work, or `None` while earlier work is stuck.
    fn begin(&self) -> Option<(Ticket, Watch)> {
        if self.is_stuck() {
            return None;
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        Some((
            Ticket {
                state: state.clone(),
                stuck: self.stuck.clone(),
            },
            Watch {
                state,
                stuck: self.stuck.clone(),
            },
        ))
    }

    /// Runs `work(ticket)` (which must keep the ticket until its blocking part is over) and
    /// waits for it until `until`.
    pub async fn run<T, E, F, Fut>(&self, until: Instant, work: F) -> Outcome<T>
    where
        F: FnOnce(Ticket) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let Some((ticket, watch)) = self.begin() else {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
            return Outcome::Stuck;
        };
        match tokio::time::timeout_at(until, work(ticket)).await {
            Ok(Ok(v)) => Outcome::Done(v),
            Ok(Err(e)) => Outcome::Failed(e.to_string()),
            Err(_) => {
                watch.abandon();
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Outcome::TimedOut
            }
        }
    }

    /// Runs blocking `work` on the blocking pool until `until`.
    pub async fn run_blocking<T, E>(
        &self,
        until: Instant,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Outcome<T>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.run(until, |ticket| async move {
            let joined = tokio::task::spawn_blocking(move || {
                let _ticket = ticket;
                work().map_err(|e| e.to_string())
            })
            .await;
            match joined {
                Ok(result) => result,
                Err(e) => Err(format!("collector panicked: {e}")),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test]
    async fn quick_work_is_done() {
        let slot = Slot::default();
        let until = Instant::now() + Duration::from_secs(30);
        let out = slot.run_blocking(until, || Ok::<_, String>(7)).await;
        assert!(matches!(out, Outcome::Done(7)), "{out:?}");
        let failed = slot.run_blocking(until, || Err::<u8, _>("no file")).await;
        assert!(matches!(failed, Outcome::Failed(ref m) if m == "no file"));
        assert_eq!(slot.timeouts(), 0);
    }

    /// Work blocked until the test lets it go: the run returns at the deadline anyway (it
    /// could not return at all otherwise), the collector is stuck and skipped, and it
    /// recovers once the work ends.
    #[tokio::test]
    async fn hung_work_costs_its_deadline_then_is_skipped() {
        let slot = Slot::default();
        let (release, blocked) = mpsc::channel::<()>();
        let (finished_tx, finished) = mpsc::channel::<()>();
        let soon = Instant::now() + Duration::from_millis(50);
        let out = slot
            .run_blocking(soon, move || {
                let _ = blocked.recv();
                let _ = finished_tx.send(());
                Ok::<_, String>(1)
            })
            .await;
        assert!(matches!(out, Outcome::TimedOut), "{out:?}");
        assert!(slot.is_stuck());
        assert_eq!(slot.timeouts(), 1);

        let later = Instant::now() + Duration::from_secs(30);
        let skipped = slot.run_blocking(later, || Ok::<_, String>(2)).await;
        assert!(matches!(skipped, Outcome::Stuck), "{skipped:?}");
        assert_eq!(slot.timeouts(), 2);

        release.send(()).expect("the work waits");
        finished.recv().expect("the work ends");
        // The ticket drops right after the closure returns, on the blocking thread.
        for _ in 0..1000 {
            if !slot.is_stuck() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!slot.is_stuck(), "the abandoned work returned");
        let again = slot.run_blocking(later, || Ok::<_, String>(3)).await;
        assert!(matches!(again, Outcome::Done(3)), "{again:?}");
    }

    #[tokio::test]
    async fn concurrent_runs_do_not_block_each_other() {
        let slot = Arc::new(Slot::default());
        let until = Instant::now() + Duration::from_secs(30);
        let runs = (0..8).map(|i| {
            let slot = slot.clone();
            async move { slot.run_blocking(until, move || Ok::<_, String>(i)).await }
        });
        let outs = futures_util::future::join_all(runs).await;
        assert!(outs.iter().all(Outcome::is_done));
    }
}
