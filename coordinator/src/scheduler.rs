//! Placement (SPEC §3): filters — cluster, host state `available`, agent online, free cores and
//! memory under the overcommit ratios, a free vGPU/GPU of the requested type — then a pick
//! among the suitable: at random (the seed's rule), or `spread` (most free room) or `pack`
//! (least free room that fits). No I/O: the store reads candidates and takes the claim
//! atomically; this module only decides.

use plinth_common::host::HostState;
use rand::Rng;
use rand::seq::SliceRandom;

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub host_id: String,
    pub cluster_id: String,
    pub state: HostState,
    pub agent_online: bool,
    pub total_cores: u32,
    pub allocated_cores: u32,
    pub total_memory_bytes: u64,
    pub allocated_memory_bytes: u64,
    /// Free devices by type (vGPU type or GPU model) and how many.
    pub free_gpus: Vec<(String, u32)>,
    /// The host's NICs (facts): it serves the external segments on these.
    pub nics: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub cores: u32,
    pub memory_bytes: u64,
    pub cluster: Option<String>,
    pub gpu_type: Option<String>,
    /// Hosts that must not be chosen (a drain's source, say).
    pub exclude: Vec<String>,
    /// NICs the host must have: those of the segments of the instance's EIPs.
    pub nics: Vec<String>,
}

/// How far allocations may exceed the hardware (1.0 = not at all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overcommit {
    pub cpu: f64,
    pub memory: f64,
}

impl Default for Overcommit {
    fn default() -> Self {
        Overcommit {
            cpu: 4.0,
            memory: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Uniformly among the suitable hosts.
    #[default]
    Random,
    /// The host with the most free room (fraction of cores and memory) first.
    Spread,
    /// The host with the least free room that still fits first.
    Pack,
}

impl Policy {
    pub fn parse(text: &str) -> Option<Policy> {
        match text {
            "random" => Some(Policy::Random),
            "spread" => Some(Policy::Spread),
            "pack" => Some(Policy::Pack),
            _ => None,
        }
    }
}

/// Why a host was not suitable; a drain plan and a failed create show these.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Excluded,
    OtherCluster {
        cluster: String,
    },
    NotAvailable {
        state: HostState,
    },
    AgentOffline,
    Cores {
        free: u64,
        needed: u32,
    },
    Memory {
        free: u64,
        needed: u64,
    },
    NoGpu {
        gpu_type: String,
    },
    /// The host has no such NIC, so it does not reach that external segment.
    NoNic {
        nic: String,
    },
}

impl Rejection {
    /// The reason as a metric label (`crate::metrics::REFUSAL_REASONS`).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Excluded => "excluded",
            Rejection::OtherCluster { .. } => "other_cluster",
            Rejection::NotAvailable { .. } => "not_available",
            Rejection::AgentOffline => "agent_offline",
            Rejection::Cores { .. } => "cores",
            Rejection::Memory { .. } => "memory",
            Rejection::NoGpu { .. } => "no_gpu",
            Rejection::NoNic { .. } => "no_nic",
        }
    }
}

/// The reason that ruled out the most hosts ("no_hosts" when there were none), for counting a
/// refused placement once.
pub fn main_reason(rejected: &[(&str, Rejection)]) -> &'static str {
    let counts = tally(rejected, Rejection::reason);
    // Ties go to the reason seen first (max_by_key keeps the last of equals: reverse).
    counts
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map_or("no_hosts", |(k, _)| k)
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Excluded => f.write_str("excluded"),
            Rejection::OtherCluster { cluster } => write!(f, "in cluster {cluster}"),
            Rejection::NotAvailable { state } => write!(f, "host is {state}"),
            Rejection::AgentOffline => f.write_str("agent offline"),
            Rejection::Cores { free, needed } => write!(f, "{free} cores free, {needed} needed"),
            Rejection::Memory { free, needed } => {
                write!(f, "{free} bytes of memory free, {needed} needed")
            }
            Rejection::NoGpu { gpu_type } => write!(f, "no free {gpu_type}"),
            Rejection::NoNic { nic } => write!(f, "no NIC {nic} for the instance's EIP segment"),
        }
    }
}

/// `floor(total * ratio)` as a count: `as` truncates toward zero, which for a product at or
/// above zero is the floor, and gives 0 below zero and for NaN (no call to libm's `floor` on
/// the placement hot path).
fn capacity(total: f64, ratio: f64) -> u64 {
    (total * ratio) as u64
}

