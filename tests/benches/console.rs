//! Benchmark: the web console's Hosts screen at scale (issue 19). A real coordinator whose
//! store holds 10,000 hosts (10 clusters, mixed CPUs and sizes, 90% with their agent online)
//! and 50,000 instances placed on them; Debian's Chromium, headless, driven by playwright-core
//! (coordinator/console/tests/bench_hosts.mjs) measures, in the page:
//!
//! - navigation to the Hosts screen → its first rows painted (a cold load, then warm ones),
//!   and → the whole list loaded (every host in the count); goal ≤ 1 s;
//! - 200 keystrokes in the search box → the filtered rows rendered and laid out, and → the
//!   next frame painted after them; p50/p95; goal p95 ≤ 16 ms;
//! - a host lock (or unlock) through the API → its row repainted in the open page, 200 times;
//!   p50/p99; goal p99 ≤ 500 ms;
//! - the JavaScript and CSS the console ships, gzip (what the Hosts page loads, and every
//!   file the console has); goal ≤ 300 KB.
//!
//! The hosts and instances are written straight into the store (the coordinator stopped, as
//! the scheduler bench does); everything measured then goes through the coordinator's HTTP
//! API and the console it serves. Each keystroke's filtered count is checked against the same
//! fuzzy match computed outside the browser, and each repaint against the API's state.
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench console`, or on the
//! debug binaries: `cargo build --bins && cargo test -p plinth-e2e --bench console`. Prints a
//! report (the goals beside the results); exits 0 whether or not a goal is met.

use anyhow::{Context, ensure};
use plinth_common::timefmt::now_ms;
use plinth_coordinator::db::Store;
use plinth_coordinator::hosts::store::NewHost;
use plinth_coordinator::paths::DataDir;
use plinth_e2e::Region;
use std::path::Path;
use std::time::Instant;

const HOSTS: usize = 10_000;
const INSTANCES: usize = 50_000;
const GIB: u64 = 1 << 30;

const CLUSTERS: [&str; 10] = [
    "prod-sh-a",
    "prod-sh-b",
    "prod-bj-a",
    "prod-gz-a",
    "staging",
    "hpc-east",
    "hpc-west",
    "gpu-train",
    "edge-cdn",
    "dev-lab",
];

/// CPU model, cores.
const CPUS: [(&str, u32); 8] = [
    ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 128),
    ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", 160),
    ("Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz", 64),
    ("AMD EPYC 7763 64-Core Processor", 256),
    ("AMD EPYC 9654 96-Core Processor", 384),
    ("Hygon C86 7285 32-core Processor", 128),
    ("Kunpeng-920", 96),
    ("Ampere(R) Altra(R) Processor Q80-30", 80),
];
const MEMORY_GIB: [u64; 5] = [256, 384, 512, 768, 1024];

/// A small deterministic generator (the same fleet every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

struct SeededHost {
    id: String,
    cores: u32,
    memory: u64,
    used_cores: u32,
    used_memory: u64,
    online: bool,
}

/// Writes the fleet: hosts through the store's own insert, then in one transaction their
/// agent presence and allocations, an image, and the instances (each on a host with room).
async fn seed(store: &Store, tenant: &str, tenant_email: &str) -> anyhow::Result<()> {
    for c in CLUSTERS {
        store.create_cluster(c, c).await?;
    }
    let mut rng = Lcg(0x706c_696e_7468);
    let now = now_ms();
    let mut hosts = Vec::with_capacity(HOSTS);
    let mut per_cluster = [0usize; CLUSTERS.len()];
    for i in 0..HOSTS {
        let c = rng.below(CLUSTERS.len());
        let n = per_cluster[c];
        per_cluster[c] += 1;
        let id = format!(
            "host-{:012x}",
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a) & 0xffff_ffff_ffff
        );
        let ip = format!("10.{}.{}.{}", c + 1, n / 250, n % 250 + 1);
        let hostname = format!("{}-r{:03}-n{:03}", CLUSTERS[c], n / 40, n % 40 + 1);
        let (cpu, cores) = CPUS[rng.below(CPUS.len())];
        let memory = MEMORY_GIB[rng.below(MEMORY_GIB.len())] * GIB;
        store
            .insert_host_with_facts(
                &NewHost {
                    id: &id,
                    ip: &ip,
                    hostname: &hostname,
                    cluster_id: CLUSTERS[c],
                    cert_expires_at: now + 30 * 86_400_000,
                    now,
                },
                cpu,
                cores,
                memory,
            )
            .await
            .with_context(|| format!("inserting host {i} ({id})"))?;
        hosts.push(SeededHost {
            id,
            cores,
            memory,
            used_cores: 0,
            used_memory: 0,
            online: rng.below(10) != 0,
        });
    }

    let mut tx = store.write().await?;
    let image = "img-bench0000001";
    plinth_coordinator::db::query(
        "INSERT INTO images (id, name, kind, image_type, visibility, note, virtualization, \
            status, created_at, updated_at) \
         VALUES ($1, 'ubuntu-24.04', 'base', 'linux', 'public', '', 'kvm', 'available', $2, $3)",
    )
    .bind(image)
    .bind(now)
    .bind(now)
    .execute(&mut tx)
    .await
    .context("inserting the image")?;
    for i in 0..INSTANCES {
        let vcpus = 1u32 << rng.below(4);
        let memory = (2u64 << rng.below(4)) * GIB;
        // A host with room for it (the fleet holds far more than 50,000 such).
        let h = loop {
            let h = rng.below(hosts.len());
            let host = &hosts[h];
            if host.used_cores + vcpus <= host.cores && host.used_memory + memory <= host.memory {
                break h;
            }
        };
        hosts[h].used_cores += vcpus;
        hosts[h].used_memory += memory;
        let id = format!("inst-{i:012x}");
        let name = format!("vm-{i:05}");
        plinth_coordinator::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, host_id, image_id, vcpus, \
                memory_bytes, disk_bytes, state, search_text, created_at, updated_at) \
             VALUES ($1, $2, 'vm', $3, $4, $5, $6, $7, $8, 'running', $9, $10, $11)",
        )
        .bind(&id)
        .bind(&name)
        .bind(tenant)
        .bind(&hosts[h].id)
        .bind(image)
        .bind(i64::from(vcpus))
        .bind(memory as i64)
        .bind((20 * GIB) as i64)
        .bind(format!("{name}\n{id}\n{tenant_email}\n{image}"))
        .bind(now)
        .bind(now)
        .execute(&mut tx)
        .await?;
    }
    let online_until = now + 86_400_000;
    for h in &hosts {
        plinth_coordinator::db::query(
            "UPDATE hosts SET allocated_cores = $1, allocated_memory_bytes = $2, \
                last_seen = $3, offline_after = $4, presence = $5 WHERE id = $6",
        )
        .bind(i64::from(h.used_cores))
        .bind(h.used_memory as i64)
        .bind(h.online.then_some(now))
        .bind(h.online.then_some(online_until))
        .bind(if h.online { "online" } else { "offline" })
        .bind(&h.id)
        .execute(&mut tx)
        .await?;
    }
    // The bulk insert went around the store: the tenant's usage counters follow it.
    plinth_coordinator::db::query(
        "UPDATE tenant_quotas SET \
            used_cores = (SELECT COALESCE(SUM(vcpus), 0) FROM instances i \
                          WHERE i.tenant_id = tenant_quotas.tenant_id), \
            used_memory_bytes = (SELECT COALESCE(SUM(memory_bytes), 0) FROM instances i \
                                 WHERE i.tenant_id = tenant_quotas.tenant_id), \
            used_instances = (SELECT COUNT(*) FROM instances i \
                              WHERE i.tenant_id = tenant_quotas.tenant_id)",
    )
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/console");
    ensure!(
        console.join("node_modules/playwright-core").is_dir(),
        "{} lacks the console's test packages: run scripts/install-deps.sh (npm ci)",
        console.display()
    );
    let mut region = Region::start().await?;
    let tenant = plinth_e2e::instances::tenant(&region, "bench@example.com").await?;
    region.stop();

    let started = Instant::now();
    let store = Store::open(&DataDir::new(region.data_dir()).database())
        .await
        .context("opening the store")?;
    seed(&store, &tenant.id, "bench@example.com").await?;
    store.pool().close().await;
    let seeded = started.elapsed();
    region.restart().await?;
    let (status, page) = region.get("/v1/hosts?limit=1").await?;
    ensure!(status == 200, "GET /v1/hosts: {status} {page}");
    ensure!(
        page["total"] == HOSTS,
        "the coordinator lists {} hosts",
        page["total"]
    );
    let (_, page) = region.get("/v1/instances?limit=1").await?;
    ensure!(
        page["total"] == INSTANCES,
        "the coordinator lists {} instances",
        page["total"]
    );

    println!(
        "console bench: coordinator {}",
        plinth_e2e::bin("plinth-coordinator").display()
    );
    println!(
        "seeded {HOSTS} hosts in {} clusters and {INSTANCES} instances in {:.1} s (through the store)",
        CLUSTERS.len(),
        seeded.as_secs_f64()
    );

    let pem = region.dir.path().join("region-ca.pem");
    std::fs::write(&pem, &region.ca_pem)?;
    let status = std::process::Command::new("node")
        .arg("tests/bench_hosts.mjs")
        .current_dir(&console)
        .env("CONSOLE_URL", &region.url)
        .env("CONSOLE_ADMIN_TOKEN", &region.admin_token)
        .env("NODE_EXTRA_CA_CERTS", &pem)
        .env("BENCH_HOSTS", HOSTS.to_string())
        .env("BENCH_INSTANCES", INSTANCES.to_string())
        .status()
        .context("running node tests/bench_hosts.mjs")?;
    region.stop();
    ensure!(status.success(), "the browser part failed ({status})");
    Ok(())
}
