//! Benchmark: placement on 10,000 hosts holding 100,000 instances. Goals (issue 4, item 10):
//! >= 20,000 decisions/s and p99 <= 1 ms for one decision (filters + pick, in memory), and
//! >= 2,000 claims/s persisted in the store (SQLite) with concurrent callers.
//!
//! Run: `cargo bench -p plinth-coordinator --bench scheduler`
//!
//! One fleet is generated (seeded, so every run sees the same one): hosts of varied sizes in
//! several clusters, a few locked, in maintenance or with their agent offline, and 100,000
//! instances of 1-8 vCPUs and 1-32 GiB placed on them under `Overcommit::default()`, some
//! hosts busier than others. The same fleet is used twice:
//!
//! 1. in memory, as `scheduler::Candidate`s: one thread times decisions (`scheduler::choose`,
//!    the one-pass path the API's create runs, and `scheduler::filter` + `scheduler::pick`, the
//!    slow path that explains a refusal) for random requests, some constrained to a cluster,
//!    under each policy;
//! 2. in a real store (`Store::open` on a file in a temporary directory): hosts, tenants (with
//!    quotas) and an image written through the store API, the 100,000 instances and their hosts'
//!    allocations written in one bulk transaction, the store reopened so its host index loads
//!    them; then K tokio tasks each claim in a loop as the API's create does (a decision with
//!    `Store::with_placement` over the store's host index, `Store::create_instance`, another
//!    host on `ClaimRefused::HostFull`): one caller, then 16, then 64, each run for a fixed
//!    number of claims or at most `CLAIM_RUN_CAP`, with the time per claim split into deciding
//!    and the store's transaction. Afterwards every host's allocation is checked against the
//!    instances placed on it, against its capacity and against the store's in-memory index,
//!    and every tenant's usage counters against the sums over its instances.
//!
//! The program prints a report and exits 0 whether or not the goals are met (it is a
//! measurement, not a test); it fails only when a check of the results does.

mod common;
mod fleet;

use anyhow::{Context, bail, ensure};
use common::{Stats, stats};
use fleet::*;
use plinth_common::host::HostState;
use plinth_common::timefmt::now_ms;
use plinth_coordinator::db::Store;
use plinth_coordinator::scheduler::{self, Candidate, Overcommit, Policy, Request};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::hint::black_box;
use std::time::Instant;

/// Timed decisions per policy and decision function, after `WARMUP_DECISIONS`.
const DECISIONS: usize = 20_000;
const WARMUP_DECISIONS: usize = 2_000;

const GOAL_DECISIONS_PER_S: f64 = 20_000.0;
const GOAL_P99_MS: f64 = 1.0;
const GOAL_CLAIMS_PER_S: f64 = 2_000.0;

/// filter + pick: what `choose` must agree with, and the slow path the API takes only to explain a refusal.
fn filter_pick<'a>(
    hosts: &'a [Candidate],
    req: &Request,
    policy: Policy,
    oc: Overcommit,
    rng: &mut StdRng,
) -> Option<&'a Candidate> {
    let (suitable, _rejected) = scheduler::filter(hosts, req, oc);
    scheduler::pick(&suitable, policy, oc, rng)
}

struct DecisionRun {
    per_s: f64,
    stats: Stats,
    none_found: usize,
    /// Per request, the chosen host's index (to compare decision functions).
    chosen: Vec<Option<usize>>,
}

/// Times `DECISIONS` decisions on one thread (after a warm-up), each checked afterwards
/// against `scheduler::check`.
fn time_decisions(
    hosts: &[Candidate],
    requests: &[Request],
    policy: Policy,
    oc: Overcommit,
    decide: Decide,
) -> anyhow::Result<DecisionRun> {
    let mut rng = StdRng::seed_from_u64(11);
    for req in requests.iter().cycle().take(WARMUP_DECISIONS) {
        black_box(decide(hosts, req, policy, oc, &mut rng));
    }
    let mut samples = Vec::with_capacity(DECISIONS);
    let mut chosen = Vec::with_capacity(DECISIONS);
    let started = Instant::now();
    for req in &requests[..DECISIONS] {
        let t0 = Instant::now();
        let host = black_box(decide(hosts, req, policy, oc, &mut rng));
        samples.push(t0.elapsed());
        chosen.push(host.map(|h| {
            (h as *const Candidate as usize - hosts.as_ptr() as usize)
                / std::mem::size_of::<Candidate>()
        }));
    }
    let wall = started.elapsed();
    let mut none_found = 0;
    for (req, c) in requests.iter().zip(&chosen) {
        match c {
            Some(i) => ensure!(
                scheduler::check(&hosts[*i], req, oc).is_none(),
                "{policy:?}: chose {} which cannot take {req:?}",
                hosts[*i].host_id
            ),
            None => none_found += 1,
        }
    }
    Ok(DecisionRun {
        per_s: DECISIONS as f64 / wall.as_secs_f64(),
        stats: stats(samples),
        none_found,
        chosen,
    })
}

