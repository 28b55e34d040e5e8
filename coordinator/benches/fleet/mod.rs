//! The scheduler benchmark's fleet and claim workload, shared by `scheduler` (SQLite) and
//! `ha` (PostgreSQL through several coordinators): 10,000 hosts of varied sizes in several
//! clusters holding 100,000 instances, written into a store; callers that claim as the API's
//! create does; and the checks that the claims add up afterwards.

use crate::common::{Stats, pick_weighted, stats};
use anyhow::{Context, bail, ensure};
use plinth_common::api::Quota;
use plinth_common::host::HostState;
use plinth_common::ids::new_id;
use plinth_common::instance::InstanceKind;
use plinth_common::timefmt::now_ms;
use plinth_coordinator::db::Store;
use plinth_coordinator::hosts::store::NewHost;
use plinth_coordinator::instances::store::{ClaimRefused, NewInstanceRow};
use plinth_coordinator::jobs::operations::NewOperation;
use plinth_coordinator::scheduler::{self, Candidate, Overcommit, Policy, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
pub const HOSTS: usize = 10_000;
pub const INSTANCES: usize = 100_000;
/// Concurrent callers and the claims they make together, per run; the runs follow one
/// another on the same store (so it grows by the claims of the runs before).
pub const CLAIM_RUNS: [(usize, usize); 3] = [(1, 2_000), (16, 20_000), (64, 20_000)];
/// A run stops starting claims after this long (so a slow machine still ends in ~2 minutes);
/// claims/s is then over the claims it made.
pub const CLAIM_RUN_CAP: Duration = Duration::from_secs(10);
/// Hosts a claim tries before giving up (as the API's create does).
pub const CLAIM_ATTEMPTS: usize = 8;
pub const TENANTS: usize = 200;
pub const GIB: u64 = 1 << 30;

/// Cluster and relative share of hosts.
pub const CLUSTERS: [(&str, u32); 8] = [
    ("prod-sh-a", 24),
    ("prod-sh-b", 20),
    ("prod-bj-a", 16),
    ("prod-gz-a", 12),
    ("staging", 8),
    ("hpc-east", 10),
    ("gpu-train", 6),
    ("dev-lab", 4),
];
/// Core counts and memory sizes hosts come in (all combinations occur).
pub const HOST_CORES: [u32; 6] = [32, 48, 64, 80, 96, 128];
pub const HOST_MEMORY_GIB: [u64; 6] = [128, 192, 256, 384, 512, 1024];
/// Out of 1,000 hosts: how many are locked, in maintenance, or have their agent offline.
pub const LOCKED_PER_MILLE: u32 = 10;
pub const MAINTENANCE_PER_MILLE: u32 = 5;
pub const OFFLINE_PER_MILLE: u32 = 10;
/// A share of hosts gets half of all instances, so some are full and others nearly empty.
pub const BUSY_HOSTS_PERCENT: usize = 15;
/// Requests: this share is constrained to one cluster; this share is large (16 vCPU, 64-128 GiB).
pub const CLUSTER_REQUEST_PERCENT: u32 = 30;
pub const LARGE_REQUEST_PERCENT: u32 = 10;

pub struct FleetHost {
    pub id: String,
    pub ip: String,
    pub cluster: &'static str,
    pub cores: u32,
    pub memory: u64,
    pub state: HostState,
    pub online: bool,
    pub allocated_cores: u32,
    pub allocated_memory: u64,
}

pub struct Placed {
    pub host: usize,
    pub tenant: usize,
    pub vcpus: u32,
    pub memory: u64,
}

pub struct Fleet {
    pub hosts: Vec<FleetHost>,
    pub instances: Vec<Placed>,
}

pub fn capacity(total: f64, ratio: f64) -> u64 {
    (total * ratio).floor() as u64
}

pub fn fleet(oc: Overcommit) -> anyhow::Result<Fleet> {
    let mut rng = StdRng::seed_from_u64(0x7363_6865_6475_6c65);
    let mut per_cluster = [0usize; CLUSTERS.len()];
    let mut hosts = Vec::with_capacity(HOSTS);
    for i in 0..HOSTS {
        let c = pick_weighted(&mut rng, CLUSTERS.iter().map(|c| c.1));
        let n = per_cluster[c];
        per_cluster[c] += 1;
        let roll = rng.gen_range(0..1_000);
        let state = if roll < LOCKED_PER_MILLE {
            HostState::Locked
        } else if roll < LOCKED_PER_MILLE + MAINTENANCE_PER_MILLE {
            HostState::Maintenance
        } else {
            HostState::Available
        };
        hosts.push(FleetHost {
            id: format!("host-{i:012x}"),
            ip: format!("10.{}.{}.{}", c + 1, n / 250, n % 250 + 1),
            cluster: CLUSTERS[c].0,
            cores: HOST_CORES[rng.gen_range(0..HOST_CORES.len())],
            memory: HOST_MEMORY_GIB[rng.gen_range(0..HOST_MEMORY_GIB.len())] * GIB,
            state,
            online: rng.gen_range(0..1_000) >= OFFLINE_PER_MILLE,
            allocated_cores: 0,
            allocated_memory: 0,
        });
    }
    // Instances were placed while every host was available; some hosts were locked since.
    let busy = HOSTS * BUSY_HOSTS_PERCENT / 100;
    let mut instances = Vec::with_capacity(INSTANCES);
    while instances.len() < INSTANCES {
        let vcpus = rng.gen_range(1..=8u32);
        let memory = rng.gen_range(1..=32u64) * GIB;
        let mut placed = false;
        for _ in 0..1_000 {
            let h = if rng.gen_bool(0.5) {
                rng.gen_range(0..busy)
            } else {
                rng.gen_range(0..HOSTS)
            };
            let host = &mut hosts[h];
            if u64::from(host.allocated_cores + vcpus) <= capacity(f64::from(host.cores), oc.cpu)
                && host.allocated_memory + memory <= capacity(host.memory as f64, oc.memory)
            {
                host.allocated_cores += vcpus;
                host.allocated_memory += memory;
                instances.push(Placed {
                    host: h,
                    tenant: rng.gen_range(0..TENANTS),
                    vcpus,
                    memory,
                });
                placed = true;
                break;
            }
        }
        ensure!(placed, "the fleet cannot hold {INSTANCES} instances");
    }
    Ok(Fleet { hosts, instances })
}

pub fn candidates(fleet: &Fleet) -> Vec<Candidate> {
    fleet
        .hosts
        .iter()
        .map(|h| Candidate {
            host_id: h.id.clone(),
            cluster_id: h.cluster.to_string(),
            state: h.state,
            agent_online: h.online,
            total_cores: h.cores,
            allocated_cores: h.allocated_cores,
            total_memory_bytes: h.memory,
            allocated_memory_bytes: h.allocated_memory,
            free_gpus: Vec::new(),
            nics: Vec::new(),
        })
        .collect()
}

pub fn random_request(rng: &mut StdRng) -> Request {
    let (cores, memory_bytes) = if rng.gen_range(0..100) < LARGE_REQUEST_PERCENT {
        (16, rng.gen_range(64..=128u64) * GIB)
    } else {
        (rng.gen_range(1..=8u32), rng.gen_range(1..=32u64) * GIB)
    };
    let cluster = (rng.gen_range(0..100) < CLUSTER_REQUEST_PERCENT).then(|| {
        CLUSTERS[pick_weighted(rng, CLUSTERS.iter().map(|c| c.1))]
            .0
            .to_string()
    });
    Request {
        cores,
        memory_bytes,
        cluster,
        gpu_type: None,
        exclude: Vec::new(),
        nics: Vec::new(),
    }
}

/// The one-pass fast path.
pub fn choose<'a>(
    hosts: &'a [Candidate],
    req: &Request,
    policy: Policy,
    oc: Overcommit,
    rng: &mut StdRng,
) -> Option<&'a Candidate> {
    scheduler::choose(hosts, req, policy, oc, rng)
}

