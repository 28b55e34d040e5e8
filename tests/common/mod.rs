//! Test harness: starts the real `plinth-coordinator` and `plinth-agent` binaries on loopback
//! addresses (port 0), talks to them over HTTPS, and stops every process it started by its pid.

#![allow(clippy::unwrap_used)]

pub mod agent_api;
pub mod baremetal;
pub mod bmc;
pub mod cloud_guest;
pub mod devices;
pub mod drain;
pub mod ha;
pub mod instances;
pub mod libvirtd;
pub mod patroni;
pub mod process;
pub mod prometheus;
pub mod router;
pub mod servers;
pub mod sse;

use anyhow::{Context, bail};
use plinth_common::tls::client_config;
use process::Daemon;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The directory holding the workspace's binaries (beside `deps/` where this test runs).
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("PLINTH_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some`, or fails after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > until {
            bail!("timed out after {deadline:?} waiting for {what} (last error: {last_err:?})");
        }
        tokio::time::sleep(POLL).await;
    }
}

pub struct Region {
    pub dir: TempDir,
    pub url: String,
    pub admin_token: String,
    pub ca_pem: String,
    pub http: reqwest::Client,
    /// `None`: a client of coordinators run elsewhere ([`Region::attached`]).
    coordinator: Option<Daemon>,
    opts: RegionOptions,
}

