//! Sensor sweeps over many OpenIPMI `ipmi_sim` BMCs with three sensors each (scripts/
//! ipmi-sim.sh SENSORS=full, each on its own 127.200.x.y:623 as in the power-sweep benchmark),
//! side by side in one run: plinth's health sweep (native RMCP+, pooled sessions, the SDR and
//! every reading, plus the event log) against `ipmitool -I lanplus -C 3 sdr elist` 8 at a time
//! (the way ipmi_exporter-like tools shell out). Servers/s and CPU seconds per sweep.
//!
//! `cargo bench -p plinth-agent --bench sensor_sweep` (env BMCS=100, SWEEPS=3, CONCURRENCY=16).

#![allow(clippy::unwrap_used)]

#[path = "../tests/sim/mod.rs"]
mod sim;

use plinth_agent::ipmi::sweep::health_sweep;
use plinth_agent::ipmi::{Ipmi, IpmiSettings};
use sim::{admin_at, env_or, start_fleet};
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// CPU seconds of this process and of its waited-for children (/proc/self/stat utime, stime,
/// cutime, cstime at 100 ticks a second).
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<f64> = rest
        .split(' ')
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap())
        .collect();
    ((f[0] + f[1]) / 100.0, (f[2] + f[3]) / 100.0)
}

/// (servers, failures, seconds, CPU seconds)
type Run = (usize, usize, f64, f64);

fn ipmitool_sweep(ips: &[IpAddr], workers: usize) -> Run {
    let (_, children0) = cpu();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ip) = ips.get(i) else { return };
                    let out = Command::new("ipmitool")
                        .args(["-I", "lanplus", "-C", "3", "-H", &ip.to_string()])
                        .args(["-U", "admin", "-P", "password", "sdr", "elist"])
                        .output()
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout);
                    if !out.status.success() || !text.contains("MB Temp") {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let (_, children1) = cpu();
    (
        ips.len(),
        failures.into_inner(),
        started.elapsed().as_secs_f64(),
        children1 - children0,
    )
}

async fn plinth_sweeps(ipmi: &Ipmi, ips: &[IpAddr], sweeps: usize, concurrency: usize) -> Run {
    let (own0, _) = cpu();
    let started = Instant::now();
    let mut failures = 0;
    for _ in 0..sweeps {
        let targets = ips.iter().map(|ip| (*ip, admin_at(*ip), None)).collect();
        failures += health_sweep(ipmi, targets, concurrency, 64)
            .await
            .iter()
            .filter(|(_, r)| !matches!(r, Ok((sensors, _)) if sensors.len() == 3))
            .count();
    }
    let (own1, _) = cpu();
    (
        ips.len() * sweeps,
        failures,
        started.elapsed().as_secs_f64(),
        own1 - own0,
    )
}

fn rate(r: Run) -> f64 {
    r.0 as f64 / r.2.max(1e-9)
}

fn line(label: &str, r: Run, sweeps: usize) {
    println!(
        "{label:<58} {:>5} servers {:>7.2} s {:>7.1} servers/s {:>6.2} CPU s/sweep  failures {}",
        r.0,
        r.2,
        rate(r),
        r.3 / sweeps as f64,
        r.1
    );
}

#[tokio::main]
async fn main() {
    let n = env_or("BMCS", 100);
    let sweeps = env_or("SWEEPS", 3);
    let concurrency = env_or("CONCURRENCY", 16);
    println!("starting {n} ipmi_sim BMCs (3 sensors each) on 127.200.x.y:623 ...");
    let sims = start_fleet(n, "full");
    let ips: Vec<IpAddr> = sims.iter().map(|s| s.ip).collect();

    let tool = ipmitool_sweep(&ips, 8);
    let ipmi = Ipmi::new(IpmiSettings::default());
    let cold = plinth_sweeps(&ipmi, &ips, 1, concurrency).await;
    let warm = plinth_sweeps(&ipmi, &ips, sweeps, concurrency).await;
    ipmi.close_all().await;

    println!();
    println!("sensor sweep over {n} BMCs (simulators and clients share this machine's cores)");
    line("ipmitool -I lanplus -C 3 sdr elist, 8 at a time", tool, 1);
    line("plinth, first sweep (opens a session per BMC)", cold, 1);
    line(
        &format!("plinth health sweep, {concurrency} BMCs at once, {sweeps} sweeps"),
        warm,
        sweeps,
    );
    println!();
    println!(
        "plinth / ipmitool 8 at a time   {:>7.1}x servers/s   (goal >= 10x)",
        rate(warm) / rate(tool)
    );
    println!(
        "full sweep of {n} BMCs: {:.2} s (goal: within one 60 s sync interval)",
        warm.2 / sweeps as f64
    );
    drop(sims);
}