pub type Decide =
    for<'a> fn(&'a [Candidate], &Request, Policy, Overcommit, &mut StdRng) -> Option<&'a Candidate>;

/// Writes the fleet's clusters and hosts (available, their facts, no instances) through the
/// store API.
pub async fn seed_hosts(store: &Store, fleet: &Fleet) -> anyhow::Result<()> {
    for (id, _) in CLUSTERS {
        ensure!(
            store.create_cluster(id, id).await?,
            "cluster {id} already exists"
        );
    }
    let now = now_ms();
    for h in &fleet.hosts {
        store
            .insert_host_with_facts(
                &NewHost {
                    id: &h.id,
                    ip: &h.ip,
                    hostname: &h.id,
                    cluster_id: h.cluster,
                    cert_expires_at: now + 30 * 86_400_000,
                    now,
                },
                "AMD EPYC 7763 64-Core Processor",
                h.cores,
                h.memory,
            )
            .await
            .with_context(|| format!("inserting host {}", h.id))?;
    }
    Ok(())
}

/// Writes the fleet into `store`: clusters, hosts, tenants (with quotas) and an image through
/// the store API; then, in one transaction, the hosts' state and agent presence, the
/// instances, and the hosts' allocations. Returns the tenants (id, email) and the image id.
pub async fn seed_store(
    store: &Store,
    fleet: &Fleet,
) -> anyhow::Result<(Vec<(String, String)>, String)> {
    seed_hosts(store, fleet).await?;
    let now = now_ms();
    let mut tenants = Vec::with_capacity(TENANTS);
    for i in 0..TENANTS {
        let email = format!("tenant{i}@example.com");
        let t = store
            .create_tenant(&new_id("tenant"), &email, &format!("Tenant {i}"))
            .await?
            .with_context(|| format!("tenant {email} already exists"))?;
        // Generous limits: the claim's quota check runs, and passes.
        store
            .set_quota(
                &t.id,
                &Quota {
                    cores: Some(1_000_000),
                    memory_bytes: Some(1 << 50),
                    instances: Some(100_000),
                },
            )
            .await?;
        tenants.push((t.id, t.email));
    }
    let image = new_id("img");
    plinth_coordinator::db::query(
        "INSERT INTO images (id, name, kind, image_type, visibility, note, virtualization, \
            status, created_at, updated_at) \
         VALUES ($1, 'ubuntu-24.04', 'base', 'linux', 'public', '', 'kvm', 'available', $2, $3)",
    )
    .bind(&image)
    .bind(now)
    .bind(now)
    .execute(store.pool())
    .await
    .context("inserting the image")?;

    let mut tx = store.write().await?;
    let online_until = now + 86_400_000;
    for h in &fleet.hosts {
        plinth_coordinator::db::query(
            "UPDATE hosts SET state = $1, allocated_cores = $2, allocated_memory_bytes = $3, \
                last_seen = $4, offline_after = $5, presence = $6 WHERE id = $7",
        )
        .bind(h.state.as_str())
        .bind(i64::from(h.allocated_cores))
        .bind(h.allocated_memory as i64)
        .bind(h.online.then_some(now))
        .bind(h.online.then_some(online_until))
        .bind(if h.online { "online" } else { "offline" })
        .bind(&h.id)
        .execute(&mut tx)
        .await?;
    }
    for (i, p) in fleet.instances.iter().enumerate() {
        let id = format!("inst-{i:012x}");
        let name = format!("vm-{i}");
        let (tenant, email) = &tenants[p.tenant];
        plinth_coordinator::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, host_id, image_id, vcpus, \
                memory_bytes, disk_bytes, state, search_text, created_at, updated_at) \
             VALUES ($1, $2, 'vm', $3, $4, $5, $6, $7, $8, 'running', $9, $10, $11)",
        )
        .bind(&id)
        .bind(&name)
        .bind(tenant)
        .bind(&fleet.hosts[p.host].id)
        .bind(&image)
        .bind(i64::from(p.vcpus))
        .bind(p.memory as i64)
        .bind((20 * GIB) as i64)
        .bind(format!("{name}\n{id}\n{email}\n{image}"))
        .bind(now)
        .bind(now)
        .execute(&mut tx)
        .await?;
    }
    // The bulk insert went around the store: bring the tenants' usage counters up to it.
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
    Ok((tenants, image))
}

