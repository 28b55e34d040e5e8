//! The 14 host metrics of the seed as host detail shows them (rates and percentages, one value
//! per step for the whole host), and the PromQL over node_exporter's names that computes each,
//! so that the agent's ring and a Prometheus query mean the same thing.

use crate::image::text_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

text_enum!(
    /// One host series. Network and disk series add up the host's own NICs and disks
    /// ([`counts_as_nic`], [`counts_as_disk`]); percentages are of the whole host.
    HostSeries {
        NetRxBytes => "net_rx_bytes",
        NetTxBytes => "net_tx_bytes",
        DiskReadBytes => "disk_read_bytes",
        DiskWrittenBytes => "disk_written_bytes",
        Load1 => "load1",
        MemoryUsedPercent => "memory_used_percent",
        FilesystemUsedPercent => "filesystem_used_percent",
        DiskReads => "disk_reads",
        DiskWrites => "disk_writes",
        NetRxPackets => "net_rx_packets",
        NetTxPackets => "net_tx_packets",
        CpuUsedPercent => "cpu_used_percent",
        TcpEstablished => "tcp_established",
        ProcsBlocked => "procs_blocked",
    }
);

/// NIC names that add up to the host's bandwidth: physical and bonded-member interfaces
/// (`eth0`, `eno1`, `enp3s0f1`, `ib0`, `wlp2s0`, `p1p1`). Bridges, bonds, VLAN sub-interfaces,
/// guests' taps (`vnet*`) and loopback are left out: their traffic is already counted on the
/// physical NIC it crosses, or never leaves the host. The same rule as [`NIC_REGEX`].
pub fn counts_as_nic(device: &str) -> bool {
    let physical = ["en", "eth", "em", "ib", "wl"]
        .iter()
        .any(|p| device.starts_with(p))
        || device
            .strip_prefix('p')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    physical && !device.contains('.')
}

/// [`counts_as_nic`] as a PromQL (RE2, anchored) regular expression.
pub const NIC_REGEX: &str = "(en|eth|em|ib|wl|p[0-9])[^.]*";

/// Disks that add up to the host's throughput: whole disks. Device-mapper and md devices sit on
/// top of those (counting them would count the same I/O twice); zram, optical drives, nbd,
/// loop and ram disks are not storage the host's guests live on. The same rule as
/// [`DISK_EXCLUDE_REGEX`]; partitions never reach here (the exporter drops them as
/// node_exporter does).
pub fn counts_as_disk(device: &str) -> bool {
    let Some(stem) = device.strip_suffix(|c: char| c.is_ascii_digit()) else {
        return true;
    };
    let stem = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    !["dm-", "md", "zram", "sr", "nbd", "loop", "ram"].contains(&stem)
}

/// What [`counts_as_disk`] leaves out, as a PromQL regular expression.
pub const DISK_EXCLUDE_REGEX: &str = "(dm-|md|zram|sr|nbd|loop|ram)[0-9]+";

