//! DHCP for guests' NICs, so an address bound while a guest runs (a hot-plugged NIC) and a
//! change of a segment's route policy reach the guest without a login: per bridge, one
//! `dnsmasq` answering only the MACs plinth gave NICs (static leases, unknown MACs ignored),
//! with the EIP, its prefix, and the policy's routes as classless static routes (option 121;
//! option 3 too for `default`). Leases last two minutes (dnsmasq's least), so a policy change
//! reaches running guests within about one.
//!
//! An IPv6 EIP is leased by DHCPv6 (stateful, by the NIC's MAC, which dnsmasq reads from its
//! neighbour table), and a `radvd` in the same namespace sends router advertisements: the M flag
//! (so the guest asks DHCPv6), the prefix on-link and not for SLAAC, and the routes of the
//! segment's policy, the default route as the router lifetime and specified routes as route
//! information options (RFC 4191). An RA can only name its sender as a router, so the namespace
//! is the guests' first IPv6 hop: it forwards what comes from a prefix to that prefix's gateway,
//! by source-specific routes that hold each prefix to its own policy, through a second port on
//! the bridge. A policy change restarts radvd, whose farewell advertisement withdraws the old
//! routes at once. Only prefixes of /64 and longer are served (dnsmasq's limit); a shorter one
//! keeps the static routes of its seed.
//!
//! Each dnsmasq runs in a network namespace of its own (`unshare --net`), reached through a
//! veth pair whose host end is a port of the bridge: the host itself gets no address on a guest
//! segment, and guests reach nothing of the host. That port is isolated, as is the uplink, so
//! what the servers say reaches this host's guests only, never the VLAN (where other machines
//! would take the namespace for their router) nor other hosts' guests. Its address is
//! link-local, `169.254.X.Y` made from this host's name and the bridge (so two hosts on one
//! VLAN seldom share one); option 121 carries an on-link route to it, so renewals reach it
//! without the gateway. The veth ends in the namespace have MACs made the same way, and the
//! IPv6 router's link-local address is made from the bridge's name: guests' router outlives a
//! restart of the servers, and a migration to a host whose uplink has the same name.
//!
//! dnsmasq and radvd outlive the agent (their own process groups; the unit's
//! `KillMode=process`), so a guest keeps renewing while the agent restarts; the agent adopts
//! them again from `<data>/dhcp/<bridge>/pid` and `ra-pid`; `plinth_common::dhcp::stop_all` is
//! for whoever tears a host down (tests, dev).

use ipnet::IpNet;
use plinth_common::api::AgentNic;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tracing::{info, warn};