/// Free cores and free memory under the overcommit ratios.
fn free(h: &Candidate, oc: Overcommit) -> (u64, u64) {
    (
        capacity(f64::from(h.total_cores), oc.cpu).saturating_sub(u64::from(h.allocated_cores)),
        capacity(h.total_memory_bytes as f64, oc.memory).saturating_sub(h.allocated_memory_bytes),
    )
}

/// Why `host` cannot take `req`, if it cannot. Checks run in a fixed order, so the reason
/// given is the first that applies.
pub fn check(host: &Candidate, req: &Request, oc: Overcommit) -> Option<Rejection> {
    if req.exclude.contains(&host.host_id) {
        return Some(Rejection::Excluded);
    }
    if let Some(cluster) = &req.cluster
        && &host.cluster_id != cluster
    {
        return Some(Rejection::OtherCluster {
            cluster: host.cluster_id.clone(),
        });
    }
    if !host.state.accepts_instances() {
        return Some(Rejection::NotAvailable { state: host.state });
    }
    if !host.agent_online {
        return Some(Rejection::AgentOffline);
    }
    let (cores, memory) = free(host, oc);
    if cores < u64::from(req.cores) {
        return Some(Rejection::Cores {
            free: cores,
            needed: req.cores,
        });
    }
    if memory < req.memory_bytes {
        return Some(Rejection::Memory {
            free: memory,
            needed: req.memory_bytes,
        });
    }
    if let Some(gpu) = &req.gpu_type
        && !host.free_gpus.iter().any(|(t, n)| t == gpu && *n > 0)
    {
        return Some(Rejection::NoGpu {
            gpu_type: gpu.clone(),
        });
    }
    if let Some(nic) = req
        .nics
        .iter()
        .find(|n| !plinth_common::api::has_nic(&host.nics, n))
    {
        return Some(Rejection::NoNic { nic: nic.clone() });
    }
    None
}

/// The suitable hosts and, for the others, why not.
pub fn filter<'a>(
    hosts: &'a [Candidate],
    req: &Request,
    oc: Overcommit,
) -> (Vec<&'a Candidate>, Vec<(&'a str, Rejection)>) {
    let mut suitable = Vec::new();
    let mut rejected = Vec::new();
    for host in hosts {
        match check(host, req, oc) {
            None => suitable.push(host),
            Some(why) => rejected.push((host.host_id.as_str(), why)),
        }
    }
    (suitable, rejected)
}

/// How many rejections fall under each `kind`, in the order kinds are first seen.
fn tally(
    rejected: &[(&str, Rejection)],
    kind: impl Fn(&Rejection) -> &'static str,
) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (_, why) in rejected {
        let k = kind(why);
        match counts.iter_mut().find(|(c, _)| *c == k) {
            Some((_, n)) => *n += 1,
            None => counts.push((k, 1)),
        }
    }
    counts
}

/// Why no host was suitable, in a sentence: how many hosts each reason ruled out.
pub fn explain(total: usize, rejected: &[(&str, Rejection)]) -> String {
    if total == 0 {
        return "no host is enrolled".into();
    }
    let counts = tally(rejected, |why| match why {
        Rejection::Excluded => "already tried",
        Rejection::OtherCluster { .. } => "in another cluster",
        Rejection::NotAvailable { .. } => "not available (locked or in maintenance)",
        Rejection::AgentOffline => "agent offline",
        Rejection::Cores { .. } => "not enough free cores",
        Rejection::Memory { .. } => "not enough free memory",
        Rejection::NoGpu { .. } => "no free GPU of that type",
        Rejection::NoNic { .. } => "without the NIC of the EIPs' segment",
    });
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("no suitable host among {total}: {}", parts.join(", "))
}

/// Free room as a fraction: the smaller of free cores and free memory over capacity.
pub fn room(h: &Candidate, oc: Overcommit) -> f64 {
    let cores_cap = (f64::from(h.total_cores) * oc.cpu).max(1.0);
    let mem_cap = (h.total_memory_bytes as f64 * oc.memory).max(1.0);
    let (cores, memory) = free(h, oc);
    (cores as f64 / cores_cap).min(memory as f64 / mem_cap)
}

/// Chooses among suitable hosts; ties are broken at random so equal hosts share the load.
pub fn pick<'a>(
    suitable: &[&'a Candidate],
    policy: Policy,
    oc: Overcommit,
    rng: &mut impl Rng,
) -> Option<&'a Candidate> {
    let mut hosts: Vec<&Candidate> = suitable.to_vec();
    hosts.shuffle(rng);
    match policy {
        Policy::Random => hosts.first().copied(),
        Policy::Spread => hosts
            .into_iter()
            .max_by(|a, b| room(a, oc).total_cmp(&room(b, oc))),
        Policy::Pack => hosts
            .into_iter()
            .min_by(|a, b| room(a, oc).total_cmp(&room(b, oc))),
    }
}

