//! One reading of the host: every host collector at once, each on the blocking pool under the
//! same deadline. What a collector could not give in time is `None`; the rest stands.

use super::cpu::{self, Stat};
use super::deadline::{Outcome, Slot};
use super::disk::{self, DiskStat};
use super::filesystem::{self, FsStat, Mount};
use super::load::{self, LoadAvg};
use super::memory::{self, MemInfo};
use super::net::{self, NetDev};
use super::tcp;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// The collectors, under node_exporter's names for the same work (and `domains` for libvirt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collector {
    Netdev,
    Diskstats,
    Filesystem,
    Loadavg,
    Meminfo,
    Stat,
    Netstat,
    Sockstat,
    Domains,
}

impl Collector {
    pub const ALL: [Collector; 9] = [
        Collector::Netdev,
        Collector::Diskstats,
        Collector::Filesystem,
        Collector::Loadavg,
        Collector::Meminfo,
        Collector::Stat,
        Collector::Netstat,
        Collector::Sockstat,
        Collector::Domains,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Collector::Netdev => "netdev",
            Collector::Diskstats => "diskstats",
            Collector::Filesystem => "filesystem",
            Collector::Loadavg => "loadavg",
            Collector::Meminfo => "meminfo",
            Collector::Stat => "stat",
            Collector::Netstat => "netstat",
            Collector::Sockstat => "sockstat",
            Collector::Domains => "domains",
        }
    }
}

/// How one collector fared in one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub collector: Collector,
    pub seconds: f64,
    pub success: bool,
}

/// Where the collectors read: `/proc` unless a test points elsewhere.
#[derive(Debug, Clone)]
pub struct ProcRoot(pub PathBuf);

impl Default for ProcRoot {
    fn default() -> Self {
        ProcRoot(PathBuf::from("/proc"))
    }
}

/// Every collector's slot; filesystems also get one per mount point, so a hung mount is
/// skipped alone.
#[derive(Debug, Default)]
pub struct Slots {
    by_collector: HashMap<Collector, Slot>,
    mounts: Mutex<HashMap<String, Arc<Slot>>>,
    /// Timeouts of mount points since unmounted, so the counter never goes down.
    gone_mount_timeouts: AtomicU64,
}

impl Slots {
    pub fn new() -> Slots {
        Slots {
            by_collector: Collector::ALL
                .iter()
                .map(|c| (*c, Slot::default()))
                .collect(),
            mounts: Mutex::default(),
            gone_mount_timeouts: AtomicU64::new(0),
        }
    }

    pub fn get(&self, c: Collector) -> &Slot {
        // Every collector has a slot from `new`; `ALL` lists them all.
        &self.by_collector[&c]
    }

    /// Timeouts per collector; a stuck mount's count under `filesystem`.
    pub fn timeouts(&self) -> Vec<(Collector, u64)> {
        let mounts: u64 = self
            .mounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|s| s.timeouts())
            .sum();
        Collector::ALL
            .iter()
            .map(|c| {
                let extra = if *c == Collector::Filesystem {
                    mounts + self.gone_mount_timeouts.load(Ordering::Relaxed)
                } else {
                    0
                };
                (*c, self.get(*c).timeouts() + extra)
            })
            .collect()
    }

    /// The slots of these mount points, made as needed. Slots of mount points gone are
    /// dropped (their timeouts kept in the total) unless their work is still stuck.
    fn for_mounts(&self, mounts: &[Mount]) -> Vec<Arc<Slot>> {
        let mut map = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|point, slot| {
            let keep = slot.is_stuck() || mounts.iter().any(|m| &m.mountpoint == point);
            if !keep {
                self.gone_mount_timeouts
                    .fetch_add(slot.timeouts(), Ordering::Relaxed);
            }
            keep
        });
        mounts
            .iter()
            .map(|m| map.entry(m.mountpoint.clone()).or_default().clone())
            .collect()
    }
}

/// One reading of every host collector.
#[derive(Debug, Clone, Default)]
pub struct HostSnapshot {
    pub net: Option<Vec<NetDev>>,
    pub disks: Option<Vec<DiskStat>>,
    pub filesystems: Option<Vec<FsStat>>,
    pub load: Option<LoadAvg>,
    pub memory: Option<MemInfo>,
    pub stat: Option<Stat>,
    pub tcp_established: Option<u64>,
    pub tcp_inuse: Option<u64>,
    pub reports: Vec<Report>,
}

/// Reads `path` and parses it on the blocking pool, within `slot`'s deadline.
async fn read_with<T: Send + 'static>(
    slot: &Slot,
    until: Instant,
    path: PathBuf,
    parse: fn(&str) -> Option<T>,
) -> Outcome<T> {
    slot.run_blocking(until, move || {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse(&text).ok_or_else(|| format!("{}: unexpected format", path.display()))
    })
    .await
}

/// Times `collect` and records how it went.
async fn timed<T>(
    reports: &Mutex<Vec<Report>>,
    collector: Collector,
    collect: impl Future<Output = Outcome<T>>,
) -> Option<T> {
    let start = Instant::now();
    let outcome = collect.await;
    let success = outcome.is_done();
    if let Outcome::Failed(err) = &outcome {
        tracing::debug!(collector = collector.name(), error = %err, "Collector failed.");
    }
    reports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Report {
            collector,
            seconds: start.elapsed().as_secs_f64(),
            success,
        });
    outcome.ok()
}

