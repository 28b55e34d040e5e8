//! The coordinator's in-process series: what only this process sees as it happens (API
//! requests, scheduler decisions, store transaction times, change-feed subscribers, the job
//! lease). One set per process, recorded through the functions here from anywhere; labels are
//! route templates, kinds and reasons, never ids.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

struct Series {
    http_requests: Histograms,
    scheduler_decisions: Family<Labels, Counter>,
    scheduler_refusals: Family<Labels, Counter>,
    store_transactions: Histograms,
    feed_subscribers: Gauge,
    job_lease_held: Gauge,
}

fn http_histogram() -> Histogram {
    // 1 ms .. 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn store_histogram() -> Histogram {
    // 0.1 ms .. 3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Why a placement found no host, as a label ([`crate::scheduler::Rejection::reason`]) — every
/// one exported from the start, so alert rules and dashboards see a series before the first.
pub const REFUSAL_REASONS: [&str; 9] = [
    "no_hosts",
    "excluded",
    "other_cluster",
    "not_available",
    "agent_offline",
    "cores",
    "memory",
    "no_gpu",
    "no_nic",
];

static SERIES: LazyLock<Series> = LazyLock::new(|| {
    let s = Series {
        http_requests: Family::new_with_constructor(http_histogram),
        scheduler_decisions: Family::default(),
        scheduler_refusals: Family::default(),
        store_transactions: Family::new_with_constructor(store_histogram),
        feed_subscribers: Gauge::default(),
        job_lease_held: Gauge::default(),
    };
    for outcome in ["placed", "refused"] {
        s.scheduler_decisions
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc_by(0);
    }
    for reason in REFUSAL_REASONS {
        s.scheduler_refusals
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(0);
    }
    s
});

/// One API request: `route` is the matched template (`/v1/hosts/{id}`), never the path.
pub fn observe_http(route: &str, method: &str, status: u16, took: Duration) {
    SERIES
        .http_requests
        .get_or_create(&vec![
            ("route", route.to_string()),
            ("method", method.to_string()),
            ("code", status.to_string()),
        ])
        .observe(took.as_secs_f64());
}

/// One placement decision: a host was chosen, or none was suitable (`refused` names the
/// reason that ruled out the most hosts).
pub fn scheduler_decision(refused: Option<&'static str>) {
    let outcome = if refused.is_some() {
        "refused"
    } else {
        "placed"
    };
    SERIES
        .scheduler_decisions
        .get_or_create(&vec![("outcome", outcome.to_string())])
        .inc();
    if let Some(reason) = refused {
        SERIES
            .scheduler_refusals
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }
}

/// How long one store transaction of `kind` took, commit included.
pub fn observe_store_transaction(kind: &'static str, took: Duration) {
    SERIES
        .store_transactions
        .get_or_create(&vec![("kind", kind.to_string())])
        .observe(took.as_secs_f64());
}

/// Runs `work` (one store transaction) and records its time as `kind`.
pub async fn store_transaction<T>(kind: &'static str, work: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = work.await;
    observe_store_transaction(kind, started.elapsed());
    out
}

/// Whether this coordinator holds the job lease (runs jobs). A single coordinator always does
/// while it serves; 0 from the moment shutdown begins.
pub fn set_job_lease_held(held: bool) {
    SERIES.job_lease_held.set(i64::from(held));
}

/// A change-feed subscriber, counted while this lives.
#[derive(Debug)]
pub struct Subscriber(());

impl Subscriber {
    pub fn join() -> Subscriber {
        SERIES.feed_subscribers.inc();
        Subscriber(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        SERIES.feed_subscribers.dec();
    }
}

/// Adds the in-process families to `registry` (they stay live: a scrape reads them now).
pub fn register(registry: &mut Registry) {
    let s = &*SERIES;
    registry.register(
        "plinth_coordinator_http_request_duration_seconds",
        "API requests by route template, method and status code, and their latency",
        s.http_requests.clone(),
    );
    registry.register(
        "plinth_coordinator_scheduler_decisions",
        "Placement decisions: a host was placed, or the request was refused",
        s.scheduler_decisions.clone(),
    );
    registry.register(
        "plinth_coordinator_scheduler_refusals",
        "Refused placements by the reason that ruled out the most hosts",
        s.scheduler_refusals.clone(),
    );
    registry.register(
        "plinth_coordinator_store_transaction_duration_seconds",
        "Store transactions by kind and their latency, commit included",
        s.store_transactions.clone(),
    );
    registry.register(
        "plinth_coordinator_change_feed_subscribers",
        "Change-feed (SSE and WebSocket) subscribers connected now",
        s.feed_subscribers.clone(),
    );
    registry.register(
        "plinth_coordinator_job_lease_held",
        "1 while this coordinator holds the job lease and runs jobs, else 0",
        s.job_lease_held.clone(),
    );
}
