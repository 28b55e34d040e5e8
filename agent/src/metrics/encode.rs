//! One scrape's readings in the exposition formats, through prometheus-client: OpenMetrics for
//! scrapers that ask for it (Prometheus does), and the classic Prometheus text format 0.0.4,
//! which node_exporter serves and `promtool check metrics` reads, for everyone else.

use super::domains::DomainSample;
use super::host::{Collector, HostSnapshot};
use prometheus_client::collector::Collector as PromCollector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt::{self, Write};

pub use plinth_common::exposition::{
    OPENMETRICS, PROMETHEUS_TEXT, prometheus_text, wants_openmetrics,
};

/// What one scrape read.
#[derive(Debug, Default)]
pub struct Scrape {
    pub host: HostSnapshot,
    /// `None`: the domains collector failed or ran out of time.
    pub domains: Option<Vec<DomainSample>>,
    /// Per collector: seconds, success (the host's reports plus the domains collector's).
    pub reports: Vec<super::host::Report>,
    pub timeouts: Vec<(Collector, u64)>,
    /// The agent's listeners: open, refused and timed-out connections.
    pub connections: Vec<plinth_common::serve::ListenerSnapshot>,
}

/// A label value escaped as both formats require (prometheus-client writes values verbatim).
#[derive(Debug, Clone, Copy)]
struct V<'a>(&'a str);

impl EncodeLabelValue for V<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Writes one family: its descriptor, then one sample per `(labels, value)`.
fn family<L, M>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else {
        // A family with no samples is left out entirely, as node_exporter does.
        return Ok(());
    };
    let mut metric = enc.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a family of one sample without labels.
fn single(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeMetric,
) -> fmt::Result {
    value.encode(enc.encode_descriptor(name, help, None, value.metric_type())?)
}

fn device(name: &str) -> [(&'static str, V<'_>); 1] {
    [("device", V(name))]
}

fn fs_labels(f: &super::filesystem::FsStat) -> [(&'static str, V<'_>); 3] {
    [
        ("device", V(&f.mount.device)),
        ("fstype", V(&f.mount.fstype)),
        ("mountpoint", V(&f.mount.mountpoint)),
    ]
}

fn domain_labels(d: &DomainSample) -> [(&'static str, V<'_>); 4] {
    [
        ("domain", V(&d.stats.name)),
        ("uuid", V(&d.stats.uuid)),
        ("instance_id", V(&d.instance_id)),
        ("tenant_id", V(&d.tenant_id)),
    ]
}

fn domain_device_labels<'a>(d: &'a DomainSample, device: &'a str) -> [(&'static str, V<'a>); 5] {
    let [a, b, c, e] = domain_labels(d);
    [a, b, c, e, ("target_device", V(device))]
}

fn counter<N>(v: N) -> ConstCounter<N> {
    ConstCounter::new(v)
}

fn gauge<N>(v: N) -> ConstGauge<N> {
    ConstGauge::new(v)
}

impl PromCollector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        self.encode_host(&mut enc)?;
        if let Some(domains) = &self.domains {
            encode_domains(&mut enc, domains)?;
        }
        self.encode_self(&mut enc)?;
        plinth_common::serve::stats::encode(&mut enc, &self.connections)
    }
}

