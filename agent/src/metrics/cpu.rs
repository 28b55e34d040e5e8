//! `stat`: CPU time per CPU and mode (node_exporter's `node_cpu_seconds_total`) and blocked
//! processes (`node_procs_blocked`), both from one read of `/proc/stat`.

/// /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space whatever the
/// kernel's tick (as node_exporter's procfs library also assumes).
const USER_HZ: f64 = 100.0;

/// node_exporter's modes, in /proc/stat's column order. Guest time is already inside user
/// and nice, so (as node_exporter does here) it is not a mode of its own.
pub const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Seconds one CPU spent in each of [`MODES`].
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTimes {
    pub cpu: u32,
    pub seconds: [f64; 8],
}

impl CpuTimes {
    pub fn total(&self) -> f64 {
        self.seconds.iter().sum()
    }

    /// Idle and waiting for I/O: what "CPU usage" leaves out.
    pub fn idle(&self) -> f64 {
        self.seconds[3] + self.seconds[4]
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub cpus: Vec<CpuTimes>,
    pub procs_blocked: Option<u64>,
}

/// Parses `/proc/stat`: `cpuN user nice system idle iowait irq softirq steal guest guest_nice`
/// (older kernels have fewer columns; missing ones read as 0) and `procs_blocked N`. The
/// all-CPU `cpu` line is left out, as node_exporter does.
pub fn parse(text: &str) -> Stat {
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        if let Some(n) = key.strip_prefix("cpu").filter(|n| !n.is_empty()) {
            let Ok(cpu) = n.parse() else { continue };
            let mut seconds = [0.0; 8];
            for (slot, value) in seconds.iter_mut().zip(f) {
                *slot = value.parse::<u64>().map_or(0.0, |t| t as f64 / USER_HZ);
            }
            stat.cpus.push(CpuTimes { cpu, seconds });
        } else if key == "procs_blocked" {
            stat.procs_blocked = f.next().and_then(|v| v.parse().ok());
        }
    }
    stat
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
cpu  1905293 0 602910 2394645 52399 0 18414 86101 93 0
cpu0 891467 0 286174 1288269 14463 0 7152 42364 50 0
cpu1 1013826 5 316736 1106376 37935 1 11262 43737 43 0
intr 123 4 5
ctxt 9876
procs_running 7
procs_blocked 3
";

    #[test]
    fn reads_cpus_and_blocked() {
        let stat = parse(FIXTURE);
        assert_eq!(stat.procs_blocked, Some(3));
        assert_eq!(stat.cpus.len(), 2);
        let cpu1 = &stat.cpus[1];
        assert_eq!(cpu1.cpu, 1);
        assert_eq!(
            cpu1.seconds,
            [
                10138.26, 0.05, 3167.36, 11063.76, 379.35, 0.01, 112.62, 437.37
            ]
        );
        assert!((cpu1.idle() - (11063.76 + 379.35)).abs() < 1e-6);
    }

    #[test]
    fn short_lines_read_as_zero() {
        let stat = parse("cpu0 100 200 300 400\n");
        assert_eq!(stat.cpus[0].seconds[..5], [1.0, 2.0, 3.0, 4.0, 0.0]);
        assert_eq!(stat.procs_blocked, None);
    }
}
