//! Benchmark: a highly available region (issue 20). Goals:
//! 1. persisted claims/s on PostgreSQL through three coordinators >= SQLite's through one, on
//!    the scheduler benchmark's workload (10,000 hosts holding 100,000 instances; callers that
//!    claim as the API's create does, 64 in all);
//! 2. host list p99 <= 10 ms on each of three coordinators at 10,000 hosts;
//! 3. failover: the job lease's holder killed (SIGKILL; a 3 s lease) -> the first step of a
//!    job made by the new holder, p50 and max over 10 kills, <= 5 s.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p plinth-e2e --bench ha`
//! (`PLINTH_HA_BENCH=claims` runs 1 alone.)
//!
//! 1 runs the stores in this process, as the scheduler benchmark does (one `Store` per
//! coordinator, each with its own pool, claim writer and cache follower; no HTTP), SQLite on a
//! file, PostgreSQL on a server this program starts on 127.0.0.245. 2 and 3 run real
//! coordinator processes (`plinth_e2e::ha`: PostgreSQL on 127.0.0.241, coordinators on .242
//! to .244): 2 writes the fleet's hosts through a store of its own (the coordinators hear of
//! them through LISTEN/NOTIFY) and times `GET /v1/hosts` pages over HTTPS on each; 3 keeps an
//! image import running from a local HTTP server that trickles, kills whichever coordinator
//! holds the lease, waits for the import's "downloading" step from its successor (the step's
//! time is the coordinator's clock, this machine's), restarts the killed one, and repeats.
//!
//! The program prints a report and exits 0 whether or not the goals are met (a measurement,
//! not a test); it fails only when a check of the results does.

#[path = "../../coordinator/benches/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../../coordinator/benches/fleet/mod.rs"]
#[allow(dead_code)]
mod fleet;

use anyhow::{Context, ensure};
use common::stats;
use plinth_common::timefmt::now_ms;
use plinth_coordinator::db::{Database, Store};
use plinth_coordinator::dev::postgres::TempPostgres;
use plinth_coordinator::scheduler::Overcommit;
use plinth_e2e::ha::{Ha, start};
use plinth_e2e::{servers, wait_for};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CALLERS: usize = 64;
const CLAIMS: usize = 20_000;
const COORDINATORS: usize = 3;
const LIST_REQUESTS: usize = 300;
const KILLS: usize = 10;
const GOAL_LIST_P99_MS: f64 = 10.0;
const GOAL_FAILOVER_S: f64 = 5.0;

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A fleet written into `store` the way the scheduler benchmark writes it, the store reopened
/// afterwards so its index loads it.
async fn seeded(
    database: &Database,
    fleet: &fleet::Fleet,
) -> anyhow::Result<(Vec<(String, String)>, String)> {
    let store = Store::connect(database, &plinth_coordinator::jobs::Jobs::new()).await?;
    let seeded = fleet::seed_store(&store, fleet).await?;
    store.pool().close().await;
    Ok(seeded)
}

struct Claims {
    label: String,
    claims: usize,
    per_s: f64,
    p50: f64,
    p99: f64,
    gave_up: usize,
    consistent: bool,
}

/// `CALLERS` callers claiming `CLAIMS` in all, spread over one store per coordinator of
/// `database`; then the claims checked against the table and each store's index.
async fn claims(
    label: &str,
    database: &Database,
    coordinators: usize,
    fleet: &fleet::Fleet,
    seeded: &(Vec<(String, String)>, String),
) -> anyhow::Result<Claims> {
    let oc = Overcommit::default();
    let jobs = plinth_coordinator::jobs::Jobs::new();
    let stop = CancellationToken::new();
    let mut stores = Vec::new();
    for _ in 0..coordinators {
        let store = Store::connect(database, &jobs).await?;
        tokio::spawn(plinth_coordinator::db::follow::follow(
            store.clone(),
            stop.clone(),
        ));
        stores.push(store);
    }
    let started = Instant::now();
    let runs = stores.iter().map(|store| {
        fleet::claim_run(
            store,
            seeded,
            CALLERS / coordinators,
            CLAIMS / coordinators,
            oc,
            fleet::choose,
        )
    });
    let runs = futures_util::future::try_join_all(runs).await?;
    let wall = started.elapsed();
    let claimed: usize = runs.iter().map(|r| r.claims).sum();
    // Consistent once each store's follower has caught up with the last claims (a bounded
    // wait; past it, the check reports what it finds).
    let verdict = || async {
        let mut consistent = true;
        for store in &stores {
            let (_, instances, over, mismatched) = fleet::check_claims(store, oc).await?;
            consistent &= over == 0
                && mismatched == 0
                && instances == (fleet.instances.len() + claimed) as u64
                && fleet::check_usage(store).await? == 0;
        }
        Ok::<bool, anyhow::Error>(consistent)
    };
    let caught_up = wait_for(
        "the followers to catch up",
        Duration::from_secs(10),
        || async { Ok(verdict().await?.then_some(())) },
    )
    .await;
    let consistent = caught_up.is_ok() || verdict().await?;
    stop.cancel();
    for store in &stores {
        store.pool().close().await;
    }
    let latencies: Vec<f64> = runs
        .iter()
        .flat_map(|r| [r.stats.p50, r.stats.p99])
        .collect();
    Ok(Claims {
        label: label.to_string(),
        claims: claimed,
        per_s: claimed as f64 / wall.as_secs_f64(),
        p50: runs.iter().map(|r| r.stats.p50).fold(0.0, f64::max),
        p99: latencies.iter().copied().fold(0.0, f64::max),
        gave_up: runs.iter().map(|r| r.gave_up).sum(),
        consistent,
    })
}