/// Reads the host, every collector concurrently, none past `until`.
pub async fn collect(slots: &Slots, proc: &ProcRoot, until: Instant) -> HostSnapshot {
    let reports = Mutex::new(Vec::new());
    let p = |rel: &str| proc.0.join(rel);
    let slot = |c: Collector| slots.get(c);
    use Collector as C;
    let (net, disks, load, memory, stat, snmp, sockstat, filesystems) = tokio::join!(
        timed(
            &reports,
            C::Netdev,
            read_with(slot(C::Netdev), until, p("net/dev"), |t| Some(net::parse(
                t
            )))
        ),
        timed(
            &reports,
            C::Diskstats,
            read_with(slot(C::Diskstats), until, p("diskstats"), |t| {
                Some(disk::parse(t))
            })
        ),
        timed(
            &reports,
            C::Loadavg,
            read_with(slot(C::Loadavg), until, p("loadavg"), load::parse)
        ),
        timed(
            &reports,
            C::Meminfo,
            read_with(slot(C::Meminfo), until, p("meminfo"), memory::parse)
        ),
        timed(
            &reports,
            C::Stat,
            read_with(slot(C::Stat), until, p("stat"), |t| Some(cpu::parse(t)))
        ),
        timed(
            &reports,
            C::Netstat,
            read_with(
                slot(C::Netstat),
                until,
                p("net/snmp"),
                tcp::parse_curr_estab
            )
        ),
        timed(
            &reports,
            C::Sockstat,
            read_with(
                slot(C::Sockstat),
                until,
                p("net/sockstat"),
                tcp::parse_tcp_inuse
            )
        ),
        timed(
            &reports,
            C::Filesystem,
            filesystems(slots, [p("1/mounts"), p("self/mounts")], until)
        ),
    );
    let stat = stat.filter(|s: &Stat| !s.cpus.is_empty() || s.procs_blocked.is_some());
    HostSnapshot {
        net,
        disks,
        filesystems,
        load,
        memory,
        stat,
        tcp_established: snmp,
        tcp_inuse: sockstat,
        reports: reports.into_inner().unwrap_or_else(|p| p.into_inner()),
    }
}

/// The mounts table, then every real mount's statvfs at once, each under its own slot. A
/// mount that does not answer in time is left out of this scrape (and counted); the collector
/// fails only when the mounts table itself cannot be read. The table is init's (`1/mounts`,
/// the host's view, as node_exporter reads it: systemd sandboxing gives the agent a mount
/// namespace of its own), else the agent's own.
async fn filesystems(slots: &Slots, tables: [PathBuf; 2], until: Instant) -> Outcome<Vec<FsStat>> {
    let table = slots
        .get(Collector::Filesystem)
        .run_blocking(until, move || {
            let [host, own] = tables;
            std::fs::read_to_string(host)
                .or_else(|_| std::fs::read_to_string(own))
                .map(|t| filesystem::parse_mounts(&t))
        })
        .await;
    let mounts = match table {
        Outcome::Done(m) => m,
        Outcome::Failed(e) => return Outcome::Failed(e),
        Outcome::TimedOut => return Outcome::TimedOut,
        Outcome::Stuck => return Outcome::Stuck,
    };
    let mount_slots = slots.for_mounts(&mounts);
    let stats = futures_util::future::join_all(mounts.into_iter().zip(mount_slots).map(
        |(mount, slot)| async move {
            let outcome = slot
                .run_blocking(until, move || filesystem::stat(&mount))
                .await;
            if outcome.was_late() {
                tracing::debug!("A filesystem did not answer statvfs in time; left out.");
            }
            outcome.ok()
        },
    ))
    .await;
    Outcome::Done(stats.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
    }

    /// Every collector reads its file from a fixture /proc; one missing file fails only its
    /// own collector.
    #[tokio::test]
    async fn reads_a_fixture_proc() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("net/dev", "h1\nh2\n  lo: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n"),
                ("diskstats", " 8 0 sda 1 0 2 0 3 0 4 0 0 0 0\n"),
                ("loadavg", "0.50 0.25 0.10 1/100 42\n"),
                ("meminfo", "MemTotal: 100 kB\nMemAvailable: 25 kB\n"),
                ("stat", "cpu0 100 0 100 200 0 0 0 0 0 0\nprocs_blocked 2\n"),
                ("net/snmp", "Tcp: CurrEstab\nTcp: 5\n"),
                (
                    "self/mounts",
                    "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n",
                ),
            ],
        );
        let slots = Slots::new();
        let until = Instant::now() + Duration::from_secs(30);
        let snap = collect(&slots, &ProcRoot(dir.path().to_path_buf()), until).await;
        assert_eq!(snap.net.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            snap.disks.as_ref().map(|d| d[0].written_bytes),
            Some(4 * 512)
        );
        assert_eq!(snap.load.map(|l| l.one), Some(0.5));
        assert_eq!(snap.memory.map(|m| m.available_bytes), Some(25 * 1024));
        assert_eq!(snap.stat.as_ref().and_then(|s| s.procs_blocked), Some(2));
        assert_eq!(snap.tcp_established, Some(5));
        assert_eq!(snap.tcp_inuse, None, "no sockstat file");
        let fs = snap.filesystems.expect("filesystems");
        assert_eq!(fs.len(), 1);
        assert_eq!(fs[0].mount.mountpoint, "/");
        let failed: Vec<&str> = snap
            .reports
            .iter()
            .filter(|r| !r.success)
            .map(|r| r.collector.name())
            .collect();
        assert_eq!(failed, ["sockstat"]);
        assert!(slots.timeouts().iter().all(|(_, n)| *n == 0));
    }
}