fn spawn_coordinator(root: &Path, opts: &RegionOptions, listen: &str) -> anyhow::Result<Daemon> {
    let data = root.join("coordinator");
    let _ = std::fs::remove_file(data.join("coordinator.addr"));
    let mut cmd = Command::new(bin("plinth-coordinator"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", listen]);
    if let Some(ttl) = &opts.agent_cert_ttl {
        cmd.args(["--agent-cert-ttl", ttl]);
    }
    if let Some(ca) = &opts.import_ca_file {
        cmd.arg("--import-ca-file").arg(ca);
    }
    cmd.args(&opts.extra_args);
    Daemon::spawn(cmd, &root.join("coordinator.log"))
}

async fn wait_bound(data: &Path) -> anyhow::Result<String> {
    let addr_file = data.join("coordinator.addr");
    wait_for(
        "the coordinator to bind",
        Duration::from_secs(30),
        || async {
            Ok(std::fs::read_to_string(&addr_file)
                .ok()
                .map(|s| s.trim().to_string()))
        },
    )
    .await
}

#[derive(Debug, Default, Clone)]
pub struct RegionOptions {
    pub agent_cert_ttl: Option<String>,
    /// Extra CA (PEM file) the coordinator trusts for https imports.
    pub import_ca_file: Option<PathBuf>,
    /// More `serve` flags, e.g. `--migration-attempts 1`.
    pub extra_args: Vec<String>,
}

impl Region {
    pub async fn start() -> anyhow::Result<Region> {
        Region::start_with(RegionOptions::default()).await
    }

    pub async fn start_with(opts: RegionOptions) -> anyhow::Result<Region> {
        plinth_common::tls::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("coordinator");
        let out = Command::new(bin("plinth-coordinator"))
            .arg("init")
            .arg("--data-dir")
            .arg(&data)
            .output()?;
        if !out.status.success() {
            bail!("init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8(out.stdout)?;
        let admin_token = stdout
            .split_whitespace()
            .find(|w| w.starts_with("tok-"))
            .context("init printed no admin token")?
            .to_string();
        let coordinator = spawn_coordinator(dir.path(), &opts, "127.0.0.1:0")?;
        let addr = wait_bound(&data).await?;
        let ca_pem = std::fs::read_to_string(data.join("ca.pem"))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(client_config(&ca_pem, None)?)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Region {
            dir,
            url: format!("https://{addr}"),
            admin_token,
            ca_pem,
            http,
            coordinator: Some(coordinator),
            opts,
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("coordinator")
    }

    /// Sends a request with `token` (or none) and returns the status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, Some(&self.admin_token), None)
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::DELETE, path, Some(&self.admin_token), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(
            reqwest::Method::POST,
            path,
            Some(&self.admin_token),
            Some(body),
        )
        .await
    }

    pub async fn create_cluster(&self, id: &str) -> anyhow::Result<()> {
        let (status, body) = self.post("/v1/clusters", json!({"id": id})).await?;
        anyhow::ensure!(status == 201, "create cluster {id}: {status} {body}");
        Ok(())
    }

    /// A new one-time enrollment token: (token, ca_hash).
    pub async fn enrollment_token(&self, ttl: &str) -> anyhow::Result<(String, String)> {
        let (status, body) = self
            .post("/v1/enrollment-tokens", json!({"ttl": ttl}))
            .await?;
        anyhow::ensure!(status == 201, "enrollment token: {status} {body}");
        Ok((
            body["token"].as_str().context("token")?.into(),
            body["ca_hash"].as_str().context("ca_hash")?.into(),
        ))
    }

    /// Runs `plinth-agent enroll`; returns its exit success and combined output.
    pub fn enroll(
        &self,
        agent_dir: &Path,
        ip: &str,
        cluster: &str,
        token: &str,
        ca_hash: &str,
    ) -> anyhow::Result<(bool, String)> {
        enroll_at(&self.url, agent_dir, ip, cluster, token, ca_hash)
    }

    /// Enrolls and starts an agent on `ip` (a distinct 127.0.0.x) against libvirt's test driver.
    pub async fn start_agent(&self, ip: &str, cluster: &str) -> anyhow::Result<Agent> {
        self.start_agent_with_uri(ip, cluster, "test:///default")
            .await
    }

    /// Enrolls and starts an agent on `ip` against `libvirt_uri`, e.g. a real daemon's
    /// [`libvirtd::LibvirtDaemon::unix_uri`].
    pub async fn start_agent_with_uri(
        &self,
        ip: &str,
        cluster: &str,
        libvirt_uri: &str,
    ) -> anyhow::Result<Agent> {
        self.start_agent_with_args(ip, cluster, libvirt_uri, Vec::new())
            .await
    }

    /// Like [`Region::start_agent_with_uri`], offering `migration_uri` (a daemon's
    /// [`libvirtd::LibvirtDaemon::tcp_uri`]) to other hosts for live migrations.
    pub async fn start_migrating_agent(
        &self,
        ip: &str,
        cluster: &str,
        libvirt_uri: &str,
        migration_uri: &str,
    ) -> anyhow::Result<Agent> {
        self.start_migrating_agent_with(ip, cluster, libvirt_uri, migration_uri, &[])
            .await
    }

    /// [`Region::start_migrating_agent`] with more `run` flags.
    pub async fn start_migrating_agent_with(
        &self,
        ip: &str,
        cluster: &str,
        libvirt_uri: &str,
        migration_uri: &str,
        extra: &[String],
    ) -> anyhow::Result<Agent> {
        let mut args = vec!["--migration-uri".to_string(), migration_uri.to_string()];
        args.extend_from_slice(extra);
        self.start_agent_with_args(ip, cluster, libvirt_uri, args)
            .await
    }

    /// Enrolls and starts an agent on `ip` (libvirt's test driver) with more `run` flags,
    /// e.g. `--ipmi false`.
    pub async fn start_agent_with_flags(
        &self,
        ip: &str,
        cluster: &str,
        flags: &[&str],
    ) -> anyhow::Result<Agent> {
        let args = flags.iter().map(|f| f.to_string()).collect();
        self.start_agent_with_args(ip, cluster, "test:///default", args)
            .await
    }

    /// Enrolls and starts an agent on `ip` against `libvirt_uri` with more `run` flags
    /// (`--sysfs-root` for a fixture tree, say).
    pub async fn start_agent_with_args(
        &self,
        ip: &str,
        cluster: &str,
        libvirt_uri: &str,
        extra_args: Vec<String>,
    ) -> anyhow::Result<Agent> {
        let dir = self.dir.path().join(format!("agent-{ip}"));
        let (token, ca_hash) = self.enrollment_token("10m").await?;
        let (ok, output) = self.enroll(&dir, ip, cluster, &token, &ca_hash)?;
        anyhow::ensure!(ok, "enroll failed: {output}");
        let log = self.dir.path().join(format!("agent-{ip}.log"));
        let mut agent = Agent::enrolled(dir, ip, libvirt_uri, extra_args, log)?;
        agent.run()?;
        Ok(agent)
    }

    /// The host as the API lists it.
    pub async fn host(&self, id: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(&format!("/v1/hosts/{id}")).await?;
        anyhow::ensure!(status == 200, "GET host {id}: {status} {body}");
        Ok(body)
    }

    pub async fn wait_agent(&self, id: &str, want: &str) -> anyhow::Result<Value> {
        wait_for(
            &format!("host {id} agent {want}"),
            Duration::from_secs(30),
            || async {
                let host = self.host(id).await?;
                Ok((host["agent"] == want).then_some(host))
            },
        )
        .await
    }

    /// Runs the `plinth` CLI with `args` as the admin: (succeeded, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let out = Command::new(bin("plinth"))
            .args(args)
            .env("PLINTH_URL", &self.url)
            .env("PLINTH_TOKEN", &self.admin_token)
            .env("PLINTH_CA", self.data_dir().join("ca.pem"))
            .env("HOME", self.dir.path())
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8(out.stdout)?,
            String::from_utf8(out.stderr)?,
        ))
    }

    /// A client of a region whose coordinators this value does not run (`ha::Ha`): calls go
    /// to `url` as `admin_token`; the agents it enrolls keep their files in a directory of
    /// its own.
    pub fn attached(url: &str, admin_token: &str, ca_pem: &str) -> anyhow::Result<Region> {
        Ok(Region {
            dir: tempfile::tempdir()?,
            url: url.to_string(),
            admin_token: admin_token.to_string(),
            ca_pem: ca_pem.to_string(),
            http: reqwest::Client::builder()
                .use_preconfigured_tls(plinth_common::tls::client_config(ca_pem, None)?)
                .timeout(Duration::from_secs(30))
                .build()?,
            coordinator: None,
            opts: RegionOptions::default(),
        })
    }

    pub fn stop(&mut self) {
        if let Some(c) = &mut self.coordinator {
            c.stop();
        }
    }

    /// SIGTERM to the coordinator; fails unless it exits by itself within `deadline`.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.coordinator
            .as_mut()
            .context("this region's coordinators run elsewhere")?
            .terminate(deadline)
    }

    /// The coordinator's log so far (every run of it, appended).
    pub fn coordinator_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("coordinator.log")).unwrap_or_default()
    }

    /// Kills the coordinator at once (SIGKILL: no graceful shutdown), as a crash would.
    pub fn kill(&mut self) {
        if let Some(c) = &mut self.coordinator {
            c.kill();
        }
    }

    /// Starts the coordinator again on the same data directory and address (its agents
    /// keep reaching it).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let listen = self.url.trim_start_matches("https://").to_string();
        self.coordinator = Some(spawn_coordinator(self.dir.path(), &self.opts, &listen)?);
        let addr = wait_bound(&self.data_dir()).await?;
        self.url = format!("https://{addr}");
        Ok(())
    }
}

