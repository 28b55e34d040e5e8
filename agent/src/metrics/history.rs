//! The agent's recent history of the seed's 14 host metrics: a bounded ring, one point per
//! step (by default 240 points: an hour at 15 s), each a rate over the step or a level at its
//! end, computed the way `plinth_common::metrics::HostSeries::promql` computes them from
//! Prometheus.

use super::host::HostSnapshot;
use plinth_common::api::{MetricPoint, MetricSeries};
use plinth_common::metrics::{HostSeries, counts_as_disk, counts_as_nic};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const N: usize = 14;

fn index(s: HostSeries) -> usize {
    // ALL lists every variant, so the position exists.
    HostSeries::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// One step's values in `HostSeries::ALL` order; NaN where nothing was collected.
#[derive(Debug, Clone, Copy)]
struct Point {
    t_ms: i64,
    values: [f64; N],
}

/// The counters of one reading, kept for the next step's rates.
#[derive(Debug, Clone)]
struct Totals {
    at: Instant,
    /// Per NIC: rx bytes, tx bytes, rx packets, tx packets.
    nics: Option<HashMap<String, [u64; 4]>>,
    /// Per disk: read bytes, written bytes, reads, writes.
    disks: Option<HashMap<String, [u64; 4]>>,
    /// Per CPU: busy seconds, all seconds.
    cpus: Option<HashMap<u32, (f64, f64)>>,
}

impl Totals {
    fn of(snap: &HostSnapshot, at: Instant) -> Totals {
        Totals {
            at,
            nics: snap.net.as_ref().map(|net| {
                net.iter()
                    .filter(|d| counts_as_nic(&d.device))
                    .map(|d| {
                        let v = [
                            d.receive_bytes,
                            d.transmit_bytes,
                            d.receive_packets,
                            d.transmit_packets,
                        ];
                        (d.device.clone(), v)
                    })
                    .collect()
            }),
            disks: snap.disks.as_ref().map(|disks| {
                disks
                    .iter()
                    .filter(|d| counts_as_disk(&d.device))
                    .map(|d| {
                        let v = [
                            d.read_bytes,
                            d.written_bytes,
                            d.reads_completed,
                            d.writes_completed,
                        ];
                        (d.device.clone(), v)
                    })
                    .collect()
            }),
            cpus: snap.stat.as_ref().map(|s| {
                s.cpus
                    .iter()
                    .map(|c| (c.cpu, (c.total() - c.idle(), c.total())))
                    .collect()
            }),
        }
    }
}

/// Per-second increase of field `i`, added up over the devices in both readings. A counter
/// that went down (a device replaced, a driver reloaded) counts as no increase.
fn rate(
    prev: &Option<HashMap<String, [u64; 4]>>,
    cur: &Option<HashMap<String, [u64; 4]>>,
    i: usize,
    secs: f64,
) -> f64 {
    let (Some(prev), Some(cur)) = (prev, cur) else {
        return f64::NAN;
    };
    let sum: u64 = cur
        .iter()
        .filter_map(|(dev, now)| prev.get(dev).map(|before| now[i].saturating_sub(before[i])))
        .sum();
    sum as f64 / secs
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (100.0 * part / whole).clamp(0.0, 100.0)
    } else {
        f64::NAN
    }
}

#[derive(Debug)]
pub struct History {
    step: Duration,
    capacity: usize,
    points: VecDeque<Point>,
    last: Option<Totals>,
}

impl History {
    /// A ring of `span / step` points.
    pub fn new(step: Duration, span: Duration) -> History {
        let capacity = (span.as_millis() / step.as_millis().max(1)).max(1) as usize;
        History {
            step,
            capacity,
            points: VecDeque::with_capacity(capacity),
            last: None,
        }
    }

    pub fn step(&self) -> Duration {
        self.step
    }

