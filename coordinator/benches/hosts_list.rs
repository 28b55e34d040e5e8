//! Benchmark: `GET /v1/hosts?q=...` latency over the real HTTPS API (TLS, bearer-token auth)
//! with 10,000 hosts in the store and 2 concurrent clients. Goal (issue): p99 <= 10 ms.
//!
//! Run: `cargo bench -p plinth-coordinator --bench hosts_list`
//!
//! A data directory is initialised in a temporary directory and seeded through the store; the
//! real `plinth-coordinator serve` then runs as its own process on 127.0.0.1:0, and two tokio
//! tasks with their own `reqwest` clients call it. Latency is send -> full body read; each response's `total` is checked
//! against what the seeded data must give. The program prints a report and exits 0 whether
//! or not the goal is met (it is a measurement, not a test).

mod common;

use anyhow::{Context, bail, ensure};
use common::{Stats, pick_weighted, stats};
use plinth_common::api::HostPage;
use plinth_common::ids::new_id;
use plinth_common::timefmt::now_ms;
use plinth_coordinator::db::Store;
use plinth_coordinator::hosts::store::{HostFilter, NewHost};
use plinth_coordinator::init;
use plinth_coordinator::paths::DataDir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Url;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

const HOSTS: usize = 10_000;
const CLIENTS: usize = 2;
const REQUESTS_PER_CLIENT: usize = 1_000;
const WARMUP_PER_CLIENT: usize = 60;
const PER_PAGE: u32 = 50;
/// Calls per query term in the store-only breakdown (no HTTP, TLS or auth).
const STORE_CALLS_PER_TERM: usize = 200;
const GOAL_P99_MS: f64 = 10.0;

const CLUSTERS: [(&str, &str); 10] = [
    ("prod-sh-a", "production, Shanghai zone A"),
    ("prod-sh-b", "production, Shanghai zone B"),
    ("prod-bj-a", "production, Beijing zone A"),
    ("prod-gz-a", "production, Guangzhou zone A"),
    ("staging", "staging"),
    ("hpc-east", "HPC batch, east"),
    ("hpc-west", "HPC batch, west"),
    ("gpu-train", "GPU training nodes"),
    ("edge-cdn", "edge / CDN"),
    ("dev-lab", "developer lab"),
];
/// Relative share of hosts per cluster (same order as `CLUSTERS`).
const CLUSTER_WEIGHTS: [u32; 10] = [22, 20, 15, 10, 6, 8, 7, 5, 4, 3];

/// CPU model, relative share, possible core counts.
const CPUS: [(&str, u32, &[u32]); 8] = [
    ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 24, &[64, 128]),
    (
        "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
        14,
        &[80, 160],
    ),
    ("Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz", 8, &[32, 64]),
    ("AMD EPYC 7763 64-Core Processor", 18, &[128, 256]),
    ("AMD EPYC 9654 96-Core Processor", 8, &[192, 384]),
    ("Hygon C86 7285 32-core Processor", 12, &[64, 128]),
    ("Kunpeng-920", 12, &[96, 128]),
    ("Ampere(R) Altra(R) Processor Q80-30", 4, &[80]),
];
const MEMORY_GIB: [u64; 7] = [128, 192, 256, 384, 512, 768, 1024];

/// One seeded host, as far as the search sees it.
struct Seeded {
    id: String,
    ip: String,
    cluster: &'static str,
    cpu: &'static str,
}

impl Seeded {
    /// What the store's `search_text` holds: lowercase id, ip, cluster, cpu model.
    fn search_text(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.id, self.ip, self.cluster, self.cpu).to_lowercase()
    }
}

/// A query the clients cycle through, and the `total` it must return.
struct Term {
    label: String,
    q: String,
    url: Url,
    expected_total: u64,
}

