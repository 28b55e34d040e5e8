//! Power-status sweeps over many OpenIPMI `ipmi_sim` BMCs (each on its own 127.200.x.y, port
//! 623), side by side in one run: plinth's agent sweep (native RMCP+, pooled sessions, bounded
//! concurrency) against `ipmitool -I lanplus -C 3 chassis power status` run sequentially and
//! 8 at a time (Ironic's default workers). Also the simulators' own ceiling: the same sweep
//! with every BMC at once, and with Get Device ID (which runs no chassis helper in ipmi_sim).
//!
//! `cargo bench -p plinth-agent --bench ipmi_sweep` (env BMCS=100, SWEEPS=3, CONCURRENCY=16).

#![allow(clippy::unwrap_used)]

#[path = "../tests/sim/mod.rs"]
mod sim;

use plinth_agent::ipmi::sweep::power_sweep;
use plinth_agent::ipmi::{Ipmi, IpmiSettings, Session};
use sim::{admin_at, env_or, start_fleet};
use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// (polls, failures, seconds)
type Run = (usize, usize, f64);

/// `ipmitool ... <command>` for every BMC, `workers` at a time.
fn ipmitool_sweep(ips: &[IpAddr], workers: usize, command: &[&str]) -> Run {
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ip) = ips.get(i) else { return };
                    let ok = Command::new("ipmitool")
                        .args(["-I", "lanplus", "-C", "3", "-H", &ip.to_string()])
                        .args(["-U", "admin", "-P", "password"])
                        .args(command)
                        .output()
                        .is_ok_and(|o| o.status.success());
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (
        ips.len(),
        failures.into_inner(),
        started.elapsed().as_secs_f64(),
    )
}

/// `sweeps` chassis-status sweeps of every BMC, `concurrency` BMCs at once.
async fn plinth_sweeps(ipmi: &Ipmi, ips: &[IpAddr], sweeps: usize, concurrency: usize) -> Run {
    let started = Instant::now();
    let mut failures = 0;
    for _ in 0..sweeps {
        let targets = ips.iter().map(|ip| (*ip, admin_at(*ip))).collect();
        failures += power_sweep(ipmi, targets, concurrency)
            .await
            .iter()
            .filter(|(_, r)| r.is_err())
            .count();
    }
    (
        ips.len() * sweeps,
        failures,
        started.elapsed().as_secs_f64(),
    )
}

/// Get Device ID from every BMC at once, `sweeps` times.
async fn device_id_sweeps(ipmi: &Arc<Ipmi>, ips: &[IpAddr], sweeps: usize) -> Run {
    let started = Instant::now();
    let mut failures = 0;
    for _ in 0..sweeps {
        let tasks: Vec<_> = ips
            .iter()
            .map(|ip| {
                let (ipmi, t) = (ipmi.clone(), admin_at(*ip));
                tokio::spawn(async move { ipmi.run(&t, |s| Box::pin(s.device_id())).await })
            })
            .collect();
        for t in tasks {
            if !matches!(t.await, Ok(Ok(_))) {
                failures += 1;
            }
        }
    }
    (
        ips.len() * sweeps,
        failures,
        started.elapsed().as_secs_f64(),
    )
}

/// Sessions still open at the BMCs, not counting the one that asks; and BMCs not asked.
async fn leaked_sessions(ips: &[IpAddr]) -> (usize, usize) {
    let (mut leaked, mut unknown) = (0, 0);
    for ip in ips {
        match Session::open(&admin_at(*ip), IpmiSettings::default().timing).await {
            Ok(mut s) => {
                match s.session_counts().await {
                    Ok(c) => leaked += usize::from(c.active.saturating_sub(1)),
                    Err(_) => unknown += 1,
                }
                s.close().await;
            }
            Err(_) => unknown += 1,
        }
    }
    (leaked, unknown)
}

fn rate((polls, _, secs): Run) -> f64 {
    polls as f64 / secs.max(1e-9)
}

fn line(label: &str, r: Run) {
    println!(
        "{label:<62} {:>5} polls {:>7.2} s {:>8.1} polls/s  failures {}",
        r.0,
        r.2,
        rate(r),
        r.1
    );
}

#[tokio::main]
async fn main() {
    let n = env_or("BMCS", 100);
    let sweeps = env_or("SWEEPS", 3);
    let concurrency = env_or("CONCURRENCY", 16);
    println!("starting {n} ipmi_sim BMCs on 127.200.x.y:623 ...");
    let t = Instant::now();
    let sims = start_fleet(n, "temp");
    let ips: Vec<IpAddr> = sims.iter().map(|s| s.ip).collect();
    println!("  up in {:.1} s", t.elapsed().as_secs_f64());

    let status = ["chassis", "power", "status"];
    let seq = ipmitool_sweep(&ips, 1, &status);
    let eight = ipmitool_sweep(&ips, 8, &status);
    let eight_mc = ipmitool_sweep(&ips, 8, &["mc", "info"]);

    let ipmi = Arc::new(Ipmi::new(IpmiSettings::default()));
    // The first sweep opens one session per BMC; later ones reuse them.
    let cold = plinth_sweeps(&ipmi, &ips, 1, concurrency).await;
    let open_during = ipmi.open_sessions().await;
    let warm = plinth_sweeps(&ipmi, &ips, sweeps, concurrency).await;
    let all_at_once = plinth_sweeps(&ipmi, &ips, sweeps, n).await;
    let device_id = device_id_sweeps(&ipmi, &ips, sweeps).await;
    ipmi.close_all().await;
    let open_after = ipmi.open_sessions().await;
    let (leaked, unknown) = leaked_sessions(&ips).await;

    println!();
    println!(
        "chassis power status over {n} BMCs (simulators and clients share this machine's cores)"
    );
    line("ipmitool -I lanplus -C 3, sequential", seq);
    line("ipmitool -I lanplus -C 3, 8 at a time", eight);
    line("plinth, first sweep (opens a session per BMC)", cold);
    line(
        &format!("plinth agent sweep, {concurrency} BMCs at once, {sweeps} sweeps"),
        warm,
    );
    line(
        &format!("simulators' ceiling: all {n} at once, {sweeps} sweeps"),
        all_at_once,
    );
    line(
        &format!("Get Device ID (no chassis helper), plinth, all {n} at once"),
        device_id,
    );
    line("Get Device ID, ipmitool mc info, 8 at a time", eight_mc);
    println!();
    println!(
        "plinth / ipmitool sequential     {:>7.1}x",
        rate(warm) / rate(seq)
    );
    println!(
        "plinth / ipmitool 8 at a time    {:>7.1}x   (goal >= 20x)",
        rate(warm) / rate(eight)
    );
    println!(
        "plinth / simulators' ceiling     {:>7.1}%   (goal >= 80%)",
        100.0 * rate(warm) / rate(all_at_once)
    );
    println!(
        "Get Device ID: plinth / ipmitool 8 at a time {:>7.1}x   (no simulator helper in the way)",
        rate(device_id) / rate(eight_mc)
    );
    println!("plinth sessions open during the sweeps: {open_during} (one per BMC)");
    let note = if unknown > 0 {
        format!(" ({unknown} BMCs could not be asked)")
    } else {
        String::new()
    };
    println!(
        "plinth sessions open after close: {open_after}; sessions left open at the BMCs: {leaked}{note}"
    );
    drop(sims);
}