impl HostSeries {
    pub fn unit(self) -> &'static str {
        use HostSeries as S;
        match self {
            S::NetRxBytes | S::NetTxBytes | S::DiskReadBytes | S::DiskWrittenBytes => "bytes/s",
            S::NetRxPackets | S::NetTxPackets => "packets/s",
            S::DiskReads | S::DiskWrites => "ops/s",
            S::MemoryUsedPercent | S::FilesystemUsedPercent | S::CpuUsedPercent => "percent",
            S::Load1 => "load",
            S::TcpEstablished => "connections",
            S::ProcsBlocked => "processes",
        }
    }

    /// The seed's name for it.
    pub fn title(self) -> &'static str {
        use HostSeries as S;
        match self {
            S::NetRxBytes => "NIC receive bandwidth",
            S::NetTxBytes => "NIC transmit bandwidth",
            S::DiskReadBytes => "Disk read throughput",
            S::DiskWrittenBytes => "Disk write throughput",
            S::Load1 => "Load average (1 min)",
            S::MemoryUsedPercent => "Memory usage",
            S::FilesystemUsedPercent => "Filesystem usage",
            S::DiskReads => "Disk read operations",
            S::DiskWrites => "Disk write operations",
            S::NetRxPackets => "NIC receive packets",
            S::NetTxPackets => "NIC transmit packets",
            S::CpuUsedPercent => "CPU usage",
            S::TcpEstablished => "TCP connections (established)",
            S::ProcsBlocked => "Blocked processes",
        }
    }

    /// The PromQL that computes this series for one host. `selector` is label matchers that
    /// pick the host's target (`instance=~"10\\.0\\.0\\.5:[0-9]+"`); `window` a range such as
    /// `1m` for rates.
    pub fn promql(self, selector: &str, window: &str) -> String {
        use HostSeries as S;
        let rate = |metric: &str, filter: &str| {
            format!("sum(rate({metric}{{{selector}{filter}}}[{window}]))")
        };
        let nic = format!(",device=~\"{NIC_REGEX}\"");
        let disk = format!(",device!~\"{DISK_EXCLUDE_REGEX}\"");
        match self {
            S::NetRxBytes => rate("node_network_receive_bytes_total", &nic),
            S::NetTxBytes => rate("node_network_transmit_bytes_total", &nic),
            S::NetRxPackets => rate("node_network_receive_packets_total", &nic),
            S::NetTxPackets => rate("node_network_transmit_packets_total", &nic),
            S::DiskReadBytes => rate("node_disk_read_bytes_total", &disk),
            S::DiskWrittenBytes => rate("node_disk_written_bytes_total", &disk),
            S::DiskReads => rate("node_disk_reads_completed_total", &disk),
            S::DiskWrites => rate("node_disk_writes_completed_total", &disk),
            S::CpuUsedPercent => format!(
                "100 * (1 - sum(rate(node_cpu_seconds_total{{{selector},mode=~\"idle|iowait\"}}[{window}])) \
                 / sum(rate(node_cpu_seconds_total{{{selector}}}[{window}])))"
            ),
            S::MemoryUsedPercent => format!(
                "100 * (1 - sum(node_memory_MemAvailable_bytes{{{selector}}}) \
                 / sum(node_memory_MemTotal_bytes{{{selector}}}))"
            ),
            // A filesystem mounted twice (bind mounts) counts once.
            S::FilesystemUsedPercent => format!(
                "100 * (1 - sum(max by (device) (node_filesystem_avail_bytes{{{selector}}})) \
                 / sum(max by (device) (node_filesystem_size_bytes{{{selector}}})))"
            ),
            S::Load1 => format!("sum(node_load1{{{selector}}})"),
            S::TcpEstablished => format!("sum(node_netstat_Tcp_CurrEstab{{{selector}}})"),
            S::ProcsBlocked => format!("sum(node_procs_blocked{{{selector}}})"),
        }
    }

    /// `a,b,c` as series; an empty list means all of them.
    pub fn parse_list(text: &str) -> Result<Vec<HostSeries>, String> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let series = HostSeries::parse(name).ok_or_else(|| {
                format!("'{name}' is not a host metric ({})", HostSeries::choices())
            })?;
            if !out.contains(&series) {
                out.push(series);
            }
        }
        if out.is_empty() {
            out = HostSeries::ALL.to_vec();
        }
        Ok(out)
    }
}

/// Escapes `text` for a PromQL regular expression inside a double-quoted string: regex
/// metacharacters get a backslash, and every backslash is doubled for the string.
pub fn promql_regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        } else if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_the_seeds_fourteen() {
        assert_eq!(HostSeries::ALL.len(), 14);
        for s in HostSeries::ALL {
            assert!(!s.unit().is_empty() && !s.title().is_empty(), "{s}");
            let q = s.promql("instance=\"a:1\"", "1m");
            assert!(q.contains("instance=\"a:1\""), "{s}: {q}");
        }
    }

    #[test]
    fn nic_and_disk_rules() {
        let nics = [
            ("eth0", true),
            ("eno1", true),
            ("enp3s0f1", true),
            ("ib0", true),
            ("p1p1", true),
            ("wlp2s0", true),
            ("eth0.100", false),
            ("lo", false),
            ("vnet3", false),
            ("virbr0", false),
            ("br0", false),
            ("bond0", false),
            ("tap12", false),
            ("pbr", false),
        ];
        for (dev, want) in nics {
            assert_eq!(counts_as_nic(dev), want, "{dev}");
        }
        let disks = [
            ("sda", true),
            ("vda", true),
            ("nvme0n1", true),
            ("xvda", true),
            ("dm-0", false),
            ("md127", false),
            ("zram0", false),
            ("sr0", false),
            ("nbd3", false),
        ];
        for (dev, want) in disks {
            assert_eq!(counts_as_disk(dev), want, "{dev}");
        }
    }

    #[test]
    fn json_names_are_the_text_names() {
        for s in HostSeries::ALL {
            let json = serde_json::to_string(s).expect("serialise");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }

    #[test]
    fn series_lists() {
        assert_eq!(HostSeries::parse_list("").expect("all").len(), 14);
        assert_eq!(
            HostSeries::parse_list("load1, cpu_used_percent,load1").expect("two"),
            vec![HostSeries::Load1, HostSeries::CpuUsedPercent]
        );
        let err = HostSeries::parse_list("load5").expect_err("unknown");
        assert!(err.contains("load5") && err.contains("load1"), "{err}");
    }

    #[test]
    fn regex_literals() {
        assert_eq!(promql_regex_literal("10.0.0.5"), "10\\\\.0\\\\.0\\\\.5");
        assert_eq!(promql_regex_literal("[fd00::1]"), "\\\\[fd00::1\\\\]");
    }
}