async fn seed(store: &plinth_coordinator::db::Store) -> anyhow::Result<(Vec<Seeded>, Duration)> {
    let started = Instant::now();
    for (id, description) in CLUSTERS {
        ensure!(
            store.create_cluster(id, description).await?,
            "cluster {id} already exists"
        );
    }
    let mut rng = StdRng::seed_from_u64(0x706c_696e_7468);
    let now = now_ms();
    let cert_expires_at = now + 30 * 86_400_000;
    let mut per_cluster = [0usize; CLUSTERS.len()];
    let mut ids = HashSet::with_capacity(HOSTS);
    let mut seeded = Vec::with_capacity(HOSTS);
    while seeded.len() < HOSTS {
        let id = new_id("host");
        if !ids.insert(id.clone()) {
            continue; // 48 random bits: a repeat is unlikely, but would overwrite a host
        }
        let c = pick_weighted(&mut rng, CLUSTER_WEIGHTS.iter().copied());
        let n = per_cluster[c];
        per_cluster[c] += 1;
        // 10.<cluster>.<rack>.<slot>: distinct per host, only ever stored.
        let ip = format!("10.{}.{}.{}", c + 1, n / 250, n % 250 + 1);
        let (cluster, _) = CLUSTERS[c];
        let hostname = format!("{cluster}-r{:03}-n{:03}", n / 40, n % 40 + 1);
        let (cpu, _, core_options) = CPUS[pick_weighted(&mut rng, CPUS.iter().map(|c| c.1))];
        let cores = core_options[rng.gen_range(0..core_options.len())];
        let memory = MEMORY_GIB[rng.gen_range(0..MEMORY_GIB.len())] << 30;
        store
            .insert_host_with_facts(
                &NewHost {
                    id: &id,
                    ip: &ip,
                    hostname: &hostname,
                    cluster_id: cluster,
                    cert_expires_at,
                    now,
                },
                cpu,
                cores,
                memory,
            )
            .await
            .with_context(|| format!("inserting host {} ({id}, {ip})", seeded.len()))?;
        seeded.push(Seeded {
            id,
            ip,
            cluster,
            cpu,
        });
    }
    Ok((seeded, started.elapsed()))
}

fn terms(base: &Url, seeded: &[Seeded], rng: &mut StdRng) -> anyhow::Result<Vec<Term>> {
    let texts: Vec<String> = seeded.iter().map(Seeded::search_text).collect();
    let count = |q: &str| {
        let q = q.to_lowercase();
        texts.iter().filter(|t| t.contains(&q)).count() as u64
    };
    // Six hex digits from the middle of one host's id: matches that host (and rarely another).
    let some_id = &seeded[rng.gen_range(0..seeded.len())].id;
    let id_fragment = some_id
        .get(7..13)
        .with_context(|| format!("host id {some_id} is shorter than expected"))?;
    let per_page = PER_PAGE.to_string();
    let mut out = Vec::new();
    for (label, q) in [
        ("cpu substring", "xeon"),
        ("ip prefix", "10.1."),
        ("cluster name", "hpc-east"),
        ("host-id fragment", id_fragment),
        ("no match", "zz-no-such-host"),
        ("empty q", ""),
    ] {
        let url = Url::parse_with_params(base.as_str(), [("q", q), ("limit", per_page.as_str())])?;
        out.push(Term {
            label: format!("{label} q={q:?}"),
            q: q.to_string(),
            url,
            expected_total: count(q),
        });
    }
    // The mix must exercise what it claims to.
    let by_q = |q: &str| out.iter().find(|t| t.q == q).map(|t| t.expected_total);
    ensure!(
        by_q("xeon").is_some_and(|n| n > 0),
        "no seeded host has a Xeon"
    );
    ensure!(
        by_q("10.1.").is_some_and(|n| n > 0),
        "no seeded ip starts 10.1."
    );
    ensure!(
        by_q("hpc-east").is_some_and(|n| n > 0),
        "cluster hpc-east is empty"
    );
    ensure!(
        by_q(id_fragment).is_some_and(|n| n >= 1),
        "id fragment matches nothing"
    );
    ensure!(
        by_q("zz-no-such-host") == Some(0),
        "the no-match term matches"
    );
    ensure!(
        by_q("") == Some(HOSTS as u64),
        "empty q must match every host"
    );
    Ok(out)
}

