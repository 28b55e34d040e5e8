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
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub cores: u32,
    pub memory_bytes: u64,
    pub cluster: Option<String>,
    pub gpu_type: Option<String>,
    /// Hosts that must not be chosen (a drain's source, say).
    pub exclude: Vec<String>,
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

/// Why a host was not suitable; a drain plan and a failed create show these.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Excluded,
    OtherCluster { cluster: String },
    NotAvailable { state: HostState },
    AgentOffline,
    Cores { free: u64, needed: u32 },
    Memory { free: u64, needed: u64 },
    NoGpu { gpu_type: String },
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
        }
    }
}

fn free_cores(h: &Candidate, oc: Overcommit) -> u64 {
    let capacity = (f64::from(h.total_cores) * oc.cpu).floor() as u64;
    capacity.saturating_sub(u64::from(h.allocated_cores))
}

fn free_memory(h: &Candidate, oc: Overcommit) -> u64 {
    let capacity = (h.total_memory_bytes as f64 * oc.memory).floor() as u64;
    capacity.saturating_sub(h.allocated_memory_bytes)
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
    let cores = free_cores(host, oc);
    if cores < u64::from(req.cores) {
        return Some(Rejection::Cores {
            free: cores,
            needed: req.cores,
        });
    }
    let memory = free_memory(host, oc);
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

/// Free room as a fraction: the smaller of free cores and free memory over capacity.
fn room(h: &Candidate, oc: Overcommit) -> f64 {
    let cores_cap = (f64::from(h.total_cores) * oc.cpu).max(1.0);
    let mem_cap = (h.total_memory_bytes as f64 * oc.memory).max(1.0);
    (free_cores(h, oc) as f64 / cores_cap).min(free_memory(h, oc) as f64 / mem_cap)
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