impl Scrape {
    fn encode_host(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let h = &self.host;
        if let Some(net) = &h.net {
            for (name, help, get) in [
                (
                    "node_network_receive_bytes",
                    "Network device statistic receive_bytes.",
                    (|d| d.receive_bytes) as fn(&super::net::NetDev) -> u64,
                ),
                (
                    "node_network_transmit_bytes",
                    "Network device statistic transmit_bytes.",
                    |d| d.transmit_bytes,
                ),
                (
                    "node_network_receive_packets",
                    "Network device statistic receive_packets.",
                    |d| d.receive_packets,
                ),
                (
                    "node_network_transmit_packets",
                    "Network device statistic transmit_packets.",
                    |d| d.transmit_packets,
                ),
            ] {
                family(
                    enc,
                    name,
                    help,
                    net.iter().map(|d| (device(&d.device), counter(get(d)))),
                )?;
            }
        }
        if let Some(disks) = &h.disks {
            for (name, help, get) in [
                (
                    "node_disk_read_bytes",
                    "The total number of bytes read successfully.",
                    (|d| d.read_bytes) as fn(&super::disk::DiskStat) -> u64,
                ),
                (
                    "node_disk_written_bytes",
                    "The total number of bytes written successfully.",
                    |d| d.written_bytes,
                ),
                (
                    "node_disk_reads_completed",
                    "The total number of reads completed successfully.",
                    |d| d.reads_completed,
                ),
                (
                    "node_disk_writes_completed",
                    "The total number of writes completed successfully.",
                    |d| d.writes_completed,
                ),
            ] {
                family(
                    enc,
                    name,
                    help,
                    disks.iter().map(|d| (device(&d.device), counter(get(d)))),
                )?;
            }
        }
        if let Some(load) = h.load {
            for (name, help, v) in [
                ("node_load1", "1m load average.", load.one),
                ("node_load5", "5m load average.", load.five),
                ("node_load15", "15m load average.", load.fifteen),
            ] {
                single(enc, name, help, gauge(v))?;
            }
        }
        if let Some(mem) = h.memory {
            single(
                enc,
                "node_memory_MemTotal_bytes",
                "Memory information field MemTotal_bytes.",
                gauge(mem.total_bytes),
            )?;
            single(
                enc,
                "node_memory_MemAvailable_bytes",
                "Memory information field MemAvailable_bytes.",
                gauge(mem.available_bytes),
            )?;
        }
        if let Some(fs) = &h.filesystems {
            family(
                enc,
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                fs.iter().map(|f| (fs_labels(f), gauge(f.size_bytes))),
            )?;
            family(
                enc,
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                fs.iter().map(|f| (fs_labels(f), gauge(f.avail_bytes))),
            )?;
        }
        if let Some(stat) = &h.stat {
            let mut cpu_names = Vec::with_capacity(stat.cpus.len());
            for c in &stat.cpus {
                cpu_names.push(c.cpu.to_string());
            }
            family(
                enc,
                "node_cpu_seconds",
                "Seconds the CPUs spent in each mode.",
                stat.cpus.iter().zip(&cpu_names).flat_map(|(c, name)| {
                    super::cpu::MODES
                        .iter()
                        .zip(c.seconds)
                        .map(move |(mode, s)| ([("cpu", V(name)), ("mode", V(mode))], counter(s)))
                }),
            )?;
            if let Some(blocked) = stat.procs_blocked {
                single(
                    enc,
                    "node_procs_blocked",
                    "Number of processes blocked waiting for I/O to complete.",
                    gauge(blocked),
                )?;
            }
        }
        if let Some(estab) = h.tcp_established {
            single(
                enc,
                "node_netstat_Tcp_CurrEstab",
                "Statistic TcpCurrEstab.",
                gauge(estab),
            )?;
        }
        if let Some(inuse) = h.tcp_inuse {
            single(
                enc,
                "node_sockstat_TCP_inuse",
                "Number of TCP sockets in state inuse.",
                gauge(inuse),
            )?;
        }
        Ok(())
    }

    /// The exporter's own health: how each collector did, and how often a deadline cost one.
    fn encode_self(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let name = |c: Collector| [("collector", V(c.name()))];
        family(
            enc,
            "plinth_collector_duration_seconds",
            "How long each collector took in this scrape (at most its deadline).",
            self.reports
                .iter()
                .map(|r| (name(r.collector), gauge(r.seconds))),
        )?;
        family(
            enc,
            "plinth_collector_success",
            "Whether each collector gave its series in this scrape (1) or not (0).",
            self.reports
                .iter()
                .map(|r| (name(r.collector), gauge(i64::from(r.success)))),
        )?;
        family(
            enc,
            "plinth_collector_timeouts",
            "Collector runs whose series a deadline cost (a call too slow, or one still stuck).",
            self.timeouts.iter().map(|(c, n)| (name(*c), counter(*n))),
        )
    }
}