/// One request: (term index, latency).
type Sample = (usize, Duration);

async fn client(
    index: usize,
    ca_pem: Arc<String>,
    token: Arc<String>,
    terms: Arc<Vec<Term>>,
    start: Arc<Barrier>,
) -> anyhow::Result<Vec<Sample>> {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(plinth_common::tls::client_config(&ca_pem, None)?)
        .timeout(Duration::from_secs(10))
        .build()?;
    let auth = format!("Bearer {token}");
    // The two clients start at different terms so they do not move in lockstep.
    let offset = index * terms.len() / CLIENTS;
    let mut samples = Vec::with_capacity(REQUESTS_PER_CLIENT);
    for i in 0..WARMUP_PER_CLIENT + REQUESTS_PER_CLIENT {
        if i == WARMUP_PER_CLIENT {
            start.wait().await;
        }
        let t = (i + offset) % terms.len();
        let term = &terms[t];
        let sent = Instant::now();
        let resp = http
            .get(term.url.clone())
            .header(reqwest::header::AUTHORIZATION, &auth)
            .send()
            .await
            .with_context(|| format!("client {index}: GET {}", term.url))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("client {index}: reading body"))?;
        let elapsed = sent.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!(
                "client {index}: GET {} answered {status}: {}",
                term.url,
                String::from_utf8_lossy(&body)
            );
        }
        let page: HostPage = serde_json::from_slice(&body).with_context(|| {
            format!("client {index}: GET {}: body is not a host page", term.url)
        })?;
        ensure!(
            page.total == term.expected_total,
            "client {index}: {}: total {} but the seeded data has {} matches",
            term.label,
            page.total,
            term.expected_total
        );
        let expected_items = term.expected_total.min(u64::from(PER_PAGE));
        ensure!(
            page.items.len() as u64 == expected_items,
            "client {index}: {}: {} items on the first page, expected {expected_items}",
            term.label,
            page.items.len()
        );
        if i >= WARMUP_PER_CLIENT {
            samples.push((t, elapsed));
        }
    }
    Ok(samples)
}

fn row(label: &str, total: &str, s: &Stats) {
    println!(
        "  {label:<38} {total:>6} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        s.n, s.p50, s.p90, s.p99, s.max
    );
}

fn header() {
    println!(
        "  {:<38} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "query", "total", "n", "p50", "p90", "p99", "max"
    );
}

/// The real `plinth-coordinator serve`, in its own process, stopped by pid.
struct Coordinator {
    child: std::process::Child,
    addr: String,
}

impl Coordinator {
    async fn start(data_dir: &std::path::Path) -> anyhow::Result<Coordinator> {
        let log = std::fs::File::create(data_dir.join("serve.log"))?;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_plinth-coordinator"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("PLINTH_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting plinth-coordinator")?;
        let mut coordinator = Coordinator {
            child,
            addr: String::new(),
        };
        let addr_file = data_dir.join("coordinator.addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                coordinator.addr = addr.trim().to_string();
                return Ok(coordinator);
            }
            tokio::time::sleep(POLL).await;
        }
        coordinator.stop();
        bail!("plinth-coordinator did not start within 30 s");
    }

    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