/// Every member lists `n` hosts.
async fn listed_everywhere(ha: &Ha, n: usize) -> anyhow::Result<()> {
    for at in 0..ha.members.len() {
        wait_for(
            &format!("c{} to list {n} hosts", at + 1),
            Duration::from_secs(120),
            || async {
                let (_, list) = ha
                    .call(at, reqwest::Method::GET, "/v1/hosts?limit=1", None)
                    .await?;
                Ok((list["total"] == json!(n)).then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// p50 and p99 (ms) of `LIST_REQUESTS` host-list pages on member `at`: the first page, a
/// filtered page, a search, and pages further on by cursor, in turn.
async fn time_lists(ha: &Ha, at: usize) -> anyhow::Result<(f64, f64)> {
    let queries = [
        "/v1/hosts?limit=50",
        "/v1/hosts?limit=50&state=available&cluster=prod-sh-a",
        "/v1/hosts?limit=50&q=host-0000000001",
    ];
    let mut cursor: Option<String> = None;
    let mut times = Vec::with_capacity(LIST_REQUESTS);
    for i in 0..LIST_REQUESTS {
        let path = match (i % 4, &cursor) {
            (3, Some(c)) => format!("/v1/hosts?limit=50&cursor={c}"),
            (n, _) => queries[n % 3].to_string(),
        };
        let t0 = Instant::now();
        let (status, page) = ha.call(at, reqwest::Method::GET, &path, None).await?;
        times.push(t0.elapsed());
        ensure!(status == 200, "{path}: {status} {page}");
        if i % 4 == 0 || i % 4 == 3 {
            cursor = page["next_cursor"].as_str().map(str::to_string);
        }
    }
    let s = stats(times);
    Ok((s.p50, s.p99))
}

/// An RFC 3339 time as Unix milliseconds.
fn unix_ms(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    t.ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The "downloading" steps of operation `op` (their times, ms), as member `at` shows them.
async fn downloads(ha: &Ha, at: usize, op: &str) -> anyhow::Result<Vec<i64>> {
    let (_, o) = ha
        .call(
            at,
            reqwest::Method::GET,
            &format!("/v1/operations/{op}"),
            None,
        )
        .await?;
    Ok(o["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| {
                    s["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("downloading"))
                })
                .filter_map(|s| s["at"].as_str())
                .filter_map(unix_ms)
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plinth_common::tls::install_crypto_provider();
    let t0 = Instant::now();
    let fleet = fleet::fleet(Overcommit::default())?;
    println!(
        "ha: the scheduler benchmark's fleet, {} hosts holding {} instances, generated in {:.1} s",
        fleet.hosts.len(),
        fleet.instances.len(),
        t0.elapsed().as_secs_f64()
    );

    // 1. Claims.
    let tmp = tempfile::tempdir()?;
    let sqlite = Database::Sqlite(tmp.path().join("plinth.db"));
    let pg = TempPostgres::start("127.0.0.245".parse()?)?;
    let postgres = Database::Postgres(pg.create_database("claims").await?);
    let mut results = Vec::new();
    for (label, database, n) in [
        ("SQLite, 1 coordinator", &sqlite, 1),
        ("PostgreSQL, 3 coordinators", &postgres, COORDINATORS),
    ] {
        let t0 = Instant::now();
        let seeded = seeded(database, &fleet).await?;
        println!("   {label}: seeded in {:.1} s", t0.elapsed().as_secs_f64());
        results.push(claims(label, database, n, &fleet, &seeded).await?);
    }
    drop(pg);
    println!();
    println!(
        "1. persisted claims, {CALLERS} callers in all, {CLAIMS} claims asked (each run stops \
         starting claims after {} s); latency in ms (p50: the slowest store's; p99: the worst)",
        fleet::CLAIM_RUN_CAP.as_secs()
    );
    println!(
        "  {:<28} {:>7} {:>9} {:>8} {:>8} {:>7} {:>6}",
        "store", "claims", "claims/s", "p50", "p99", "gave up", "check"
    );
    for r in &results {
        println!(
            "  {:<28} {:>7} {:>9.0} {:>8.3} {:>8.3} {:>7} {:>6}",
            r.label,
            r.claims,
            r.per_s,
            r.p50,
            r.p99,
            r.gave_up,
            if r.consistent { "OK" } else { "FAILED" }
        );
    }

    if std::env::var("PLINTH_HA_BENCH").as_deref() == Ok("claims") {
        return Ok(());
    }

    // 2. Host lists at 10,000 hosts, on each coordinator.
    let mut ha = start(241, COORDINATORS as u8).await?;
    let t0 = Instant::now();
    let writer = Store::connect(
        &Database::Postgres(ha.database_url.clone()),
        &plinth_coordinator::jobs::Jobs::new(),
    )
    .await?;
    fleet::seed_hosts(&writer, &fleet).await?;
    listed_everywhere(&ha, fleet.hosts.len()).await?;
    println!();
    println!(
        "2. host list, {} hosts written through another store and heard by every coordinator \
         within {:.1} s; {LIST_REQUESTS} pages of 50 per coordinator over HTTPS (first page, a \
         cluster and state filter, a search, cursor pages); ms",
        fleet.hosts.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut worst_p99: f64 = 0.0;
    for at in 0..ha.members.len() {
        let (p50, p99) = time_lists(&ha, at).await?;
        worst_p99 = worst_p99.max(p99);
        println!("  c{}: p50 {p50:.2}  p99 {p99:.2}", at + 1);
    }

    // 3. Failover.
    let files = ha.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &ha.dir.path().join("http.log"))?;
    let sha = plinth_e2e::incompressible_qcow2(&files, "slow", 24)?;
    let tenant = ha.tenant(0).await?;
    let url = format!("http://127.0.0.1:{}/slow/slow.qcow2", http.port);
    let image = ha.import(0, &tenant, "failover", &url, &sha).await?;
    let op = image["operation_id"]
        .as_str()
        .context("operation id")?
        .to_string();
    let mut failovers = Vec::new();
    for round in 0..KILLS {
        let all: Vec<usize> = (0..ha.members.len()).collect();
        let holder = ha.holder(&all).await?;
        let other = (holder + 1) % ha.members.len();
        wait_for("the holder's download", Duration::from_secs(30), || async {
            Ok((!downloads(&ha, other, &op).await?.is_empty()).then_some(()))
        })
        .await?;
        let killed_at = now_ms();
        ha.members[holder].daemon.kill();
        let step = wait_for(
            "the new holder's download",
            Duration::from_secs(60),
            || async {
                let steps = downloads(&ha, other, &op).await?;
                Ok(steps.into_iter().find(|&at| at > killed_at))
            },
        )
        .await?;
        let took = Duration::from_millis((step - killed_at).max(0) as u64);
        println!(
            "   kill {}: c{} killed, the import's next step {:.2} s later",
            round + 1,
            holder + 1,
            took.as_secs_f64()
        );
        failovers.push(took);
        ha.members[holder].restart().await?;
    }
    let (_, image_now) = ha
        .call(
            0,
            reqwest::Method::GET,
            &format!("/v1/images/{}", image["id"].as_str().unwrap_or_default()),
            None,
        )
        .await?;
    ensure!(
        image_now["status"] == "importing" || image_now["status"] == "available",
        "the import ended otherwise: {image_now}"
    );
    let f = stats(failovers);
    drop(http);
    for m in &mut ha.members {
        m.daemon.stop();
    }
    println!();
    println!(
        "3. failover over {KILLS} kills (lease 3 s): p50 {:.2} s, max {:.2} s",
        f.p50 / 1e3,
        f.max / 1e3
    );

    println!();
    let (lite, pg) = (&results[0], &results[1]);
    println!(
        "persisted claims/s, PostgreSQL through 3 coordinators: {:.0}; SQLite through one: {:.0} \
         ({:.2}x); goal >= 1x: {}",
        pg.per_s,
        lite.per_s,
        pg.per_s / lite.per_s,
        verdict(pg.per_s >= lite.per_s)
    );
    println!(
        "host list p99 at {} hosts, worst of 3 coordinators: {worst_p99:.2} ms; goal <= 10 ms: {}",
        fleet.hosts.len(),
        verdict(worst_p99 <= GOAL_LIST_P99_MS)
    );
    println!(
        "failover p50 {:.2} s, max {:.2} s; goal <= 5 s: {}",
        f.p50 / 1e3,
        f.max / 1e3,
        verdict(f.max / 1e3 <= GOAL_FAILOVER_S)
    );
    ensure!(
        results.iter().all(|r| r.consistent),
        "the claims check failed"
    );
    Ok(())
}