/// `check(host, req, oc).is_none()`, without building the rejection (no allocation).
#[inline]
fn fits(host: &Candidate, req: &Request, oc: Overcommit) -> bool {
    if !host.state.accepts_instances()
        || !host.agent_online
        || req.cluster.as_ref().is_some_and(|c| &host.cluster_id != c)
    {
        return false;
    }
    let (cores, memory) = free(host, oc);
    cores >= u64::from(req.cores)
        && memory >= req.memory_bytes
        && !req.exclude.contains(&host.host_id)
        && req
            .gpu_type
            .as_ref()
            .is_none_or(|gpu| host.free_gpus.iter().any(|(t, n)| t == gpu && *n > 0))
}

/// Random hosts `choose` tries before it counts the suitable ones.
const RANDOM_PROBES: usize = 32;

/// One placement decision without collecting rejections: the choice
/// `pick(&filter(hosts, req, oc).0, policy, oc, rng)` makes, with the same distribution (random:
/// uniformly among the suitable; spread / pack: a suitable host with the most / least room, ties
/// broken uniformly), in one pass over `hosts` at most and without building a rejection per
/// host. Random first probes a few hosts at random and takes the first suitable one (uniform
/// among the suitable, as a draw from all of them is); only when none was suitable does it
/// collect the suitable hosts and draw one of them. `None` when no host is suitable: `filter` +
/// `explain` then say why.
pub fn choose<'a>(
    hosts: &'a [Candidate],
    req: &Request,
    policy: Policy,
    oc: Overcommit,
    rng: &mut impl Rng,
) -> Option<&'a Candidate> {
    match policy {
        Policy::Random => {
            if hosts.is_empty() {
                return None;
            }
            for _ in 0..RANDOM_PROBES {
                let host = &hosts[rng.gen_range(0..hosts.len())];
                if fits(host, req, oc) {
                    return Some(host);
                }
            }
            let suitable: Vec<&Candidate> = hosts.iter().filter(|h| fits(h, req, oc)).collect();
            if suitable.is_empty() {
                return None;
            }
            Some(suitable[rng.gen_range(0..suitable.len())])
        }
        Policy::Spread | Policy::Pack => {
            let mut best: Option<(&Candidate, f64)> = None;
            let mut ties = 0u32;
            for host in hosts.iter().filter(|h| fits(h, req, oc)) {
                let r = room(host, oc);
                let order = match best {
                    None => std::cmp::Ordering::Greater,
                    Some((_, b)) if policy == Policy::Spread => r.total_cmp(&b),
                    Some((_, b)) => b.total_cmp(&r),
                };
                match order {
                    std::cmp::Ordering::Greater => {
                        best = Some((host, r));
                        ties = 1;
                    }
                    std::cmp::Ordering::Equal => {
                        // Reservoir sampling among the equally good: each kept with 1/ties.
                        ties += 1;
                        if rng.gen_range(0..ties) == 0 {
                            best = Some((host, r));
                        }
                    }
                    std::cmp::Ordering::Less => {}
                }
            }
            best.map(|(h, _)| h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_counted_under_the_reason_that_ruled_out_most() {
        let cores = Rejection::Cores { free: 0, needed: 2 };
        for (case, rejected, want) in [
            ("no hosts", vec![], "no_hosts"),
            (
                "most",
                vec![
                    ("a", Rejection::AgentOffline),
                    ("b", cores.clone()),
                    ("c", cores.clone()),
                ],
                "cores",
            ),
            (
                "tie: the first seen",
                vec![("a", Rejection::AgentOffline), ("b", cores.clone())],
                "agent_offline",
            ),
        ] {
            assert_eq!(main_reason(&rejected), want, "{case}");
        }
    }
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const GIB: u64 = 1 << 30;

    fn host(id: &str, cores: u32, used_cores: u32, mem_gib: u64, used_gib: u64) -> Candidate {
        Candidate {
            host_id: id.into(),
            cluster_id: "az1".into(),
            state: HostState::Available,
            agent_online: true,
            total_cores: cores,
            allocated_cores: used_cores,
            total_memory_bytes: mem_gib * GIB,
            allocated_memory_bytes: used_gib * GIB,
            free_gpus: vec![],
            nics: vec![],
        }
    }

    fn req(cores: u32, mem_gib: u64) -> Request {
        Request {
            cores,
            memory_bytes: mem_gib * GIB,
            ..Request::default()
        }
    }

    #[test]
    fn each_filter_says_why() {
        let oc = Overcommit {
            cpu: 2.0,
            memory: 1.0,
        };
        let mut locked = host("locked", 8, 0, 64, 0);
        locked.state = HostState::Locked;
        let mut offline = host("offline", 8, 0, 64, 0);
        offline.agent_online = false;
        let mut elsewhere = host("elsewhere", 8, 0, 64, 0);
        elsewhere.cluster_id = "az2".into();
        let cases = [
            ("fits", host("h", 8, 0, 64, 0), req(4, 8), None),
            (
                "overcommitted cores fit",
                host("h", 8, 12, 64, 0),
                req(4, 8),
                None,
            ),
            (
                "cores exhausted",
                host("h", 8, 14, 64, 0),
                req(4, 8),
                Some(Rejection::Cores { free: 2, needed: 4 }),
            ),
            (
                "memory exhausted",
                host("h", 8, 0, 64, 60),
                req(1, 8),
                Some(Rejection::Memory {
                    free: 4 * GIB,
                    needed: 8 * GIB,
                }),
            ),
            (
                "locked",
                locked,
                req(1, 1),
                Some(Rejection::NotAvailable {
                    state: HostState::Locked,
                }),
            ),
            ("offline", offline, req(1, 1), Some(Rejection::AgentOffline)),
            (
                "other cluster",
                elsewhere,
                Request {
                    cluster: Some("az1".into()),
                    ..req(1, 1)
                },
                Some(Rejection::OtherCluster {
                    cluster: "az2".into(),
                }),
            ),
            (
                "excluded",
                host("h", 8, 0, 64, 0),
                Request {
                    exclude: vec!["h".into()],
                    ..req(1, 1)
                },
                Some(Rejection::Excluded),
            ),
            (
                "no gpu",
                host("h", 8, 0, 64, 0),
                Request {
                    gpu_type: Some("nvidia-35".into()),
                    ..req(1, 1)
                },
                Some(Rejection::NoGpu {
                    gpu_type: "nvidia-35".into(),
                }),
            ),
        ];
        for (label, h, r, want) in cases {
            assert_eq!(check(&h, &r, oc), want, "{label}");
        }
        let mut gpu = host("g", 8, 0, 64, 0);
        gpu.free_gpus = vec![("nvidia-35".into(), 1)];
        assert_eq!(
            check(
                &gpu,
                &Request {
                    gpu_type: Some("nvidia-35".into()),
                    ..req(1, 1)
                },
                oc
            ),
            None
        );
    }

    #[test]
    fn policies() {
        let oc = Overcommit {
            cpu: 1.0,
            memory: 1.0,
        };
        let hosts = [
            host("empty", 16, 0, 64, 0),
            host("half", 16, 8, 64, 32),
            host("full-ish", 16, 14, 64, 56),
        ];
        let (suitable, rejected) = filter(&hosts, &req(2, 4), oc);
        assert_eq!(suitable.len(), 3);
        assert!(rejected.is_empty());
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            pick(&suitable, Policy::Spread, oc, &mut rng).map(|h| h.host_id.as_str()),
            Some("empty")
        );
        assert_eq!(
            pick(&suitable, Policy::Pack, oc, &mut rng).map(|h| h.host_id.as_str()),
            Some("full-ish")
        );
        // Random: every suitable host gets chosen sometimes.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            if let Some(h) = pick(&suitable, Policy::Random, oc, &mut rng) {
                seen.insert(h.host_id.clone());
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(pick(&[], Policy::Random, oc, &mut rng), None);
    }

    /// A mixed fleet: two clusters, some hosts locked or offline, some full, a few with GPUs.
    fn mixed_fleet(rng: &mut StdRng, n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| {
                let cores = [8, 16, 32][rng.gen_range(0..3)];
                let mem = [32, 64, 128][rng.gen_range(0..3)];
                let mut h = host(
                    &format!("h{i}"),
                    cores,
                    rng.gen_range(0..=cores * 2),
                    mem,
                    rng.gen_range(0..=mem),
                );
                if rng.gen_bool(0.3) {
                    h.cluster_id = "az2".into();
                }
                match rng.gen_range(0..20) {
                    0 => h.state = HostState::Locked,
                    1 => h.agent_online = false,
                    2 => h.free_gpus = vec![("nvidia-35".into(), rng.gen_range(0..2))],
                    _ => {}
                }
                h
            })
            .collect()
    }

    fn random_req(rng: &mut StdRng, n: usize) -> Request {
        Request {
            cores: rng.gen_range(1..=16),
            memory_bytes: rng.gen_range(1..=64) * GIB,
            cluster: rng
                .gen_bool(0.3)
                .then(|| ["az1", "az2"][rng.gen_range(0..2)].into()),
            gpu_type: rng.gen_bool(0.1).then(|| "nvidia-35".into()),
            exclude: (0..rng.gen_range(0..3))
                .map(|_| format!("h{}", rng.gen_range(0..n)))
                .collect(),
            nics: Vec::new(),
        }
    }

    #[test]
    fn choose_agrees_with_filter_and_pick() {
        let oc = Overcommit {
            cpu: 2.0,
            memory: 1.0,
        };
        let mut rng = StdRng::seed_from_u64(7);
        for size in [0, 1, 5, 50, 400] {
            let hosts = mixed_fleet(&mut rng, size);
            for _ in 0..200 {
                let r = random_req(&mut rng, size.max(1));
                for h in &hosts {
                    assert_eq!(fits(h, &r, oc), check(h, &r, oc).is_none(), "{h:?} {r:?}");
                }
                let (suitable, _) = filter(&hosts, &r, oc);
                let rooms: Vec<f64> = suitable.iter().map(|h| room(h, oc)).collect();
                for policy in [Policy::Random, Policy::Spread, Policy::Pack] {
                    let got = choose(&hosts, &r, policy, oc, &mut rng);
                    let want = pick(&suitable, policy, oc, &mut rng);
                    assert_eq!(got.is_some(), want.is_some(), "{policy:?} {r:?}");
                    let Some(got) = got else { continue };
                    assert!(suitable.iter().any(|h| std::ptr::eq(*h, got)), "{policy:?}");
                    let best = match policy {
                        Policy::Random => continue,
                        Policy::Spread => rooms.iter().copied().fold(f64::MIN, f64::max),
                        Policy::Pack => rooms.iter().copied().fold(f64::MAX, f64::min),
                    };
                    assert_eq!(room(got, oc), best, "{policy:?}");
                }
            }
        }
    }

    #[test]
    fn capacity_is_the_floor() {
        let ratios = [
            0.0,
            -1.0,
            -0.3,
            0.3,
            1.0,
            1.5,
            2.7,
            4.0,
            1e30,
            f64::NAN,
            f64::INFINITY,
        ];
        let sizes = [0, 1, 7, 96, u32::MAX as u64, 1 << 40, 3 << 52, u64::MAX];
        for &total in &sizes {
            for &ratio in &ratios {
                let t = total as f64;
                assert_eq!(
                    capacity(t, ratio),
                    (t * ratio).floor() as u64,
                    "{total} x {ratio}"
                );
            }
        }
    }

    #[test]
    fn choose_random_is_uniform_and_breaks_ties_at_random() {
        let oc = Overcommit::default();
        let mut rng = StdRng::seed_from_u64(3);
        // Few suitable hosts (probes mostly miss: the collecting pass) and many (probes hit).
        for (n, every) in [(400, 100), (40, 2)] {
            let hosts: Vec<Candidate> = (0..n)
                .map(|i| {
                    host(
                        &format!("h{i}"),
                        8,
                        if i % every == 0 { 0 } else { 32 },
                        64,
                        0,
                    )
                })
                .collect();
            let suitable = n / every;
            let draws = 2_000 * suitable;
            let mut counts = std::collections::HashMap::new();
            for _ in 0..draws {
                let h = choose(&hosts, &req(1, 1), Policy::Random, oc, &mut rng)
                    .map(|h| h.host_id.clone());
                *counts.entry(h.expect("a host fits")).or_insert(0usize) += 1;
            }
            assert_eq!(counts.len(), suitable, "only suitable hosts, each of them");
            for (id, c) in counts {
                assert!(
                    (1_700..=2_300).contains(&c),
                    "{id} chosen {c} times of {draws}"
                );
            }
        }
        // Equal hosts share the load under spread and pack too.
        let hosts = [
            host("a", 8, 4, 64, 32),
            host("b", 8, 4, 64, 32),
            host("c", 8, 4, 64, 32),
            host("fuller", 8, 6, 64, 48),
        ];
        for policy in [Policy::Spread, Policy::Pack] {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                if let Some(h) = choose(&hosts, &req(1, 1), policy, oc, &mut rng) {
                    seen.insert(h.host_id.clone());
                }
            }
            let want: &[&str] = match policy {
                Policy::Spread => &["a", "b", "c"],
                _ => &["fuller"],
            };
            assert_eq!(
                seen,
                want.iter().map(|s| s.to_string()).collect(),
                "{policy:?}"
            );
        }
        assert_eq!(choose(&[], &req(1, 1), Policy::Random, oc, &mut rng), None);
        assert_eq!(
            choose(&hosts, &req(64, 1), Policy::Pack, oc, &mut rng),
            None
        );
    }
}