const POLL: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plinth_common::tls::install_crypto_provider();

    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("data");
    let dir = DataDir::new(&data_dir);
    let initialised = init::init(&dir, &[], "127.0.0.1:0", None)
        .await
        .context("init")?;
    let ca_pem = std::fs::read_to_string(dir.ca_cert()).context("reading ca.pem")?;
    let store = Store::open(&dir.database())
        .await
        .context("opening the store")?;
    let (seeded, seed_time) = seed(&store).await?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut coordinator = Coordinator::start(&data_dir).await?;
    let base = Url::parse(&format!("https://{}/v1/hosts", coordinator.addr))?;
    let terms = Arc::new(terms(&base, &seeded, &mut rng)?);

    println!(
        "hosts_list: GET /v1/hosts?q=... over HTTPS (TLS + bearer auth) to a plinth-coordinator process"
    );
    println!(
        "hosts: {} in {} clusters, seeded in {:.2} s ({:.0} hosts/s, one insert_host_with_facts each)",
        seeded.len(),
        CLUSTERS.len(),
        seed_time.as_secs_f64(),
        seeded.len() as f64 / seed_time.as_secs_f64()
    );

    let ca_pem = Arc::new(ca_pem);
    let token = Arc::new(initialised.admin_token.clone());
    let start = Arc::new(Barrier::new(CLIENTS));
    let run_started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                ca_pem.clone(),
                token.clone(),
                terms.clone(),
                start.clone(),
            ))
        })
        .collect();
    let mut samples = Vec::with_capacity(CLIENTS * REQUESTS_PER_CLIENT);
    let mut failure = None;
    for task in tasks {
        match task.await.context("client task panicked") {
            Ok(Ok(s)) => samples.extend(s),
            Ok(Err(err)) | Err(err) => failure = failure.or(Some(err)),
        }
    }
    let wall = run_started.elapsed();
    coordinator.stop();
    if let Some(err) = failure {
        return Err(err);
    }

    println!(
        "clients: {CLIENTS} concurrent, {REQUESTS_PER_CLIENT} requests each after {WARMUP_PER_CLIENT} warm-up \
         (limit={PER_PAGE}); {} measured requests in {:.2} s ({:.0} req/s incl. warm-up)",
        samples.len(),
        wall.as_secs_f64(),
        (CLIENTS * (REQUESTS_PER_CLIENT + WARMUP_PER_CLIENT)) as f64 / wall.as_secs_f64()
    );
    println!();
    println!("latency, ms (send -> full body read; every response 200 with the expected total)");
    header();
    let all = stats(samples.iter().map(|s| s.1).collect());
    row("all", "-", &all);
    for (t, term) in terms.iter().enumerate() {
        let s = stats(samples.iter().filter(|s| s.0 == t).map(|s| s.1).collect());
        row(&term.label, &term.expected_total.to_string(), &s);
    }

    // Where the time goes: the same queries straight on the store (index pass + page fetch,
    // no HTTP, TLS, routing, auth or JSON), one caller at a time.
    println!();
    println!(
        "breakdown, ms: store.list_hosts in-process, sequential, {STORE_CALLS_PER_TERM} calls per query \
         (no HTTP/TLS/auth/JSON)"
    );
    header();
    for term in terms.iter() {
        let filter = HostFilter {
            q: Some(term.q.clone()),
            limit: PER_PAGE,
            ..HostFilter::default()
        };
        let mut ds = Vec::with_capacity(STORE_CALLS_PER_TERM);
        for _ in 0..STORE_CALLS_PER_TERM {
            let t0 = Instant::now();
            let (_, total) = store.list_hosts(&filter, now_ms()).await?;
            ds.push(t0.elapsed());
            ensure!(
                total == term.expected_total,
                "store: {}: total {total}",
                term.label
            );
        }
        row(&term.label, &term.expected_total.to_string(), &stats(ds));
    }
    let token_id = initialised
        .admin_token
        .split_once('.')
        .map(|(id, _)| id.to_string())
        .context("admin token has no '.'")?;
    let mut ds = Vec::with_capacity(STORE_CALLS_PER_TERM);
    for _ in 0..STORE_CALLS_PER_TERM {
        let t0 = Instant::now();
        let found = store.api_token_auth(&token_id).await?;
        ds.push(t0.elapsed());
        ensure!(found.is_some(), "admin token not found");
    }
    row("auth lookup (api_token_auth)", "-", &stats(ds));

    drop(tmp);

    println!();
    println!(
        "overall p99 {:.2} ms, p50 {:.2} ms, max {:.2} ms",
        all.p99, all.p50, all.max
    );
    if all.p99 <= GOAL_P99_MS {
        println!("goal p99 <= 10 ms: MET");
    } else {
        println!("goal p99 <= 10 ms: NOT MET");
    }
    Ok(())
}