    /// Adds the point for a reading taken at `t_ms` (wall clock) / `at` (monotonic).
    pub fn record(&mut self, t_ms: i64, at: Instant, snap: &HostSnapshot) {
        use HostSeries as S;
        let cur = Totals::of(snap, at);
        let mut v = [f64::NAN; N];
        if let Some(prev) = &self.last {
            let secs = at.saturating_duration_since(prev.at).as_secs_f64();
            if secs > 0.0 {
                for (series, i) in [(S::NetRxBytes, 0), (S::NetTxBytes, 1)]
                    .into_iter()
                    .chain([(S::NetRxPackets, 2), (S::NetTxPackets, 3)])
                {
                    v[index(series)] = rate(&prev.nics, &cur.nics, i, secs);
                }
                for (series, i) in [
                    (S::DiskReadBytes, 0),
                    (S::DiskWrittenBytes, 1),
                    (S::DiskReads, 2),
                    (S::DiskWrites, 3),
                ] {
                    v[index(series)] = rate(&prev.disks, &cur.disks, i, secs);
                }
                if let (Some(p), Some(c)) = (&prev.cpus, &cur.cpus) {
                    let (busy, all) = c
                        .iter()
                        .filter_map(|(cpu, (b, a))| {
                            p.get(cpu)
                                .map(|(pb, pa)| ((b - pb).max(0.0), (a - pa).max(0.0)))
                        })
                        .fold((0.0, 0.0), |(sb, sa), (b, a)| (sb + b, sa + a));
                    v[index(S::CpuUsedPercent)] = percent(busy, all);
                }
            }
        }
        if let Some(m) = snap.memory {
            v[index(S::MemoryUsedPercent)] = percent(
                m.total_bytes.saturating_sub(m.available_bytes) as f64,
                m.total_bytes as f64,
            );
        }
        if let Some(fs) = &snap.filesystems {
            // A filesystem mounted twice counts once.
            let mut seen = std::collections::HashSet::new();
            let (size, avail) = fs
                .iter()
                .filter(|f| seen.insert(f.mount.device.as_str()))
                .fold((0u64, 0u64), |(s, a), f| {
                    (s + f.size_bytes, a + f.avail_bytes.min(f.size_bytes))
                });
            v[index(S::FilesystemUsedPercent)] = percent((size - avail) as f64, size as f64);
        }
        if let Some(load) = snap.load {
            v[index(S::Load1)] = load.one;
        }
        if let Some(n) = snap.tcp_established {
            v[index(S::TcpEstablished)] = n as f64;
        }
        if let Some(n) = snap.stat.as_ref().and_then(|s| s.procs_blocked) {
            v[index(S::ProcsBlocked)] = n as f64;
        }
        self.last = Some(cur);
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(Point { t_ms, values: v });
    }

