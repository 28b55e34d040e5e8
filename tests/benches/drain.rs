//! Benchmark: a maintenance drain of 6 small guests on real libvirt, with parallelism 1 and
//! then 3, in one run. Three private libvirtd + QEMU (TCG) "hosts" on 127.0.0.81-83, an agent
//! each and a coordinator, all started here and stopped by pid at the end.
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench drain`
//! (needs what the drain test needs: libvirt-daemon, qemu-system-x86, a `libvirt-qemu` user;
//! see `.ci/run`).
//!
//! The 6 guests (1 vCPU, 128 MiB, a 64 MiB qcow2 whose boot sector halts the CPU: they cost
//! the hosts nothing while they run) run on host A. The image is first put in the cache of B and C (a guest created on each,
//! then deleted), as it is on a region's hosts in steady state; the first drain would else
//! time one image download per target. Drain 1 (parallelism 1) moves them to B and C; they are
//! migrated back to A by manual migrations; drain 2 (parallelism 3) moves them out again.
//!
//! Per migration, from the drain's report: `prepare` is the target making the files (before
//! the migration's turn, overlapping the migration ahead of it), `total` the coordinator's
//! time from the migration's turn until it knew the guest moved, `libvirt` libvirt's time
//! for the job (`virDomainMigrateToURI3` from call to return on the source: connecting, the
//! guest started on the target, the transfer, the switch-over), and `overhead` = total -
//! libvirt: what plinth adds to one migration. Per drain: its time from the report's
//! `started_at` to `ended_at` (the coordinator's clock); for the serial drain, (that time -
//! the sum of libvirt's times) / 6 is plinth's whole cost per migration, everything included
//! (releasing, preparing the first target, the store, ending the drain).
//! Goals (issue 5): overhead <= 50 ms per migration; parallelism 3 close to 3x faster.
//! The program prints a report and exits 0 whether or not the goals are met.

use plinth_e2e::drain::{self, Guests, Hv};
use plinth_e2e::instances as inst;
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GUESTS: [&str; 6] = [
    "bench-1", "bench-2", "bench-3", "bench-4", "bench-5", "bench-6",
];

struct Timed {
    parallelism: u32,
    /// From the report's started_at to ended_at.
    wall: Duration,
    report: Value,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let mut region = Region::start().await?;
    region.create_cluster("az1").await?;
    let Some(hvs) = drain::hosts(&region, &["benchA", "benchB", "benchC"], 81).await? else {
        println!(
            "real libvirt is not allowed here (see tests/common/libvirtd.rs); nothing measured"
        );
        return Ok(());
    };
    let a = hvs[0].agent.host_id.clone();
    let tenant = inst::tenant(&region, "bench@example.com").await?;
    let image = drain::idle_image(&region, &tenant.id).await?;
    let guests = Guests {
        token: tenant.token.clone(),
        image: image["id"].as_str().unwrap_or_default().to_string(),
        vcpus: 1,
    };
    for on in [1, 2] {
        let warm = guests.on(&region, &hvs, on, &["warm"]).await?;
        inst::delete(&region, &warm[0], drain::SETTLE).await?;
    }
    let ids = guests.on(&region, &hvs, 0, &GUESTS).await?;

    let first = timed_drain(&region, &a, 1).await?;
    back_to(&region, &hvs, &ids).await?;
    let second = timed_drain(&region, &a, 3).await?;

    for t in [&first, &second] {
        print_drain(t);
    }
    summary(&first, &second);
    if let Some(keep) = std::env::var_os("DRAIN_BENCH_KEEP") {
        std::process::Command::new("cp")
            .arg("-r")
            .arg(region.dir.path())
            .arg(keep)
            .status()?;
    }
    region.stop();
    drop(hvs);
    Ok(())
}

/// Locks `host`, enters maintenance with `parallelism` and waits for the drain to end.
async fn timed_drain(region: &Region, host: &str, parallelism: u32) -> anyhow::Result<Timed> {
    let (status, body) = drain::host_action(region, host, "lock").await?;
    anyhow::ensure!(status == 200, "lock: {status} {body}");
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/maintenance/enter"),
            json!({"parallelism": parallelism}),
        )
        .await?;
    anyhow::ensure!(status == 202, "enter: {status} {body}");
    // The time is the coordinator's (started_at to ended_at), so how soon this notices the
    // end does not matter.
    let report = drain::drain_ended(region, host).await?;
    let at = |field: &str| -> anyhow::Result<OffsetDateTime> {
        let text = report[field].as_str().unwrap_or_default();
        Ok(OffsetDateTime::parse(text, &Rfc3339)?)
    };
    let wall = (at("ended_at")? - at("started_at")?).try_into()?;
    anyhow::ensure!(
        report["moved"] == GUESTS.len(),
        "the drain did not move every guest: {report:#}"
    );
    Ok(Timed {
        parallelism,
        wall,
        report,
    })
}

/// Brings the guests back to host A (`hvs[0]`) by manual migrations, B and C locked so the
/// scheduler has no other choice.
async fn back_to(region: &Region, hvs: &[Hv], ids: &[String]) -> anyhow::Result<()> {
    let a = &hvs[0].agent.host_id;
    for action in ["maintenance/exit", "unlock"] {
        let (status, body) = drain::host_action(region, a, action).await?;
        anyhow::ensure!(status == 200, "{action}: {status} {body}");
    }
    for id in ids {
        let (status, body) = region
            .post(
                &format!("/v1/instances/{id}/migrate"),
                json!({"target_host": a}),
            )
            .await?;
        anyhow::ensure!(status == 202, "migrate {id}: {status} {body}");
        wait_for("the guest back on A", drain::DRAIN, || async {
            let (_, i) = region.get(&format!("/v1/instances/{id}")).await?;
            Ok((i["state"] == "running" && i["host_id"] == a.as_str()).then_some(()))
        })
        .await?;
    }
    Ok(())
}

fn ms(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// (total, libvirt) per moved guest.
fn timings(t: &Timed) -> Vec<(u64, u64)> {
    t.report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| Some((ms(&i["total_ms"])?, ms(&i["libvirt_ms"])?)))
        .collect()
}

fn print_drain(t: &Timed) {
    println!(
        "\ndrain of {} guests, parallelism {}: {:.3} s from started to ended",
        GUESTS.len(),
        t.parallelism,
        t.wall.as_secs_f64()
    );
    println!(
        "  {:<10} {:<18} {:>10} {:>9} {:>11} {:>11}",
        "guest", "target", "prepare ms", "total ms", "libvirt ms", "overhead ms"
    );
    for i in t.report["items"].as_array().into_iter().flatten() {
        let (total, libvirt) = (ms(&i["total_ms"]), ms(&i["libvirt_ms"]));
        let overhead = total.zip(libvirt).map(|(t, l)| t.saturating_sub(l));
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "  {:<10} {:<18} {:>10} {:>9} {:>11} {:>11}",
            i["instance_name"].as_str().unwrap_or("?"),
            i["target_host"].as_str().unwrap_or("-"),
            show(ms(&i["prepare_ms"])),
            show(total),
            show(libvirt),
            show(overhead)
        );
    }
}

fn summary(first: &Timed, second: &Timed) {
    let all: Vec<(u64, u64)> = [first, second].iter().flat_map(|t| timings(t)).collect();
    let overheads: Vec<u64> = all.iter().map(|(t, l)| t.saturating_sub(*l)).collect();
    let mean = overheads.iter().sum::<u64>() as f64 / overheads.len().max(1) as f64;
    let max = overheads.iter().copied().max().unwrap_or_default();
    let speedup = first.wall.as_secs_f64() / second.wall.as_secs_f64().max(f64::EPSILON);
    let libvirt_sum: u64 = timings(first).iter().map(|(_, l)| l).sum();
    let serial = (first.wall.as_millis() as f64 - libvirt_sum as f64) / GUESTS.len() as f64;
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "\ncoordinator overhead per migration ({} migrations): mean {mean:.1} ms, max {max} ms; goal <= 50 ms: {} on the mean, {} on the max",
        overheads.len(),
        verdict(mean <= 50.0),
        verdict(max <= 50)
    );
    println!(
        "serial drain: ({} ms - {libvirt_sum} ms of libvirt) / {} = {serial:.1} ms of plinth per migration, all included",
        first.wall.as_millis(),
        GUESTS.len()
    );
    println!(
        "parallelism 3 vs 1: {:.2} s vs {:.2} s = {speedup:.2}x faster; goal close to 3x: {}",
        second.wall.as_secs_f64(),
        first.wall.as_secs_f64(),
        verdict(speedup >= 2.5)
    );
}