pub struct Agent {
    pub ip: String,
    pub dir: PathBuf,
    pub host_id: String,
    /// The libvirt the agent manages (`test:///default` unless started with a URI).
    pub libvirt_uri: String,
    /// More `run` flags.
    pub extra_args: Vec<String>,
    daemon: Option<Daemon>,
    log: PathBuf,
}

/// Runs `plinth-agent enroll` against the coordinator at `url`; returns its exit success and
/// combined output.
pub fn enroll_at(
    url: &str,
    agent_dir: &Path,
    ip: &str,
    cluster: &str,
    token: &str,
    ca_hash: &str,
) -> anyhow::Result<(bool, String)> {
    let out = Command::new(bin("plinth-agent"))
        .args(["enroll", "--coordinator", url, "--token", token])
        .args(["--ca-hash", ca_hash, "--cluster", cluster, "--address", ip])
        .arg("--data-dir")
        .arg(agent_dir)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Agent {
    /// The agent `enroll` left in `dir`, on `ip`, not started yet ([`Agent::run`]); it logs
    /// to `log`.
    pub fn enrolled(
        dir: PathBuf,
        ip: &str,
        libvirt_uri: &str,
        extra_args: Vec<String>,
        log: PathBuf,
    ) -> anyhow::Result<Agent> {
        let enrollment = std::fs::read_to_string(dir.join("agent.toml"))?;
        let host_id = enrollment
            .lines()
            .find_map(|l| l.strip_prefix("host_id = "))
            .context("host_id in agent.toml")?
            .trim_matches('"')
            .to_string();
        Ok(Agent {
            ip: ip.to_string(),
            dir,
            host_id,
            libvirt_uri: libvirt_uri.to_string(),
            extra_args,
            daemon: None,
            log,
        })
    }

    /// The agent's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn run(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(bin("plinth-agent"));
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", &format!("{}:0", self.ip)])
            .args(["--libvirt-uri", &self.libvirt_uri]);
        // Short, so that presence tests are quick, unless the test sets its own.
        if !self.extra_args.iter().any(|a| a == "--heartbeat-interval") {
            cmd.args(["--heartbeat-interval", "300ms"]);
        }
        cmd.args(["--metrics-listen", &format!("{}:0", self.ip)])
            .args(&self.extra_args);
        self.daemon = Some(Daemon::spawn(cmd, &self.log)?);
        Ok(())
    }

    /// Kills the agent at once (SIGKILL), as a crash or a lost host would.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// The agent process's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().and_then(Daemon::pid)
    }

    /// Stops the agent process (SIGTERM, then SIGKILL after a grace period) and the DHCP
    /// servers it started, which outlive it.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        plinth_common::dhcp::stop_all(&self.dir);
    }

    /// `http://ip:port` of the agent's `/metrics` listener, once it is bound.
    pub async fn metrics_base(&self) -> anyhow::Result<String> {
        let file = self.dir.join("metrics.addr");
        let addr = wait_for(
            "the agent's /metrics to bind",
            Duration::from_secs(30),
            || async {
                Ok(std::fs::read_to_string(&file)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()))
            },
        )
        .await?;
        Ok(format!("http://{addr}"))
    }

    /// (certificate PEM, key PEM) the agent holds now.
    pub fn credentials(&self) -> anyhow::Result<(String, String)> {
        let text = std::fs::read_to_string(self.dir.join("agent.pem"))?;
        let at = text
            .find("-----BEGIN PRIVATE KEY-----")
            .context("key in agent.pem")?;
        Ok((text[..at].to_string(), text[at..].to_string()))
    }
}

/// A qcow2 image `dir/NAME.qcow2` of `mib` MiB of incompressible data (for imports that must
/// still be running when a test cuts them off, served by `servers::http`'s throttled `slow/`),
/// and its sha256 in hex. Its raw source is left beside it as `NAME.raw`.
pub fn incompressible_qcow2(dir: &Path, name: &str, mib: usize) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let raw = dir.join(format!("{name}.raw"));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&raw, data)?;
    let qcow2 = dir.join(format!("{name}.qcow2"));
    let ok = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img convert failed");
    Ok(hex::encode(Sha256::digest(std::fs::read(&qcow2)?)))
}
