//! Host monitoring: the seed's 14 host metrics under node_exporter's names and per-instance
//! metrics under the libvirt exporter's, read afresh on every scrape (each collector on its
//! own under one deadline, so a slow one costs only its own series), and a bounded history of
//! the 14 as the host detail shows them. One collector per file; server.rs serves `/metrics`.

mod cpu;
mod deadline;
mod disk;
mod domains;
mod encode;
mod filesystem;
mod hardware;
mod history;
mod host;
mod load;
mod memory;
mod net;
mod server;
mod tcp;

pub use domains::Owners;
pub use hardware::Hardware;
pub use host::ProcRoot;
pub use server::{MetricsTls, start};

use crate::libvirt::Libvirt;
use encode::Scrape;
use history::History;
use host::{Collector, Report, Slots};
use plinth_common::api::{HostMetrics, MetricsSource};
use plinth_common::metrics::HostSeries;
use plinth_common::serve::Listeners;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
pub const DEFAULT_STEP: Duration = Duration::from_secs(15);
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// How long any collector may take in a scrape.
    pub deadline: Duration,
    /// Time between two history points.
    pub step: Duration,
    /// How far back the history reaches.
    pub history: Duration,
    pub proc_root: ProcRoot,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            deadline: DEFAULT_DEADLINE,
            step: DEFAULT_STEP,
            history: DEFAULT_HISTORY,
            proc_root: ProcRoot::default(),
        }
    }
}

pub struct Metrics {
    settings: MetricsSettings,
    libvirt: Libvirt,
    /// Which tenant owns each instance; heartbeats keep it current.
    pub owners: Owners,
    slots: Slots,
    history: Mutex<History>,
    /// The agent's listeners, whose connection counters each scrape shows.
    pub listeners: Listeners,
    /// Bare-metal sensors from the last health sweep (ipmi_exporter's series).
    pub hardware: Hardware,
}

/// A scrape's body and its content type.
pub struct Exposition {
    pub content_type: &'static str,
    pub body: String,
}

impl Metrics {
    pub fn new(libvirt: Libvirt, settings: MetricsSettings) -> Metrics {
        Metrics {
            history: Mutex::new(History::new(settings.step, settings.history)),
            settings,
            libvirt,
            owners: Owners::default(),
            slots: Slots::new(),
            listeners: Listeners::default(),
            hardware: Hardware::default(),
        }
    }

    /// Every collector, host and domains at once, none past the deadline.
    async fn scrape(&self) -> Scrape {
        let until = Instant::now() + self.settings.deadline;
        let domains = async {
            let start = Instant::now();
            let outcome = domains::collect(
                &self.libvirt,
                &self.owners,
                self.slots.get(Collector::Domains),
                until,
            )
            .await;
            match &outcome {
                deadline::Outcome::Failed(e) => {
                    tracing::debug!(error = %e, "Domain stats failed.");
                }
                o if o.was_late() => {
                    tracing::debug!("Domain stats did not come in time; left out of this scrape.");
                }
                _ => {}
            }
            let report = Report {
                collector: Collector::Domains,
                seconds: start.elapsed().as_secs_f64(),
                success: outcome.is_done(),
            };
            (outcome.ok(), report)
        };
        let (host, (domains, report)) = tokio::join!(
            host::collect(&self.slots, &self.settings.proc_root, until),
            domains
        );
        let mut reports = host.reports.clone();
        reports.push(report);
        Scrape {
            host,
            domains,
            reports,
            timeouts: self.slots.timeouts(),
            connections: self.listeners.snapshot(),
        }
    }

    /// One scrape in OpenMetrics or in the Prometheus text format.
    pub async fn exposition(&self, openmetrics: bool) -> Exposition {
        let mut text = encode::openmetrics(self.scrape().await);
        // The hardware families go before OpenMetrics' closing `# EOF`.
        let at = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(at, &self.hardware.encode());
        if openmetrics {
            Exposition {
                content_type: encode::OPENMETRICS,
                body: text,
            }
        } else {
            Exposition {
                content_type: encode::PROMETHEUS_TEXT,
                body: encode::prometheus_text(&text),
            }
        }
    }

    /// Reads the host and adds a history point.
    async fn sample(&self) {
        let t_ms = plinth_common::timefmt::now_ms();
        let at = std::time::Instant::now();
        let until = Instant::now() + self.settings.deadline;
        let snap = host::collect(&self.slots, &self.settings.proc_root, until).await;
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(t_ms, at, &snap);
    }

    /// Adds a history point every step until `stop`.
    pub async fn record_history(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.step);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => self.sample().await,
            }
        }
    }

    /// The history of `names` from `since_ms` on.
    pub fn history(
        &self,
        host_id: &str,
        names: &[HostSeries],
        since_ms: Option<i64>,
    ) -> HostMetrics {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        HostMetrics {
            host_id: host_id.to_string(),
            source: MetricsSource::Agent,
            step_s: history.step().as_secs().max(1) as u32,
            series: history.series(names, since_ms),
        }
    }
}