/// Checks that two decision functions agree: the same requests found no host, and spread /
/// pack chose hosts with the same room (ties may be broken differently).
fn same_decisions(
    hosts: &[Candidate],
    policy: Policy,
    oc: Overcommit,
    a: &DecisionRun,
    b: &DecisionRun,
) -> anyhow::Result<()> {
    for (i, (x, y)) in a.chosen.iter().zip(&b.chosen).enumerate() {
        match (x, y) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                if policy != Policy::Random {
                    let (rx, ry) = (
                        scheduler::room(&hosts[*x], oc),
                        scheduler::room(&hosts[*y], oc),
                    );
                    ensure!(
                        rx == ry,
                        "{policy:?}, request {i}: rooms {rx} and {ry} differ"
                    );
                }
            }
            _ => bail!("{policy:?}, request {i}: one found a host, the other did not"),
        }
    }
    Ok(())
}

fn decision_header() {
    println!(
        "  {:<28} {:>11} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "decision", "decisions/s", "n", "p50", "p90", "p99", "max", "no host"
    );
}

fn decision_row(label: &str, r: &DecisionRun) {
    let s = &r.stats;
    println!(
        "  {label:<28} {:>11.0} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}",
        r.per_s, s.n, s.p50, s.p90, s.p99, s.max, r.none_found
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let oc = Overcommit::default();
    let t0 = Instant::now();
    let fleet = fleet(oc)?;
    let hosts = candidates(&fleet);
    let suitable_now = hosts
        .iter()
        .filter(|h| h.state == HostState::Available && h.agent_online)
        .count();
    let full = hosts
        .iter()
        .filter(|h| {
            scheduler::check(
                h,
                &Request {
                    cores: 8,
                    memory_bytes: 32 * GIB,
                    ..Request::default()
                },
                oc,
            )
            .is_some()
        })
        .count();
    let (cores, used_cores, mem, used_mem) = hosts.iter().fold((0u64, 0u64, 0u64, 0u64), |a, h| {
        (
            a.0 + u64::from(h.total_cores),
            a.1 + u64::from(h.allocated_cores),
            a.2 + h.total_memory_bytes,
            a.3 + h.allocated_memory_bytes,
        )
    });
    println!(
        "scheduler: placement on {} hosts in {} clusters holding {} instances \
         (overcommit cpu {} memory {}); fleet generated in {:.2} s",
        hosts.len(),
        CLUSTERS.len(),
        fleet.instances.len(),
        oc.cpu,
        oc.memory,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "hosts: {suitable_now} available with their agent online; {full} cannot take 8 vCPU / 32 GiB; \
         {:.0}% of physical cores and {:.0}% of memory allocated",
        100.0 * used_cores as f64 / cores as f64,
        100.0 * used_mem as f64 / mem as f64
    );

    // 1. Decisions in memory, one thread.
    let mut rng = StdRng::seed_from_u64(5);
    let requests: Vec<Request> = (0..DECISIONS).map(|_| random_request(&mut rng)).collect();
    println!();
    println!(
        "1. decisions in memory, one thread: {DECISIONS} random requests per row after {WARMUP_DECISIONS} \
         warm-up ({CLUSTER_REQUEST_PERCENT}% constrained to a cluster, {LARGE_REQUEST_PERCENT}% of 16 vCPU / 64-128 GiB); \
         latency in ms"
    );
    decision_header();
    let mut headline = None;
    for policy in [Policy::Random, Policy::Spread, Policy::Pack] {
        let name = format!("{policy:?}").to_lowercase();
        let slow = time_decisions(&hosts, &requests, policy, oc, filter_pick)?;
        decision_row(&format!("filter + pick, {name}"), &slow);
        let fast = time_decisions(&hosts, &requests, policy, oc, choose)?;
        decision_row(&format!("choose, {name}"), &fast);
        same_decisions(&hosts, policy, oc, &slow, &fast)?;
        if policy == Policy::Random {
            headline = Some((slow, fast));
        }
    }
    println!(
        "   every choice checked with scheduler::check; choose and filter + pick found a host for the \
         same requests, and for spread / pack one with the same room"
    );
    let (slow, fast) = headline.context("no random run")?;

    // 2. Claims persisted in a store.
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("plinth.db");
    let t0 = Instant::now();
    let store = Store::open(&db).await.context("opening the store")?;
    let seeded = seed_store(&store, &fleet).await?;
    store.pool().close().await;
    drop(store);
    let store = Store::open(&db).await.context("reopening the store")?;
    same_as_fleet(&store.placement_candidates(now_ms()), &fleet)?;
    println!();
    println!(
        "2. claims persisted: Store::create_instance on SQLite ({}), {} hosts, {} instances, \
         {TENANTS} tenants with quotas; seeded and reopened in {:.1} s",
        db.display(),
        fleet.hosts.len(),
        fleet.instances.len(),
        t0.elapsed().as_secs_f64()
    );
    println!(
        "   each claim: with_placement + choose (random) + create_instance, another host on \
         HostFull (at most {CLAIM_ATTEMPTS}); latency in ms; a run stops starting claims after \
         {} s; decide / store: mean ms per claim in with_placement + choose and in \
         create_instance (incl. waiting for a connection and the write lock)",
        CLAIM_RUN_CAP.as_secs()
    );
    println!(
        "  {:<8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "callers",
        "claims",
        "claims/s",
        "p50",
        "p90",
        "p99",
        "max",
        "refused",
        "gave up",
        "decide",
        "store"
    );
    let mut runs = Vec::new();
    for (callers, total) in CLAIM_RUNS {
        let r = claim_run(&store, &seeded, callers, total, oc, choose).await?;
        let s = &r.stats;
        println!(
            "  {:<8} {:>7} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>7} {:>7.3} {:>7.3}{}",
            r.callers,
            r.claims,
            r.per_s,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            r.refused,
            r.gave_up,
            r.decide_ms,
            r.claim_ms,
            if r.capped {
                "  (stopped at the time cap)"
            } else {
                ""
            }
        );
        runs.push(r);
    }
    let (checked_hosts, instances, over, mismatched) = check_claims(&store, oc).await?;
    let tenants_off = check_usage(&store).await?;
    let claimed: usize = runs.iter().map(|r| r.claims).sum();
    let consistent = over == 0
        && mismatched == 0
        && tenants_off == 0
        && instances == (fleet.instances.len() + claimed) as u64;
    println!(
        "   check: {checked_hosts} hosts, {instances} instances ({} seeded + {claimed} claimed); \
         {over} hosts over capacity; {mismatched} hosts whose allocated cores/memory differ from \
         the sum of their instances (or from the index); {tenants_off} tenants whose usage \
         counters differ from the sums over their instances: {}",
        fleet.instances.len(),
        if consistent { "OK" } else { "FAILED" }
    );
    store.pool().close().await;
    drop(tmp);

    let concurrent: Vec<&ClaimRun> = runs.iter().filter(|r| r.callers > 1).collect();
    let claims_per_s = concurrent
        .iter()
        .map(|r| r.per_s)
        .fold(f64::INFINITY, f64::min);
    let by_callers: Vec<String> = concurrent
        .iter()
        .map(|r| format!("{:.0} with {} callers", r.per_s, r.callers))
        .collect();
    println!();
    for (label, r) in [("filter + pick", &slow), ("choose", &fast)] {
        println!(
            "decisions/s ({label}, random, one thread): {:.0}; goal >= 20,000: {}",
            r.per_s,
            verdict(r.per_s >= GOAL_DECISIONS_PER_S)
        );
        println!(
            "p99 of one decision ({label}, random): {:.3} ms; goal <= 1 ms: {}",
            r.stats.p99,
            verdict(r.stats.p99 <= GOAL_P99_MS)
        );
    }
    println!(
        "persisted claims/s (lowest of {}): {claims_per_s:.0}; goal >= 2,000: {}",
        by_callers.join(", "),
        verdict(claims_per_s >= GOAL_CLAIMS_PER_S)
    );
    ensure!(consistent, "the claims check failed");
    Ok(())
}