use plinth_common::dhcp::{DIR, RA_PID, running_pid, running_ra};
/// dnsmasq's least lease time.
const LEASE: &str = "2m";
const LEASE_SECONDS: u32 = 120;
/// A lease added here (a NIC prepared for a create, a hot-plug or a migration) is kept this long
/// although the coordinator's list lacks it: the list may have been read before the binding
/// was written. One the list named once goes as soon as the list lacks it.
const GRACE: Duration = Duration::from_secs(120);
/// What `plumb` makes, in a server's folder: a server an agent started that plumbed otherwise
/// (one from before IPv6 forwarding) is started again.
const LAYOUT: &str = "isolated port; IPv6 forwarding port; radvd\n";
/// How long a new dnsmasq may take to be in its own namespace.
const UNSHARE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("writing the DHCP server's files in {0}")]
    Files(String, #[source] std::io::Error),
    #[error("starting dnsmasq (is the dnsmasq-base package installed?)")]
    Spawn(#[source] std::io::Error),
    #[error("starting radvd (is the radvd package installed?)")]
    SpawnRa(#[source] std::io::Error),
    #[error("the DHCP or RA server exited at once; its log is {0}")]
    Exited(String),
    #[error("setting up the DHCP server's network namespace")]
    Plumbing(#[source] crate::instances::tool::ToolError),
}

/// How often the router advertisements go out at most (seconds); their prefix lives as long as
/// a lease, their routes (and the router itself) three intervals.
const RA_INTERVAL: u32 = 10;
const RA_ROUTE_LIFETIME: u32 = 3 * RA_INTERVAL;
/// How long radvd may take to send its farewell (routes withdrawn) and exit.
const RA_FAREWELL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq)]
enum Lease {
    V4 {
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Ipv4Addr,
        routes: Vec<String>,
    },
    V6 {
        address: Ipv6Addr,
        prefix_len: u8,
        gateway: Ipv6Addr,
        routes: Vec<String>,
    },
}

impl Lease {
    /// The lease's subnet.
    fn subnet(&self) -> IpNet {
        let (address, prefix_len) = match self {
            Lease::V4 {
                address,
                prefix_len,
                ..
            } => (IpAddr::V4(*address), *prefix_len),
            Lease::V6 {
                address,
                prefix_len,
                ..
            } => (IpAddr::V6(*address), *prefix_len),
        };
        // Both prefix lengths are checked in `lease_of`.
        IpNet::new(address, prefix_len).map_or(IpNet::from(address), |n| n.trunc())
    }
}

struct Entry {
    lease: Lease,
    /// Added here and not yet named by the coordinator: kept for [`GRACE`] from then.
    pending_since: Option<Instant>,
}

#[derive(Default)]
struct Server {
    leases: BTreeMap<String, Entry>,
}

pub struct Dhcp {
    dir: PathBuf,
    /// What makes this host's names and server addresses its own.
    seed: String,
    servers: Mutex<BTreeMap<String, Server>>,
}

/// The names a bridge's DHCP server goes by.
struct Names {
    /// The veth end in the bridge (host side) and the one in dnsmasq's namespace.
    port: String,
    inner: String,
    /// The MAC of `inner`, this host's own.
    inner_mac: String,
    /// The link-local address of `inner`, guests' IPv6 router: made from the bridge's name
    /// alone, so the same on every host whose uplink has the same name. A guest migrated
    /// between them keeps its router; the first advertisement it hears there gives it the
    /// new host's MAC for it. The isolated ports keep any two from meeting.
    router: Ipv6Addr,
    /// The second veth pair, for IPv6 forwarded to the gateways: its end in the bridge (not
    /// isolated, so it reaches the uplink) and the one in the namespace.
    up_port: String,
    up: String,
    up_mac: String,
    server: Ipv4Addr,
    /// The DHCPv6 server's unique id, `xx:xx:xx:xx`.
    duid: String,
}

impl Dhcp {
    pub fn new(data_dir: &Path) -> Dhcp {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Dhcp {
            dir: data_dir.join(DIR),
            seed: format!("{host}\n{}", data_dir.display()),
            servers: Mutex::new(BTreeMap::new()),
        }
    }

    fn names(&self, bridge: &str) -> Names {
        let digest = Sha256::digest(format!("{}\n{bridge}", self.seed).as_bytes());
        let tag = hex::encode(&digest[..4]);
        // Locally administered unicast MACs: 02:… and 06:….
        let mac = |first: u8| {
            std::iter::once(first)
                .chain(digest[6..11].iter().copied())
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        Names {
            port: format!("pld{tag}"),
            inner: format!("pln{tag}"),
            inner_mac: mac(0x02),
            up_port: format!("plu{tag}"),
            up: format!("plr{tag}"),
            up_mac: mac(0x06),
            router: {
                let id = Sha256::digest(format!("plinth ipv6 router\n{bridge}").as_bytes());
                let mut octets = [0u8; 16];
                octets[..2].copy_from_slice(&[0xfe, 0x80]);
                octets[8..].copy_from_slice(&id[..8]);
                Ipv6Addr::from(octets)
            },
            server: Ipv4Addr::new(169, 254, 1 + digest[4] % 253, 1 + digest[5] % 254),
            duid: digest[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        }
    }

    /// Serves `nics` (those of IPv6 prefixes shorter than /64 are skipped) on `bridge`, starting its server
    /// again with them. The caller holds the bridges' turn.
    pub async fn serve(&self, bridge: &str, nics: &[&AgentNic]) -> Result<(), DhcpError> {
        let mut servers = self.servers.lock().await;
        let server = servers.entry(bridge.to_string()).or_default();
        let now = Instant::now();
        for nic in nics {
            let Some(lease) = lease_of(nic) else { continue };
            let entry = server.leases.entry(nic.mac.to_lowercase());
            match entry {
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().lease = lease,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Entry {
                        lease,
                        pending_since: Some(now),
                    });
                }
            }
        }
        self.apply(bridge, server).await
    }

    /// Stops answering `macs` (NICs taken off or instances deleted) on every bridge.
    pub async fn forget(&self, macs: &[String]) {
        let mut servers = self.servers.lock().await;
        for (bridge, server) in servers.iter_mut() {
            let before = server.leases.len();
            server
                .leases
                .retain(|mac, _| !macs.iter().any(|m| m.eq_ignore_ascii_case(mac)));
            if server.leases.len() != before
                && let Err(err) = self.apply(bridge, server).await
            {
                warn!(bridge = %bridge, error = %err, "Could not update the DHCP server.");
            }
        }
    }

    /// The coordinator's whole list of this host's NICs, by bridge: leases it names are served
    /// (on bridges that exist: `exists`), those it lacks go (after [`GRACE`] if added here), and
    /// a server left with none stops, as does one found on disk for a bridge nobody names.
    pub async fn reconcile(&self, wanted: &[(String, AgentNic)], exists: &BTreeSet<String>) {
        let mut servers = self.servers.lock().await;
        for bridge in self.on_disk() {
            servers.entry(bridge).or_default();
        }
        for (bridge, _) in wanted {
            if exists.contains(bridge) {
                servers.entry(bridge.clone()).or_default();
            }
        }
        let now = Instant::now();
        for (bridge, server) in servers.iter_mut() {
            let named: BTreeMap<String, Lease> = wanted
                .iter()
                .filter(|(b, _)| b == bridge)
                .filter_map(|(_, nic)| Some((nic.mac.to_lowercase(), lease_of(nic)?)))
                .collect();
            server.leases.retain(|mac, entry| {
                named.contains_key(mac)
                    || entry
                        .pending_since
                        .is_some_and(|t| now.duration_since(t) < GRACE)
            });
            for (mac, lease) in named {
                server.leases.insert(
                    mac,
                    Entry {
                        lease,
                        pending_since: None,
                    },
                );
            }
            if !exists.contains(bridge) && !server.leases.is_empty() {
                continue;
            }
            if let Err(err) = self.apply(bridge, server).await {
                warn!(bridge = %bridge, error = %err, "Could not update the DHCP server.");
            }
        }
        servers.retain(|_, s| !s.leases.is_empty());
    }

    /// The bridges a server's folder is kept for (from an earlier run too).
    fn on_disk(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Makes the server of `bridge` what `server` says: stopped without leases; else its files
    /// written, then started, or started again when they changed; and the same for its router
    /// advertisements and forwarding, which IPv6 leases need.
    async fn apply(&self, bridge: &str, server: &Server) -> Result<(), DhcpError> {
        let dir = self.dir.join(bridge);
        let running = running_pid(&dir);
        let names = self.names(bridge);
        if server.leases.is_empty() {
            if running.is_none() && !dir.exists() {
                return Ok(());
            }
            stop_ra(&dir, true).await;
            if let Some(pid) = running {
                signal(pid, nix::sys::signal::Signal::SIGTERM);
                info!(bridge = %bridge, pid, "DHCP server stopped: no NIC left to answer.");
            }
            // Its namespace goes with it, but not always before the bridge is looked at.
            for port in [&names.port, &names.up_port] {
                let _ =
                    crate::instances::tool::run("ip", &["link", "del", port.as_str()], None).await;
            }
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        let files = |e| DhcpError::Files(dir.display().to_string(), e);
        std::fs::create_dir_all(&dir).map_err(files)?;
        let subnets = subnets(server);
        // Any change restarts dnsmasq (which rereads its leases file): dnsmasq 2.90 can die
        // of SIGHUP once it has answered (a general protection fault in libc), so it is not
        // told to reread its files.
        let changed = write_if_changed(&dir.join("hosts"), &hosts_file(server)).map_err(files)?
            | write_if_changed(&dir.join("opts"), &opts_file(server, names.server))
                .map_err(files)?
            | write_if_changed(&dir.join("subnets"), &subnets).map_err(files)?
            | write_if_changed(&dir.join("layout"), LAYOUT).map_err(files)?;
        let ra = ra_file(server, &names.inner);
        let forward = forward_file(server);
        let ra_changed = write_if_changed(&dir.join("radvd.conf"), &ra).map_err(files)?
            | write_if_changed(&dir.join("forward"), &forward).map_err(files)?;
        let pid = match running {
            Some(pid) if !changed => {
                if !ra_changed && (ra.is_empty() || running_ra(&dir).is_some()) {
                    return Ok(());
                }
                // A policy changed: the old radvd's farewell withdraws its routes first.
                stop_ra(&dir, true).await;
                pid
            }
            _ => {
                // A successor, in the new namespace, speaks from the same link-local address
                // with no gap guests would notice: no farewell then.
                stop_ra(&dir, ra.is_empty() || ra_changed).await;
                if let Some(pid) = running {
                    signal(pid, nix::sys::signal::Signal::SIGTERM);
                }
                self.start(bridge, &dir, &names, &subnets).await?
            }
        };
        if ra.is_empty() {
            return Ok(());
        }
        self.advertise(bridge, &dir, &names, &forward, pid).await
    }

    /// Starts dnsmasq for `subnets` in a namespace of its own, plumbed; its pid.
    async fn start(
        &self,
        bridge: &str,
        dir: &Path,
        names: &Names,
        subnets: &str,
    ) -> Result<i32, DhcpError> {
        let at = |file: &str| dir.join(file).display().to_string();
        let mut args = vec![
            "--net".to_string(),
            "--".into(),
            "dnsmasq".into(),
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            // Its files are in the agent's private folder.
            "--user=root".into(),
            "--group=root".into(),
            "--bind-dynamic".into(),
            format!("--interface={}", names.inner),
            "--dhcp-authoritative".into(),
            "--dhcp-ignore=tag:!known".into(),
            // No router and no DNS server unless a lease's options say so.
            "--dhcp-option=3".into(),
            "--dhcp-option=6".into(),
            "--quiet-dhcp".into(),
            "--quiet-dhcp6".into(),
            format!("--pid-file={}", at("pid")),
            format!("--log-facility={}", at("log")),
            format!("--dhcp-leasefile={}", at("leases")),
            format!("--dhcp-hostsfile={}", at("hosts")),
            format!("--dhcp-optsfile={}", at("opts")),
        ];
        let mut v6 = false;
        for subnet in subnets.lines().filter_map(|s| s.parse::<IpNet>().ok()) {
            let network = subnet.network();
            match subnet {
                IpNet::V4(net) => {
                    let mask = net.netmask();
                    args.push(format!("--dhcp-range={network},static,{mask},{LEASE}"));
                    // By the server's address: the interface is not there yet when dnsmasq
                    // starts.
                    args.push(format!("--shared-network={},{network}", names.server));
                }
                IpNet::V6(net) => {
                    // Matched by the namespace's address in the prefix (see `plumb`).
                    let prefix = net.prefix_len();
                    args.push(format!("--dhcp-range={network},static,{prefix},{LEASE}"));
                    v6 = true;
                }
            }
        }
        if v6 {
            // dnsmasq would make its DUID from a MAC, and its namespace has none yet: one of
            // this host's and bridge's own (under RFC 5612's documentation enterprise number).
            args.push(format!("--dhcp-duid=32473,{}", names.duid));
        }
        let (mut child, pid) =
            spawn_detached("unshare", &args, &dir.join("pid")).map_err(DhcpError::Spawn)?;
        let plumbed = self
            .plumb(bridge, names, subnets, v6, pid, &mut child)
            .await;
        if let Err(err) = plumbed {
            signal(pid, nix::sys::signal::Signal::SIGTERM);
            return Err(err);
        }
        info!(bridge = %bridge, pid, server = %names.server, "DHCP server started.");
        Ok(pid)
    }

    /// Once `pid` is in a namespace of its own: the veth pair, its end there up with the server
    /// address (and a route to the guests on it), its end here on the bridge, isolated. For
    /// each IPv6 subnet that end also holds the subnet's own address (the subnet-router anycast
    /// address, never an EIP), which is how dnsmasq knows the prefix is on that link: without
    /// DAD, as every host's server holds it, and without a route, as nothing is sent from it.
    /// With IPv6 (`v6`) the namespace also forwards, through a second pair whose end here is
    /// an ordinary port of the bridge.
    async fn plumb(
        &self,
        bridge: &str,
        names: &Names,
        subnets: &str,
        v6: bool,
        pid: i32,
        child: &mut tokio::process::Child,
    ) -> Result<(), DhcpError> {
        let mine = std::fs::read_link("/proc/thread-self/ns/net").ok();
        let until = Instant::now() + UNSHARE;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(DhcpError::Exited(
                    self.dir.join(bridge).join("log").display().to_string(),
                ));
            }
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            if theirs.is_some() && theirs != mine {
                break;
            }
            if Instant::now() > until {
                return Err(DhcpError::Exited(
                    self.dir.join(bridge).join("log").display().to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Ports left by a server that died with the host's namespace kept.
        for port in [&names.port, &names.up_port] {
            let _ = ip(&["link", "del", port]).await;
        }
        let mut pairs = vec![(&names.port, &names.inner, &names.inner_mac)];
        if v6 {
            pairs.push((&names.up_port, &names.up, &names.up_mac));
        }
        for (port, end, mac) in &pairs {
            ip(&[
                "link", "add", port, "type", "veth", "peer", "name", end, "address", mac,
            ])
            .await?;
            ip(&["link", "set", end, "netns", &pid.to_string()]).await?;
        }
        let server = format!("{}/32", names.server);
        in_namespace(pid, "ip", &["addr", "add", &server, "dev", &names.inner]).await?;
        if v6 {
            // The router's address in place of the one the kernel would make from the MAC.
            in_namespace(
                pid,
                "ip",
                &["link", "set", &names.inner, "addrgenmode", "none"],
            )
            .await?;
            let router = format!("{}/64", names.router);
            in_namespace(
                pid,
                "ip",
                &["addr", "add", &router, "dev", &names.inner, "nodad"],
            )
            .await?;
        }
        for subnet in subnets.lines().filter(|s| s.contains(':')) {
            in_namespace(
                pid,
                "ip",
                &[
                    "addr",
                    "add",
                    subnet,
                    "dev",
                    &names.inner,
                    "nodad",
                    "noprefixroute",
                ],
            )
            .await?;
        }
        if v6 {
            in_namespace(pid, "sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]).await?;
        }
        in_namespace(pid, "ip", &["link", "set", "lo", "up"]).await?;
        for (_, end, _) in &pairs {
            in_namespace(pid, "ip", &["link", "set", end, "up"]).await?;
        }
        in_namespace(pid, "ip", &["route", "add", "default", "dev", &names.inner]).await?;
        let alias = format!("plinth dhcp {bridge}");
        for (port, _, _) in &pairs {
            ip(&["link", "set", port, "alias", &alias]).await?;
            ip(&["link", "set", port, "master", bridge, "up"]).await?;
        }
        ip(&[
            "link",
            "set",
            "dev",
            &names.port,
            "type",
            "bridge_slave",
            "isolated",
            "on",
        ])
        .await?;
        Ok(())
    }

    /// In the namespace of dnsmasq `pid`: the forwarding routes of `forward` (replacing any
    /// earlier ones), then radvd with `<dir>/radvd.conf`.
    async fn advertise(
        &self,
        bridge: &str,
        dir: &Path,
        names: &Names,
        forward: &str,
        pid: i32,
    ) -> Result<(), DhcpError> {
        let _ = in_namespace(
            pid,
            "ip",
            &["-6", "route", "flush", "dev", &names.up, "proto", "static"],
        )
        .await;
        for line in forward.lines() {
            let [to, from, via] = line.split(' ').collect::<Vec<_>>()[..] else {
                continue;
            };
            in_namespace(
                pid,
                "ip",
                &[
                    "-6", "route", "add", to, "from", from, "via", via, "dev", &names.up, "onlink",
                    "proto", "static",
                ],
            )
            .await?;
        }
        let at = |file: &str| dir.join(file).display().to_string();
        let args = [
            format!("--net=/proc/{pid}/ns/net"),
            "radvd".into(),
            "--nodaemon".into(),
            format!("--config={}", at("radvd.conf")),
            format!("--pidfile={}", at("radvd.pid")),
            "--logmethod=logfile".into(),
            format!("--logfile={}", at("radvd.log")),
        ];
        // nsenter runs radvd in its own process.
        let (mut child, ra) =
            spawn_detached("nsenter", &args, &dir.join(RA_PID)).map_err(DhcpError::SpawnRa)?;
        // A configuration radvd refuses makes it exit at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(Some(_)) = child.try_wait() {
            return Err(DhcpError::Exited(at("radvd.log")));
        }
        info!(bridge = %bridge, pid = ra, "Router advertisements started.");
        Ok(())
    }
}

/// Starts `program args` in a process group of its own (so that it outlives the agent), with no
/// standard streams; writes its pid to `pid_file`.
fn spawn_detached(
    program: &str,
    args: &[String],
    pid_file: &Path,
) -> std::io::Result<(tokio::process::Child, i32)> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()?;
    let pid = child.id().unwrap_or_default() as i32;
    let _ = std::fs::write(pid_file, format!("{pid}\n"));
    Ok((child, pid))
}

/// Stops the radvd of `dir`, if one runs: with its farewell (routes withdrawn, waited for) or,
/// when another takes over at once, without one.
async fn stop_ra(dir: &Path, farewell: bool) {
    let Some(pid) = running_ra(dir) else { return };
    if !farewell {
        signal(pid, nix::sys::signal::Signal::SIGKILL);
        return;
    }
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let until = Instant::now() + RA_FAREWELL;
    while running_ra(dir).is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ip(args: &[&str]) -> Result<(), DhcpError> {
    crate::instances::tool::run("ip", args, None)
        .await
        .map(|_| ())
        .map_err(DhcpError::Plumbing)
}

/// `program args` run in the network namespace of process `pid`.
async fn in_namespace(pid: i32, program: &str, args: &[&str]) -> Result<(), DhcpError> {
    let mut all = vec![format!("--net=/proc/{pid}/ns/net"), program.to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    crate::instances::tool::run("nsenter", &all, None)
        .await
        .map(|_| ())
        .map_err(DhcpError::Plumbing)
}

/// The lease of a NIC; none for an IPv6 prefix shorter than dnsmasq serves (/64).
fn lease_of(nic: &AgentNic) -> Option<Lease> {
    match nic.address.parse().ok()? {
        IpAddr::V4(address) => Some(Lease::V4 {
            address,
            prefix_len: nic.prefix_len.min(32),
            gateway: nic.gateway.parse().ok()?,
            routes: nic.routes.clone(),
        }),
        IpAddr::V6(address) => {
            let gateway = nic.gateway.parse().ok()?;
            v6_served(nic.prefix_len).then(|| Lease::V6 {
                address,
                prefix_len: nic.prefix_len,
                gateway,
                routes: nic.routes.clone(),
            })
        }
    }
}

/// Whether an IPv6 NIC of this prefix length gets its routes from the host's router
/// advertisements (else its seed carries them).
pub fn v6_served(prefix_len: u8) -> bool {
    (64..=128).contains(&prefix_len)
}

/// radvd's configuration for the IPv6 leases (empty without any): every prefix on-link with
/// the M flag; the namespace a default router where a prefix's policy has a default route, and
/// the union of the other routes as route information. Every guest on the bridge hears the same
/// advertisement; what the namespace forwards (`forward_file`) holds each prefix to its own.
fn ra_file(server: &Server, inner: &str) -> String {
    let mut prefixes = BTreeSet::new();
    let mut routes = BTreeSet::new();
    let mut default = false;
    for e in server.leases.values() {
        let Lease::V6 { routes: policy, .. } = &e.lease else {
            continue;
        };
        prefixes.insert(e.lease.subnet());
        for route in policy.iter().filter_map(|r| r.parse::<IpNet>().ok()) {
            if route.prefix_len() == 0 {
                default = true;
            } else {
                routes.insert(route.trunc());
            }
        }
    }
    if prefixes.is_empty() {
        return String::new();
    }
    let lease = LEASE_SECONDS;
    let router = if default { RA_ROUTE_LIFETIME } else { 0 };
    let mut out = format!(
        "interface {inner} {{\n    AdvSendAdvert on;\n    MinRtrAdvInterval 3;\n    \
         MaxRtrAdvInterval {RA_INTERVAL};\n    AdvManagedFlag on;\n    \
         AdvDefaultLifetime {router};\n"
    );
    for prefix in prefixes {
        out.push_str(&format!(
            "    prefix {prefix} {{\n        AdvOnLink on;\n        AdvAutonomous off;\n        \
             AdvValidLifetime {lease};\n        AdvPreferredLifetime {lease};\n    }};\n"
        ));
    }
    for route in routes {
        out.push_str(&format!(
            "    route {route} {{\n        AdvRouteLifetime {RA_ROUTE_LIFETIME};\n    }};\n"
        ));
    }
    out.push_str("};\n");
    out
}

/// What the namespace forwards to a gateway, a `to from via` a line, sorted: each route of an
/// IPv6 lease's policy, from its prefix only.
fn forward_file(server: &Server) -> String {
    let mut lines = BTreeSet::new();
    for e in server.leases.values() {
        let Lease::V6 {
            gateway, routes, ..
        } = &e.lease
        else {
            continue;
        };
        let from = e.lease.subnet();
        for route in routes.iter().filter_map(|r| r.parse::<IpNet>().ok()) {
            lines.insert(format!("{} {from} {gateway}\n", route.trunc()));
        }
    }
    lines.into_iter().collect()
}

/// The networks the leases are in, a `network/prefix` a line, sorted.
fn subnets(server: &Server) -> String {
    let nets: BTreeSet<IpNet> = server.leases.values().map(|e| e.lease.subnet()).collect();
    nets.into_iter().map(|n| format!("{n}\n")).collect()
}

/// A tag per MAC, for its options.
fn tag(mac: &str) -> String {
    format!("m{}", mac.replace(':', ""))
}

fn hosts_file(server: &Server) -> String {
    server
        .leases
        .iter()
        .map(|(mac, e)| {
            let address = match &e.lease {
                Lease::V4 { address, .. } => address.to_string(),
                Lease::V6 { address, .. } => format!("[{address}]"),
            };
            format!("{mac},set:{},{address},{LEASE}\n", tag(mac))
        })
        .collect()
}

/// Per IPv4 lease: option 121 with an on-link route to the server and the policy's routes via
/// the gateway; option 3 (the gateway) where the policy gives a default route.
fn opts_file(server: &Server, address: Ipv4Addr) -> String {
    let mut out = String::new();
    for (mac, e) in &server.leases {
        let Lease::V4 {
            gateway: gw,
            routes: policy,
            ..
        } = &e.lease
        else {
            continue;
        };
        let tag = tag(mac);
        let mut routes = vec![format!("{address}/32,0.0.0.0")];
        routes.extend(policy.iter().map(|to| format!("{to},{gw}")));
        out.push_str(&format!(
            "tag:{tag},option:classless-static-route,{}\n",
            routes.join(",")
        ));
        if policy.iter().any(|r| r == "0.0.0.0/0") {
            out.push_str(&format!("tag:{tag},option:router,{gw}\n"));
        }
    }
    out
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<bool> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use plinth_common::api::Uplink;

    fn nic(mac: &str, address: &str, routes: &[&str]) -> AgentNic {
        AgentNic {
            mac: mac.to_string(),
            uplink: Uplink {
                nic: "eth1".into(),
                vlan: None,
            },
            address: address.to_string(),
            prefix_len: 24,
            gateway: "192.0.2.1".into(),
            routes: routes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn server(nics: &[AgentNic]) -> Server {
        Server {
            leases: nics
                .iter()
                .filter_map(|n| {
                    Some((
                        n.mac.clone(),
                        Entry {
                            lease: lease_of(n)?,
                            pending_since: None,
                        },
                    ))
                })
                .collect(),
        }
    }

    #[test]
    fn leases_and_options_per_route_policy() {
        let s = server(&[
            nic("52:54:00:00:00:01", "192.0.2.10", &["0.0.0.0/0"]),
            nic("52:54:00:00:00:02", "192.0.2.11", &["198.51.100.0/24"]),
            nic("52:54:00:00:00:03", "192.0.2.12", &[]),
            AgentNic {
                prefix_len: 64,
                gateway: "2001:db8:1:2::1".into(),
                ..nic("52:54:00:00:00:04", "2001:db8:1:2::10", &["::/0"])
            },
            // Too short a prefix for DHCPv6: skipped.
            AgentNic {
                prefix_len: 48,
                gateway: "2001:db8:9::1".into(),
                ..nic("52:54:00:00:00:05", "2001:db8:9::10", &["::/0"])
            },
        ]);
        assert_eq!(
            hosts_file(&s),
            "52:54:00:00:00:01,set:m525400000001,192.0.2.10,2m\n\
             52:54:00:00:00:02,set:m525400000002,192.0.2.11,2m\n\
             52:54:00:00:00:03,set:m525400000003,192.0.2.12,2m\n\
             52:54:00:00:00:04,set:m525400000004,[2001:db8:1:2::10],2m\n"
        );
        let server = Ipv4Addr::new(169, 254, 7, 9);
        assert_eq!(
            opts_file(&s, server),
            "tag:m525400000001,option:classless-static-route,169.254.7.9/32,0.0.0.0,0.0.0.0/0,192.0.2.1\n\
             tag:m525400000001,option:router,192.0.2.1\n\
             tag:m525400000002,option:classless-static-route,169.254.7.9/32,0.0.0.0,198.51.100.0/24,192.0.2.1\n\
             tag:m525400000003,option:classless-static-route,169.254.7.9/32,0.0.0.0\n"
        );
        assert_eq!(subnets(&s), "192.0.2.0/24\n2001:db8:1:2::/64\n");
    }

    #[test]
    fn advertisements_and_forwarding_per_route_policy() {
        let v6 = |mac: &str, address: &str, gateway: &str, routes: &[&str]| AgentNic {
            prefix_len: 64,
            gateway: gateway.into(),
            ..nic(mac, address, routes)
        };
        let only_v4 = server(&[nic("52:54:00:00:00:01", "192.0.2.10", &["0.0.0.0/0"])]);
        assert_eq!(ra_file(&only_v4, "pln0"), "", "no IPv6 lease, no radvd");
        assert_eq!(forward_file(&only_v4), "");
        let none = server(&[v6(
            "52:54:00:00:00:02",
            "2001:db8:1::10",
            "2001:db8:1::1",
            &[],
        )]);
        assert_eq!(
            ra_file(&none, "pln0"),
            "interface pln0 {\n    AdvSendAdvert on;\n    MinRtrAdvInterval 3;\n    \
             MaxRtrAdvInterval 10;\n    AdvManagedFlag on;\n    AdvDefaultLifetime 0;\n    \
             prefix 2001:db8:1::/64 {\n        AdvOnLink on;\n        AdvAutonomous off;\n        \
             AdvValidLifetime 120;\n        AdvPreferredLifetime 120;\n    };\n};\n"
        );
        assert_eq!(forward_file(&none), "", "`none` forwards nothing");
        let mixed = server(&[
            v6(
                "52:54:00:00:00:03",
                "2001:db8:1::10",
                "2001:db8:1::1",
                &["::/0"],
            ),
            v6(
                "52:54:00:00:00:04",
                "2001:db8:2::10",
                "2001:db8:2::1",
                &["2001:db8:99::/64", "2001:db8:98::1/48"],
            ),
        ]);
        let ra = ra_file(&mixed, "pln0");
        assert!(ra.contains("AdvDefaultLifetime 30;"), "{ra}");
        assert!(ra.contains("prefix 2001:db8:1::/64 {") && ra.contains("prefix 2001:db8:2::/64 {"));
        assert!(
            ra.contains("route 2001:db8:98::/48 {\n        AdvRouteLifetime 30;\n    };")
                && ra.contains("route 2001:db8:99::/64 {"),
            "{ra}"
        );
        assert!(
            !ra.contains("route ::/0"),
            "the default route is the router lifetime"
        );
        assert_eq!(
            forward_file(&mixed),
            "2001:db8:98::/48 2001:db8:2::/64 2001:db8:2::1\n\
             2001:db8:99::/64 2001:db8:2::/64 2001:db8:2::1\n\
             ::/0 2001:db8:1::/64 2001:db8:1::1\n",
            "each prefix forwarded by its own policy, to its own gateway"
        );
    }

    #[test]
    fn names_differ_per_host_and_bridge_and_fit_the_kernel() {
        let a = Dhcp::new(Path::new("/var/lib/a"));
        let b = Dhcp::new(Path::new("/var/lib/b"));
        let (x, y, z) = (a.names("pl-eth1"), a.names("pl-eth2"), b.names("pl-eth1"));
        assert!(x.port.len() <= 15 && x.inner.len() <= 15);
        assert_ne!(x.port, y.port);
        assert_ne!(x.port, z.port);
        assert_eq!(x.port, a.names("pl-eth1").port, "stable across runs");
        assert!(x.server.is_link_local());
        assert!(x.up_port.len() <= 15 && x.up.len() <= 15);
        assert_ne!(x.inner_mac, z.inner_mac, "each host's MACs are its own");
        assert_ne!(x.inner_mac, x.up_mac);
        assert!(x.router.is_unicast_link_local());
        assert_eq!(
            x.router, z.router,
            "one router address on every host, per bridge"
        );
        assert_ne!(x.router, y.router);
    }

    /// What a DHCP server offered: the address and the options, by code.
    struct Offer {
        address: Ipv4Addr,
        options: BTreeMap<u8, Vec<u8>>,
    }

    /// A DHCP client's socket: `at` on `dev` only, waiting half a second for each reply.
    fn client_socket(at: &str, dev: &str) -> std::net::UdpSocket {
        let socket = std::net::UdpSocket::bind(at).unwrap();
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(dev),
        )
        .expect("SO_BINDTODEVICE");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        socket
    }

    /// A DHCPDISCOVER for `mac` broadcast on `dev` (asking for broadcast replies, so a port
    /// without an address hears them); the first offer within a few seconds.
    fn discover(dev: &str, mac: [u8; 6]) -> Option<Offer> {
        let socket = client_socket("0.0.0.0:68", dev);
        socket.set_broadcast(true).unwrap();
        let xid: [u8; 4] = [0x70, 0x6c, mac[4], mac[5]];
        let mut packet = vec![0u8; 240];
        packet[..4].copy_from_slice(&[1, 1, 6, 0]);
        packet[4..8].copy_from_slice(&xid);
        packet[10] = 0x80; // broadcast replies
        packet[28..34].copy_from_slice(&mac);
        packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
        // DHCPDISCOVER, asking for the netmask, router and classless static routes.
        packet.extend_from_slice(&[53, 1, 1, 55, 3, 1, 3, 121, 255]);
        for _ in 0..8 {
            socket.send_to(&packet, "255.255.255.255:67").unwrap();
            let mut buf = [0u8; 1500];
            while let Ok(n) = socket.recv(&mut buf) {
                let reply = &buf[..n];
                if n < 240 || reply[0] != 2 || reply[4..8] != xid {
                    continue;
                }
                let mut options = BTreeMap::new();
                let mut i = 240;
                while i + 1 < n && reply[i] != 255 {
                    let (code, len) = (reply[i], reply[i + 1] as usize);
                    options.insert(code, reply[i + 2..(i + 2 + len).min(n)].to_vec());
                    i += 2 + len;
                }
                let a = &reply[16..20];
                return Some(Offer {
                    address: Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                    options,
                });
            }
        }
        None
    }

    /// A DHCPv6 Solicit for one address sent from `dev` (from its link-local address, with a
    /// DUID that names no MAC, as systemd-networkd's does not); the address of the first
    /// Advertise that offers one within a few seconds.
    fn solicit(dev: &str) -> Option<Ipv6Addr> {
        let index = nix::net::if_::if_nametoindex(dev).expect("the client's index");
        let socket = client_socket("[::]:546", dev);
        let xid = [0x70, 0x6c, 0x36];
        let mut packet = vec![1]; // Solicit
        packet.extend(xid);
        packet.extend([0, 1, 0, 18, 0, 4]); // client id: a DUID-UUID
        packet.extend([0x5a; 16]);
        packet.extend([0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // IA_NA 1
        packet.extend([0, 8, 0, 2, 0, 0]); // elapsed time
        let to = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
        // The options of `body`: (code, value).
        let options = |body: &[u8]| {
            let mut out = Vec::new();
            let mut i = 0;
            while i + 4 <= body.len() {
                let code = u16::from_be_bytes([body[i], body[i + 1]]);
                let len = usize::from(u16::from_be_bytes([body[i + 2], body[i + 3]]));
                out.push((code, body[i + 4..(i + 4 + len).min(body.len())].to_vec()));
                i += 4 + len;
            }
            out
        };
        for _ in 0..10 {
            socket.send_to(&packet, to).unwrap();
            let mut buf = [0u8; 1500];
            while let Ok(n) = socket.recv(&mut buf) {
                let reply = &buf[..n];
                if n < 4 || reply[0] != 2 || reply[1..4] != xid {
                    continue;
                }
                for (_, ia) in options(&reply[4..]).into_iter().filter(|(c, _)| *c == 3) {
                    let Some(addr) = ia.get(12..).map(options).and_then(|o| {
                        o.into_iter()
                            .find(|(c, v)| *c == 5 && v.len() >= 24)
                            .map(|(_, v)| v)
                    }) else {
                        continue;
                    };
                    let octets: [u8; 16] = addr[..16].try_into().unwrap();
                    return Some(Ipv6Addr::from(octets));
                }
            }
        }
        None
    }

    /// `dev`'s IPv6 routes once they contain `text` (within 20 s; all of them if they do not
    /// by then).
    async fn routes_once(dev: &str, text: &str) -> String {
        let mut routes = String::new();
        for _ in 0..100 {
            let out = tokio::process::Command::new("ip")
                .args(["-6", "route", "show", "dev", dev])
                .output()
                .await
                .unwrap();
            routes = String::from_utf8_lossy(&out.stdout).to_string();
            if routes.contains(text) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        routes
    }

    /// Sets `dev`'s MAC and brings it up with router advertisements accepted; returns once its
    /// link-local address is past duplicate detection.
    async fn client_as(dev: &str, mac: &str) {
        ip(&["link", "set", dev, "down"]).await;
        ip(&["link", "set", dev, "address", mac]).await;
        let ra = format!("net.ipv6.conf.{dev}.accept_ra=2");
        crate::instances::tool::run("sysctl", &["-qw", ra.as_str()], None)
            .await
            .unwrap();
        ip(&["link", "set", dev, "up"]).await;
        for _ in 0..100 {
            let out = tokio::process::Command::new("ip")
                .args(["-6", "addr", "show", "dev", dev, "scope", "link"])
                .output()
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if text.contains("fe80::") && !text.contains("tentative") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{dev} has no usable link-local address");
    }

    async fn ip(args: &[&str]) {
        crate::instances::tool::run("ip", args, None)
            .await
            .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    }

    /// A real dnsmasq on a real bridge (in a network namespace of the test's own): it offers a
    /// known MAC its EIP with the policy's routes, never answers another MAC, follows a policy
    /// change, leases an IPv6 EIP by DHCPv6 with its prefix on-link and its policy's routes by
    /// RA (and follows a change of that policy too), and stops (taking its ports off the bridge,
    /// radvd with them) when its last NIC is forgotten.
    #[test]
    fn a_real_server_answers_only_its_macs_with_their_routes() {
        use super::super::bridges::{self, tests::in_netns, tests::make_uplink};
        in_netns(|handle| async move {
            make_uplink(&handle, "up0").await;
            let uplink = bridges::Uplink {
                nic: "up0".into(),
                vlan: None,
            };
            let bridge = bridges::ensure(&handle, &uplink).await.unwrap().unwrap();
            ip(&["link", "add", "cl0", "type", "veth", "peer", "name", "clb0"]).await;
            ip(&["link", "set", "clb0", "master", &bridge.name, "up"]).await;
            ip(&["link", "set", "cl0", "up"]).await;
            let dir = tempfile::tempdir().unwrap();
            let dhcp = Dhcp::new(dir.path());
            let known = nic("52:54:00:00:00:0a", "192.0.2.10", &["0.0.0.0/0"]);
            dhcp.serve(&bridge.name, &[&known]).await.unwrap();
            let server = dhcp.names(&bridge.name).server.octets();

            let ask = |mac| tokio::task::spawn_blocking(move || discover("cl0", mac));
            let offer = ask([0x52, 0x54, 0, 0, 0, 0x0a]).await.unwrap();
            let log = dir.path().join(DIR).join(&bridge.name).join("log");
            let offer = offer.unwrap_or_else(|| {
                panic!(
                    "no offer; dnsmasq's log: {:?}",
                    std::fs::read_to_string(&log)
                )
            });
            assert_eq!(offer.address, Ipv4Addr::new(192, 0, 2, 10));
            assert_eq!(offer.options[&1], [255, 255, 255, 0], "the netmask");
            assert_eq!(offer.options[&3], [192, 0, 2, 1], "the router");
            let mut routes = vec![32];
            routes.extend(server);
            routes.extend([0, 0, 0, 0, 0, 192, 0, 2, 1]);
            assert_eq!(
                offer.options[&121], routes,
                "on-link server, default via gateway"
            );
            assert!(!offer.options.contains_key(&6), "no DNS server is made up");
            assert!(
                ask([0x52, 0x54, 0, 0, 0, 0x0b]).await.unwrap().is_none(),
                "an unknown MAC is never answered"
            );

            let specified = nic("52:54:00:00:00:0a", "192.0.2.10", &["198.51.100.0/24"]);
            dhcp.serve(&bridge.name, &[&specified]).await.unwrap();
            let offer = ask([0x52, 0x54, 0, 0, 0, 0x0a]).await.unwrap();
            let offer = offer.unwrap_or_else(|| {
                panic!(
                    "no offer; dnsmasq's log: {:?}",
                    std::fs::read_to_string(&log)
                )
            });
            let mut routes = vec![32];
            routes.extend(server);
            routes.extend([0, 0, 0, 0, 24, 198, 51, 100, 192, 0, 2, 1]);
            assert_eq!(offer.options[&121], routes, "the specified route");
            assert!(!offer.options.contains_key(&3), "no default router");

            // IPv6: a DHCPv6 lease for the known MAC, which dnsmasq finds by the client's
            // link-local address, and router advertisements that put the prefix on-link and
            // name no router.
            let v6 = AgentNic {
                prefix_len: 64,
                gateway: "2001:db8:21::1".into(),
                ..nic("52:54:00:00:00:0c", "2001:db8:21::10", &["::/0"])
            };
            if let Err(e) = dhcp.serve(&bridge.name, &[&specified, &v6]).await {
                panic!("{e}: {:?}", std::fs::read_to_string(&log));
            }
            client_as("cl0", &v6.mac).await;
            let leased = tokio::task::spawn_blocking(|| solicit("cl0"))
                .await
                .unwrap();
            assert_eq!(
                leased,
                Some("2001:db8:21::10".parse().unwrap()),
                "dnsmasq's log: {:?}",
                std::fs::read_to_string(&log)
            );
            let ra_log = dir.path().join(DIR).join(&bridge.name).join("radvd.log");
            let router = dhcp.names(&bridge.name).router;
            let routes = routes_once("cl0", &format!("default via {router}")).await;
            assert!(routes.contains("2001:db8:21::/64"), "on-link: {routes}");
            assert!(
                routes.contains(&format!("default via {router}")) && routes.contains("proto ra"),
                "the `default` policy makes the namespace the router: {routes}; radvd's log: {:?}",
                std::fs::read_to_string(&ra_log)
            );
            // The policy becomes `specified`: the old radvd withdraws the default route as it
            // goes, the new one advertises the route (which the kernel takes once allowed to).
            let max_plen = "net.ipv6.conf.cl0.accept_ra_rt_info_max_plen=128";
            crate::instances::tool::run("sysctl", &["-qw", max_plen], None)
                .await
                .unwrap();
            let v6 = AgentNic {
                routes: vec!["2001:db8:99::/64".into()],
                ..v6
            };
            dhcp.serve(&bridge.name, &[&specified, &v6]).await.unwrap();
            let routes = routes_once("cl0", &format!("2001:db8:99::/64 via {router}")).await;
            assert!(
                routes.contains(&format!("2001:db8:99::/64 via {router}")),
                "the specified route: {routes}"
            );
            assert!(
                !routes.contains("default"),
                "and no default route: {routes}"
            );
            client_as("cl0", "52:54:00:00:00:0d").await;
            let leased = tokio::task::spawn_blocking(|| solicit("cl0"))
                .await
                .unwrap();
            assert_eq!(leased, None, "an unknown MAC is never answered");

            let names = dhcp.names(&bridge.name);
            assert!(bridges::tests::link_exists(&handle, &names.port).await);
            assert!(bridges::tests::link_exists(&handle, &names.up_port).await);
            let server_dir = dir.path().join(DIR).join(&bridge.name);
            let ra = running_ra(&server_dir);
            assert!(ra.is_some(), "radvd runs");
            dhcp.forget(&[known.mac.clone(), v6.mac.clone()]).await;
            for port in [&names.port, &names.up_port] {
                assert!(
                    !bridges::tests::link_exists(&handle, port).await,
                    "its port {port} went"
                );
            }
            // Gone, or a zombie (its command line empty) until this process reaps it.
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", ra.unwrap_or_default()));
            assert!(cmdline.unwrap_or_default().is_empty(), "radvd went");
            assert!(!dir.path().join(DIR).join(&bridge.name).exists());
        });
    }
}