/// The store's hosts as placement sees them must be the fleet.
pub fn same_as_fleet(store_view: &[Candidate], fleet: &Fleet) -> anyhow::Result<()> {
    ensure!(
        store_view.len() == fleet.hosts.len(),
        "the store has {} hosts",
        store_view.len()
    );
    let mut by_id: std::collections::HashMap<&str, &FleetHost> =
        fleet.hosts.iter().map(|h| (h.id.as_str(), h)).collect();
    for c in store_view {
        let h = by_id
            .remove(c.host_id.as_str())
            .with_context(|| format!("unexpected host {}", c.host_id))?;
        ensure!(
            c.cluster_id == h.cluster
                && c.state == h.state
                && c.agent_online == h.online
                && c.total_cores == h.cores
                && c.allocated_cores == h.allocated_cores
                && c.total_memory_bytes == h.memory
                && c.allocated_memory_bytes == h.allocated_memory,
            "host {} as the store's index sees it differs from the fleet: {c:?}",
            c.host_id
        );
    }
    Ok(())
}

#[derive(Default)]
pub struct CallerResult {
    pub latencies: Vec<Duration>,
    pub refused: usize,
    pub gave_up: usize,
    /// Summed over attempts: deciding (over the store's index), `create_instance`.
    pub decide: Duration,
    pub claim: Duration,
}