fn encode_domains(enc: &mut DescriptorEncoder<'_>, domains: &[DomainSample]) -> fmt::Result {
    let base = domain_labels;
    family(
        enc,
        "libvirt_domain_info_cpu_time_seconds",
        "Amount of CPU time used by the domain, in seconds.",
        domains.iter().filter_map(|d| {
            d.stats
                .cpu_time_ns
                .map(|ns| (base(d), counter(ns as f64 / 1e9)))
        }),
    )?;
    family(
        enc,
        "libvirt_domain_info_memory_usage_bytes",
        "Memory usage of the domain, in bytes.",
        domains
            .iter()
            .filter_map(|d| d.stats.memory_bytes.map(|m| (base(d), gauge(m)))),
    )?;
    family(
        enc,
        "libvirt_domain_info_virtual_cpus",
        "Number of virtual CPUs for the domain.",
        domains
            .iter()
            .filter_map(|d| d.stats.vcpus.map(|v| (base(d), gauge(v)))),
    )?;
    let with_device = domain_device_labels;
    type BlockGet = fn(&crate::libvirt::BlockStats) -> u64;
    let block: [(&str, &str, BlockGet); 4] = [
        (
            "libvirt_domain_block_stats_read_bytes",
            "Number of bytes read from a block device, in bytes.",
            |b| b.read_bytes,
        ),
        (
            "libvirt_domain_block_stats_read_requests",
            "Number of read requests from a block device.",
            |b| b.read_requests,
        ),
        (
            "libvirt_domain_block_stats_write_bytes",
            "Number of bytes written to a block device, in bytes.",
            |b| b.write_bytes,
        ),
        (
            "libvirt_domain_block_stats_write_requests",
            "Number of write requests to a block device.",
            |b| b.write_requests,
        ),
    ];
    for (name, help, get) in block {
        family(
            enc,
            name,
            help,
            domains.iter().flat_map(|d| {
                d.stats
                    .blocks
                    .iter()
                    .map(move |b| (with_device(d, &b.device), counter(get(b))))
            }),
        )?;
    }
    type NetGet = fn(&crate::libvirt::InterfaceStats) -> u64;
    let net: [(&str, &str, NetGet); 4] = [
        (
            "libvirt_domain_interface_stats_receive_bytes",
            "Number of bytes received on a network interface, in bytes.",
            |n| n.receive_bytes,
        ),
        (
            "libvirt_domain_interface_stats_receive_packets",
            "Number of packets received on a network interface.",
            |n| n.receive_packets,
        ),
        (
            "libvirt_domain_interface_stats_transmit_bytes",
            "Number of bytes transmitted on a network interface, in bytes.",
            |n| n.transmit_bytes,
        ),
        (
            "libvirt_domain_interface_stats_transmit_packets",
            "Number of packets transmitted on a network interface.",
            |n| n.transmit_packets,
        ),
    ];
    for (name, help, get) in net {
        family(
            enc,
            name,
            help,
            domains.iter().flat_map(|d| {
                d.stats
                    .interfaces
                    .iter()
                    .map(move |n| (with_device(d, &n.device), counter(get(n))))
            }),
        )?;
    }
    Ok(())
}

/// The scrape as OpenMetrics text.
pub fn openmetrics(scrape: Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; the encoder's own errors are formatting errors of
    // the same kind.
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        tracing::error!("Encoding the metrics failed.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::{BlockStats, DomainStats};
    use crate::metrics::host::Report;
    use crate::metrics::load::LoadAvg;
    use crate::metrics::net::NetDev;

    fn scrape() -> Scrape {
        Scrape {
            host: HostSnapshot {
                net: Some(vec![NetDev {
                    device: "eth0".into(),
                    receive_bytes: 10,
                    receive_packets: 1,
                    transmit_bytes: 20,
                    transmit_packets: 2,
                }]),
                load: Some(LoadAvg {
                    one: 0.5,
                    five: 0.25,
                    fifteen: 0.125,
                }),
                ..HostSnapshot::default()
            },
            domains: Some(vec![DomainSample {
                stats: DomainStats {
                    uuid: "u-1".into(),
                    name: "we\"ird\\name".into(),
                    cpu_time_ns: Some(1_500_000_000),
                    blocks: vec![BlockStats {
                        device: "vda".into(),
                        read_bytes: 4096,
                        ..BlockStats::default()
                    }],
                    ..DomainStats::default()
                },
                instance_id: String::new(),
                tenant_id: String::new(),
            }]),
            reports: vec![Report {
                collector: Collector::Domains,
                seconds: 0.25,
                success: true,
            }],
            timeouts: vec![(Collector::Domains, 3)],
            connections: Vec::new(),
        }
    }

    #[test]
    fn openmetrics_and_prometheus_text() {
        let om = openmetrics(scrape());
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE node_network_receive_bytes counter\n"),
            "{om}"
        );
        assert!(
            om.contains("node_network_receive_bytes_total{device=\"eth0\"} 10\n"),
            "{om}"
        );
        assert!(om.contains("node_load1 0.5\n"), "{om}");
        assert!(
            om.contains(
                "libvirt_domain_info_cpu_time_seconds_total{domain=\"we\\\"ird\\\\name\",uuid=\"u-1\",instance_id=\"\",tenant_id=\"\"} 1.5\n"
            ),
            "{om}"
        );
        assert!(om.contains("target_device=\"vda\"} 4096\n"), "{om}");
        assert!(
            om.contains("plinth_collector_timeouts_total{collector=\"domains\"} 3\n"),
            "{om}"
        );
        assert!(
            !om.contains("libvirt_domain_info_memory_usage_bytes"),
            "a family with no samples is left out"
        );

        let text = prometheus_text(&om);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains(
                "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
                 # TYPE node_network_receive_bytes_total counter\n\
                 node_network_receive_bytes_total{device=\"eth0\"} 10\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n"),
            "{text}"
        );
    }

    #[test]
    fn accept_headers() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
