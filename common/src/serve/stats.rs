//! Counters of each listener's connections (open, refused over the cap, ended by a timeout)
//! and their exposition: the agent adds them to its `/metrics`, the coordinator serves them
//! on its own `/metrics` listener.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which limit ended a connection or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The TLS handshake did not finish in time.
    Handshake,
    /// An HTTP/1 request head did not arrive whole in time.
    Header,
    /// Nothing was asked for the idle timeout.
    Idle,
    /// A request body stalled.
    Body,
    /// The client took none of a response for the body timeout.
    Send,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Handshake,
        Phase::Header,
        Phase::Idle,
        Phase::Body,
        Phase::Send,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::Header => "header",
            Phase::Idle => "idle",
            Phase::Body => "body",
            Phase::Send => "send",
        }
    }

    fn index(self) -> usize {
        match self {
            Phase::Handshake => 0,
            Phase::Header => 1,
            Phase::Idle => 2,
            Phase::Body => 3,
            Phase::Send => 4,
        }
    }
}

/// One listener's counters.
#[derive(Debug)]
pub struct ListenerStats {
    name: &'static str,
    open: AtomicU64,
    refused: AtomicU64,
    timeouts: [AtomicU64; Phase::ALL.len()],
}

impl ListenerStats {
    pub fn new(name: &'static str) -> ListenerStats {
        ListenerStats {
            name,
            open: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timeouts: Default::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a refusal; answers the total so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn timed_out(&self, phase: Phase) {
        self.timeouts[phase.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ListenerSnapshot {
        ListenerSnapshot {
            listener: self.name,
            open: self.open.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            timeouts: Phase::ALL.map(|p| (p, self.timeouts[p.index()].load(Ordering::Relaxed))),
        }
    }
}

/// One listener's counters at one moment.
#[derive(Debug, Clone)]
pub struct ListenerSnapshot {
    pub listener: &'static str,
    pub open: u64,
    pub refused: u64,
    pub timeouts: [(Phase, u64); Phase::ALL.len()],
}

/// The listeners of one process, for its `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Listeners(Arc<Mutex<Vec<Arc<ListenerStats>>>>);

impl Listeners {
    /// New counters for the listener `name` ("api", "metrics").
    pub fn register(&self, name: &'static str) -> Arc<ListenerStats> {
        let stats = Arc::new(ListenerStats::new(name));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stats.clone());
        stats
    }

    pub fn snapshot(&self) -> Vec<ListenerSnapshot> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }
}

/// Writes one family of `samples` (nothing when there are none): for collectors that make
/// their samples at scrape time.
pub fn family<L: EncodeLabelSet, M: EncodeMetric>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: Vec<(L, M)>,
) -> fmt::Result {
    let Some((_, first)) = samples.first() else {
        return Ok(());
    };
    let mut metric = enc.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes the connection families of `listeners` (nothing when there are none).
pub fn encode(enc: &mut DescriptorEncoder<'_>, listeners: &[ListenerSnapshot]) -> fmt::Result {
    let by = |s: &ListenerSnapshot| vec![("listener", s.listener)];
    family(
        enc,
        "plinth_http_connections_open",
        "Client connections open on each listener (TLS handshakes included).",
        listeners
            .iter()
            .map(|s| (by(s), ConstGauge::new(s.open as i64)))
            .collect(),
    )?;
    family(
        enc,
        "plinth_http_connections_refused",
        "Connections closed right after accept because the listener held max_connections.",
        listeners
            .iter()
            .map(|s| (by(s), ConstCounter::new(s.refused)))
            .collect(),
    )?;
    family(
        enc,
        "plinth_http_timeouts",
        "Connections (handshake, header, idle, send) or requests (body) ended by a timeout.",
        listeners
            .iter()
            .flat_map(|s| {
                s.timeouts.iter().map(|(phase, n)| {
                    (
                        vec![("listener", s.listener), ("phase", phase.name())],
                        ConstCounter::new(*n),
                    )
                })
            })
            .collect(),
    )
}

#[derive(Debug)]
struct Snapshot(Vec<ListenerSnapshot>);

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        encode(&mut enc, &self.0)
    }
}

/// `listeners` now as a `/metrics` body: (content type, text), OpenMetrics when asked for.
pub fn exposition(listeners: &Listeners, openmetrics: bool) -> (&'static str, String) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(listeners.snapshot())));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        tracing::error!("Encoding the connection metrics failed.");
    }
    if openmetrics {
        (crate::exposition::OPENMETRICS, text)
    } else {
        (
            crate::exposition::PROMETHEUS_TEXT,
            crate::exposition::prometheus_text(&text),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_in_both_formats() {
        let listeners = Listeners::default();
        let api = listeners.register("api");
        api.opened();
        api.opened();
        api.closed();
        api.refused();
        api.timed_out(Phase::Idle);
        listeners.register("metrics");
        let (kind, text) = exposition(&listeners, false);
        assert!(kind.starts_with("text/plain"), "{kind}");
        for line in [
            "# TYPE plinth_http_connections_open gauge",
            "plinth_http_connections_open{listener=\"api\"} 1",
            "plinth_http_connections_open{listener=\"metrics\"} 0",
            "# TYPE plinth_http_connections_refused_total counter",
            "plinth_http_connections_refused_total{listener=\"api\"} 1",
            "plinth_http_timeouts_total{listener=\"api\",phase=\"idle\"} 1",
            "plinth_http_timeouts_total{listener=\"api\",phase=\"header\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let (kind, om) = exposition(&listeners, true);
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(exposition(&Listeners::default(), false).1.is_empty());
    }
}