/// What the callers of one run share.
pub struct Shared {
    pub store: Store,
    pub tenants: Vec<(String, String)>,
    pub image: String,
    /// Claims started so far; callers stop when it reaches `total`, or at `deadline`.
    pub next: AtomicUsize,
    pub total: usize,
    pub deadline: Instant,
    pub oc: Overcommit,
    pub decide: Decide,
}

/// One caller: claims until the shared counter reaches `total`.
pub async fn caller(index: usize, shared: Arc<Shared>) -> anyhow::Result<CallerResult> {
    let Shared {
        store,
        tenants,
        image,
        next,
        total,
        deadline,
        oc,
        decide,
    } = &*shared;
    let (total, oc) = (*total, *oc);
    let mut rng = StdRng::seed_from_u64(1_000 + index as u64);
    let mut out = CallerResult::default();
    while Instant::now() < *deadline && next.fetch_add(1, Ordering::Relaxed) < total {
        let t0 = Instant::now();
        let mut req = random_request(&mut rng);
        let (tenant, email) = &tenants[rng.gen_range(0..tenants.len())];
        let (id, op_id, now) = (new_id("inst"), new_id("op"), now_ms());
        let name = format!("bench-{id}");
        let row = NewInstanceRow {
            id: &id,
            name: &name,
            kind: InstanceKind::Vm,
            tenant_id: tenant,
            tenant_email: email,
            image_id: image,
            vcpus: req.cores,
            memory_bytes: req.memory_bytes,
            disk_bytes: 20 * GIB,
            gpu_type: None,
            admin_password_sealed: "",
            eips: &[],
        };
        let op = NewOperation {
            id: &op_id,
            kind: "instance_create",
            target_id: &id,
            owner_tenant_id: Some(tenant),
            now,
        };
        let mut placed = false;
        for _ in 0..CLAIM_ATTEMPTS {
            let t1 = Instant::now();
            let chosen = store.with_placement(now_ms(), |hosts| {
                decide(hosts, &req, Policy::Random, oc, &mut rng).map(|h| h.host_id.clone())
            });
            let t2 = Instant::now();
            out.decide += t2 - t1;
            let Some(host) = chosen else { break };
            let claimed = store.create_instance(&row, &host, oc, &op).await?;
            out.claim += t2.elapsed();
            match claimed {
                Ok(()) => {
                    placed = true;
                    break;
                }
                Err(ClaimRefused::HostFull) => {
                    out.refused += 1;
                    req.exclude.push(host);
                }
                Err(other) => bail!("caller {index}: claim on {host} refused: {other:?}"),
            }
        }
        if placed {
            out.latencies.push(t0.elapsed());
        } else {
            out.gave_up += 1;
        }
    }
    Ok(out)
}

pub struct ClaimRun {
    pub callers: usize,
    pub claims: usize,
    pub per_s: f64,
    pub stats: Stats,
    pub refused: usize,
    pub gave_up: usize,
    pub capped: bool,
    /// Mean per claim, ms: deciding, `create_instance` (incl. waits).
    pub decide_ms: f64,
    pub claim_ms: f64,
}