    /// The named series from `since_ms` on (all that is kept when `None`), oldest first.
    pub fn series(&self, names: &[HostSeries], since_ms: Option<i64>) -> Vec<MetricSeries> {
        names
            .iter()
            .map(|s| {
                let i = index(*s);
                MetricSeries {
                    name: *s,
                    unit: s.unit().to_string(),
                    points: self
                        .points
                        .iter()
                        .filter(|p| since_ms.is_none_or(|since| p.t_ms >= since))
                        .filter(|p| p.values[i].is_finite())
                        .map(|p| MetricPoint {
                            t: p.t_ms,
                            v: p.values[i],
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cpu::{CpuTimes, Stat};
    use crate::metrics::disk::DiskStat;
    use crate::metrics::filesystem::{FsStat, Mount};
    use crate::metrics::load::LoadAvg;
    use crate::metrics::memory::MemInfo;
    use crate::metrics::net::NetDev;

    fn nic(device: &str, rx: u64) -> NetDev {
        NetDev {
            device: device.into(),
            receive_bytes: rx,
            receive_packets: rx / 100,
            transmit_bytes: 2 * rx,
            transmit_packets: rx / 50,
        }
    }

    fn fs(device: &str, point: &str, size: u64, avail: u64) -> FsStat {
        FsStat {
            mount: Mount {
                device: device.into(),
                mountpoint: point.into(),
                fstype: "ext4".into(),
            },
            size_bytes: size,
            avail_bytes: avail,
        }
    }

    fn snap(rx: u64, written: u64, busy: f64, idle: f64) -> HostSnapshot {
        HostSnapshot {
            net: Some(vec![nic("eth0", rx), nic("lo", 10 * rx), nic("vnet0", rx)]),
            disks: Some(vec![DiskStat {
                device: "sda".into(),
                written_bytes: written,
                writes_completed: written / 4096,
                ..DiskStat::default()
            }]),
            stat: Some(Stat {
                cpus: vec![CpuTimes {
                    cpu: 0,
                    seconds: [busy, 0.0, 0.0, idle, 0.0, 0.0, 0.0, 0.0],
                }],
                procs_blocked: Some(1),
            }),
            memory: Some(MemInfo {
                total_bytes: 1000,
                available_bytes: 250,
            }),
            filesystems: Some(vec![
                fs("/dev/sda1", "/", 100, 40),
                fs("/dev/sda1", "/srv/bind", 100, 40),
                fs("/dev/sdb1", "/data", 300, 0),
            ]),
            load: Some(LoadAvg {
                one: 1.5,
                five: 0.0,
                fifteen: 0.0,
            }),
            tcp_established: Some(12),
            ..HostSnapshot::default()
        }
    }

    fn last(h: &History, s: HostSeries) -> Option<f64> {
        h.series(&[s], None)[0].points.last().map(|p| p.v)
    }

    #[test]
    fn rates_percentages_and_levels() {
        use HostSeries as S;
        let mut h = History::new(Duration::from_secs(15), Duration::from_secs(3600));
        let t0 = Instant::now();
        h.record(1_000, t0, &snap(1_000, 0, 10.0, 90.0));
        assert_eq!(last(&h, S::NetRxBytes), None, "no rate from one reading");
        assert_eq!(last(&h, S::MemoryUsedPercent), Some(75.0));
        assert_eq!(last(&h, S::Load1), Some(1.5));

        let t1 = t0 + Duration::from_secs(10);
        h.record(11_000, t1, &snap(21_000, 40_960, 16.0, 94.0));
        assert_eq!(
            last(&h, S::NetRxBytes),
            Some(2_000.0),
            "eth0 only: lo, vnet0 left out"
        );
        assert_eq!(last(&h, S::NetTxBytes), Some(4_000.0));
        assert_eq!(last(&h, S::NetRxPackets), Some(20.0));
        assert_eq!(last(&h, S::DiskWrittenBytes), Some(4_096.0));
        assert_eq!(last(&h, S::DiskWrites), Some(1.0));
        assert_eq!(last(&h, S::DiskReadBytes), Some(0.0));
        assert_eq!(
            last(&h, S::CpuUsedPercent),
            Some(60.0),
            "6 busy of 10 seconds"
        );
        assert_eq!(
            last(&h, S::FilesystemUsedPercent),
            Some(90.0),
            "(60 + 300 used) of 400, the bind mount once"
        );
        assert_eq!(last(&h, S::TcpEstablished), Some(12.0));
        assert_eq!(last(&h, S::ProcsBlocked), Some(1.0));

        let since = h.series(&[S::Load1], Some(5_000));
        assert_eq!(since[0].points, vec![MetricPoint { t: 11_000, v: 1.5 }]);
        assert_eq!(since[0].unit, "load");
    }

    #[test]
    fn the_ring_is_bounded_and_gaps_stay_gaps() {
        let mut h = History::new(Duration::from_secs(15), Duration::from_secs(60));
        let t0 = Instant::now();
        for k in 0..10u32 {
            let mut s = snap(u64::from(k) * 1000, 0, 0.0, 0.0);
            if k == 8 {
                s.load = None;
            }
            h.record(
                i64::from(k) * 15_000,
                t0 + Duration::from_secs(15 * u64::from(k)),
                &s,
            );
        }
        let load = &h.series(&[HostSeries::Load1], None)[0];
        let times: Vec<i64> = load.points.iter().map(|p| p.t).collect();
        assert_eq!(
            times,
            [90_000, 105_000, 135_000],
            "4 points kept; the one without load is a gap"
        );
    }

    #[test]
    fn a_counter_that_went_down_is_no_increase() {
        let mut h = History::new(Duration::from_secs(1), Duration::from_secs(60));
        let t0 = Instant::now();
        h.record(0, t0, &snap(50_000, 0, 0.0, 0.0));
        h.record(1_000, t0 + Duration::from_secs(1), &snap(10, 0, 0.0, 0.0));
        assert_eq!(last(&h, HostSeries::NetRxBytes), Some(0.0));
    }
}
