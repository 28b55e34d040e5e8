//! The dev region's hosts: each a `plinth-agent` enrolled through the real token + CSR + mTLS
//! path, on its own private libvirtd (real QEMU, TCP on its own 127.0.10.x, offered to the
//! other hosts for live migrations) or, where that cannot run, on libvirt's test driver.

use super::libvirtd::{DaemonOptions, PrivateLibvirtd};
use crate::paths::write_file;
use crate::state::AppState;
use crate::tenants::api::tokens::issue_enrollment_token;
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const DEV_CLUSTER: &str = "dev";

/// Where host `n` (from 1) is reached: its agent and its libvirtd listen here.
pub fn host_address(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 10, n as u8)
}

/// How the region's agents reach libvirt.
#[derive(Debug, Clone)]
pub enum Libvirt {
    /// Each host its own private libvirtd with QEMU.
    Private,
    /// Every agent on this URI (libvirt's test driver, or the machine's own daemon).
    Uri(String),
}

/// One host: its agent and, for a private one, its libvirtd.
pub struct DevHost {
    pub name: String,
    pub address: IpAddr,
    pub daemon: Option<PrivateLibvirtd>,
    pub agent: Child,
    /// The agent's data folder: its DHCP servers, which outlive it, are stopped with the host.
    pub agent_dir: PathBuf,
}

/// What starting the agents needs to know of the region.
pub struct Region<'a> {
    pub state: &'a AppState,
    pub url: &'a str,
    pub agent_bin: &'a Path,
    pub root: &'a Path,
    /// The coordinator's own address: a lone test-driver agent listens beside it.
    pub near: IpAddr,
}

impl Region<'_> {
    /// Starts host `n` of `count` (enrolling its agent the first time).
    pub async fn start_host(
        &self,
        n: usize,
        count: usize,
        libvirt: &Libvirt,
    ) -> anyhow::Result<DevHost> {
        let name = format!("hv{n}");
        let dir = self.root.join("hosts").join(&name);
        let (daemon, uri, migration_uri, address) = match libvirt {
            Libvirt::Private => {
                let ip = host_address(n);
                let opts = DaemonOptions {
                    name: name.clone(),
                    dir: dir.join("libvirt"),
                    listen_addr: ip,
                    tcp_port: None,
                    migration_port_min: None,
                };
                let daemon =
                    tokio::task::spawn_blocking(move || PrivateLibvirtd::start(opts)).await??;
                let (uri, mig) = (daemon.unix_uri(), daemon.tcp_uri());
                (Some(daemon), uri, Some(mig), IpAddr::V4(ip))
            }
            Libvirt::Uri(uri) if count == 1 => (None, uri.clone(), None, self.near),
            Libvirt::Uri(uri) => (None, uri.clone(), None, IpAddr::V4(host_address(n))),
        };
        let agent_dir = dir.join("agent");
        let address = self.enrolled(&agent_dir, address, &name).await?;
        let mut cmd = Command::new(self.agent_bin);
        cmd.args(["run", "--libvirt-uri", &uri])
            .args(["--listen", &SocketAddr::new(address, 0).to_string()])
            .arg("--data-dir")
            .arg(&agent_dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(mig) = &migration_uri {
            cmd.args(["--migration-uri", mig]);
        }
        let agent = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.agent_bin.display()))?;
        Ok(DevHost {
            name,
            address,
            daemon,
            agent,
            agent_dir,
        })
    }

    /// Enrolls the agent in `dir` unless an earlier run did (then points it at this run's
    /// coordinator); the address its certificate names.
    async fn enrolled(&self, dir: &Path, address: IpAddr, name: &str) -> anyhow::Result<IpAddr> {
        let enrollment = dir.join("agent.toml");
        if enrollment.exists() {
            return repoint_agent(&enrollment, self.url, address);
        }
        let token =
            issue_enrollment_token(self.state, 600_000, &format!("dev {name}"), "dev", None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let status = Command::new(self.agent_bin)
            .args(["enroll", "--coordinator", self.url, "--token", &token.token])
            .args(["--ca-hash", &token.ca_hash, "--cluster", DEV_CLUSTER])
            .args(["--address", &address.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .status()
            .await
            .with_context(|| format!("starting {}", self.agent_bin.display()))?;
        if !status.success() {
            bail!("the enrollment of {name}'s agent failed ({status})");
        }
        Ok(address)
    }
}

/// An agent enrolled by an earlier run, perhaps on another address: points it at this run's
/// coordinator and returns the address its certificate names (it listens there).
fn repoint_agent(enrollment: &Path, url: &str, fallback: IpAddr) -> anyhow::Result<IpAddr> {
    let text = std::fs::read_to_string(enrollment)
        .with_context(|| format!("reading {}", enrollment.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", enrollment.display()))?;
    let address = table
        .get("address")
        .and_then(toml::Value::as_str)
        .and_then(|a| a.parse().ok())
        .unwrap_or(fallback);
    if table.get("coordinator").and_then(toml::Value::as_str) != Some(url) {
        table.insert("coordinator".into(), toml::Value::String(url.to_string()));
        write_file(enrollment, toml::to_string(&table)?.as_bytes(), 0o644)?;
    }
    Ok(address)
}

impl DevHost {
    /// Stops the agent (SIGTERM, a grace period, then SIGKILL) and its guests' DHCP servers,
    /// then its libvirtd and every QEMU that daemon runs.
    pub async fn stop(mut self) {
        stop_child(&mut self.agent).await;
        plinth_common::dhcp::stop_all(&self.agent_dir);
        if let Some(mut daemon) = self.daemon.take() {
            let _ = tokio::task::spawn_blocking(move || daemon.stop()).await;
        }
    }
}

/// SIGTERM, a grace period, then SIGKILL.
pub async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