pub async fn claim_run(
    store: &Store,
    seeded: &(Vec<(String, String)>, String),
    callers: usize,
    total: usize,
    oc: Overcommit,
    decide: Decide,
) -> anyhow::Result<ClaimRun> {
    let shared = Arc::new(Shared {
        store: store.clone(),
        tenants: seeded.0.clone(),
        image: seeded.1.clone(),
        next: AtomicUsize::new(0),
        total,
        deadline: Instant::now() + CLAIM_RUN_CAP,
        oc,
        decide,
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|i| tokio::spawn(caller(i, shared.clone())))
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let (mut refused, mut gave_up) = (0, 0);
    let (mut decide, mut claim) = (Duration::ZERO, Duration::ZERO);
    let mut failure = None;
    for task in tasks {
        match task.await.context("caller task panicked") {
            Ok(Ok(r)) => {
                latencies.extend(r.latencies);
                refused += r.refused;
                gave_up += r.gave_up;
                decide += r.decide;
                claim += r.claim;
            }
            Ok(Err(err)) | Err(err) => failure = failure.or(Some(err)),
        }
    }
    let wall = started.elapsed();
    if let Some(err) = failure {
        return Err(err);
    }
    let claims = latencies.len();
    let mean_ms = |d: Duration| d.as_secs_f64() * 1e3 / claims.max(1) as f64;
    Ok(ClaimRun {
        callers,
        claims,
        per_s: claims as f64 / wall.as_secs_f64(),
        stats: stats(latencies),
        refused,
        gave_up,
        capped: claims + gave_up < total,
        decide_ms: mean_ms(decide),
        claim_ms: mean_ms(claim),
    })
}

/// Every host's allocation equals what its instances hold and fits its capacity; the store's
/// index agrees with the table. Returns (hosts, instances, hosts over capacity, mismatches).
pub async fn check_claims(
    store: &Store,
    oc: Overcommit,
) -> anyhow::Result<(usize, u64, usize, usize)> {
    let rows = plinth_coordinator::db::query(
        "SELECT h.id, h.total_cores, h.allocated_cores, h.total_memory_bytes, \
            h.allocated_memory_bytes, CAST(COALESCE(SUM(i.vcpus), 0) AS BIGINT) AS vcpus, \
            CAST(COALESCE(SUM(i.memory_bytes), 0) AS BIGINT) AS memory, COUNT(i.id) AS n \
         FROM hosts h LEFT JOIN instances i ON i.host_id = h.id GROUP BY h.id",
    )
    .fetch_all(store.pool())
    .await?;
    let index: std::collections::HashMap<String, Candidate> = store
        .placement_candidates(now_ms())
        .into_iter()
        .map(|c| (c.host_id.clone(), c))
        .collect();
    let (mut over, mut mismatched, mut instances) = (0, 0, 0u64);
    for r in &rows {
        let id: String = r.try_get("id")?;
        let total_cores = r.try_get::<i64, _>("total_cores")? as u64;
        let cores = r.try_get::<i64, _>("allocated_cores")? as u64;
        let total_memory = r.try_get::<i64, _>("total_memory_bytes")? as u64;
        let memory = r.try_get::<i64, _>("allocated_memory_bytes")? as u64;
        instances += r.try_get::<i64, _>("n")? as u64;
        if cores > capacity(total_cores as f64, oc.cpu)
            || memory > capacity(total_memory as f64, oc.memory)
        {
            over += 1;
        }
        let indexed = index.get(&id).is_some_and(|c| {
            u64::from(c.allocated_cores) == cores && c.allocated_memory_bytes == memory
        });
        if cores != r.try_get::<i64, _>("vcpus")? as u64
            || memory != r.try_get::<i64, _>("memory")? as u64
            || !indexed
        {
            mismatched += 1;
        }
    }
    Ok((rows.len(), instances, over, mismatched))
}

/// How many tenants' usage counters (what the claim's quota check reads) differ from the sums
/// over their instances.
pub async fn check_usage(store: &Store) -> anyhow::Result<i64> {
    let row = plinth_coordinator::db::query(
        "SELECT COUNT(*) AS n FROM tenant_quotas q LEFT JOIN \
            (SELECT tenant_id, SUM(vcpus) AS c, SUM(memory_bytes) AS m, COUNT(*) AS k \
             FROM instances GROUP BY tenant_id) u ON u.tenant_id = q.tenant_id \
         WHERE q.used_cores != COALESCE(u.c, 0) OR q.used_memory_bytes != COALESCE(u.m, 0) \
            OR q.used_instances != COALESCE(u.k, 0)",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(row.try_get("n")?)
}
