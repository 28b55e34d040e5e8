//! A highly available region for tests and benchmarks (issue 20): a real PostgreSQL on one
//! 127.0.0.x address and coordinators on the addresses after it, the first made by
//! `init --ha`, the others by `join` with its key; calls to any member; agents enrolled
//! through one. Every process is stopped by its pid (`Daemon`) when the test ends.

use crate::process::Daemon;
use crate::{Agent, bin, wait_for};
use plinth_common::tls::client_config;
use plinth_coordinator::dev::postgres::TempPostgres;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Short, so that the tests see takeovers within seconds.
pub const LEASE_TTL: &str = "3s";
pub const TAKEOVER_WITHIN: Duration = Duration::from_secs(20);

pub struct Coordinator {
    pub name: String,
    pub data: PathBuf,
    pub log: PathBuf,
    pub url: String,
    pub metrics: String,
    pub daemon: Daemon,
    /// Its `plinth-coordinator` arguments.
    pub args: Vec<String>,
}

pub struct Ha {
    pub dir: tempfile::TempDir,
    pub admin_token: String,
    pub http: reqwest::Client,
    pub members: Vec<Coordinator>,
    /// The region's database (`postgres://...`).
    pub database_url: String,
    /// The server it is on, when the region started its own.
    pub pg: Option<TempPostgres>,
}

pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

pub fn word(text: &str, prefix: &str) -> anyhow::Result<String> {
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no {prefix}... in {text}"))
}

pub async fn read_addr(path: &Path) -> anyhow::Result<String> {
    wait_for(
        &format!("{} to appear", path.display()),
        Duration::from_secs(30),
        || async {
            Ok(std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string()))
        },
    )
    .await
}

/// Starts PostgreSQL on 127.0.0.`pg` and `n` coordinators on the addresses after it: the
/// first made by `init --ha`, the others by `join` with its key.
pub async fn start(pg: u8, n: u8) -> anyhow::Result<Ha> {
    start_with(pg, n, |_| Vec::new()).await
}

/// [`start`], each coordinator served with the flags `extra` gives for the test's directory.
pub async fn start_with(pg: u8, n: u8, extra: impl Fn(&Path) -> Vec<String>) -> anyhow::Result<Ha> {
    let server = TempPostgres::start(std::net::Ipv4Addr::new(127, 0, 0, pg))?;
    let db = server.create_database("region").await?;
    let mut ha = start_on(&db, pg, n, extra).await?;
    ha.pg = Some(server);
    Ok(ha)
}

/// `n` coordinators on 127.0.0.`base + 1` and after of a region in database `db` (a
/// PostgreSQL run elsewhere), served with the flags `extra` gives for the test's directory.
pub async fn start_on(
    db: &str,
    base: u8,
    n: u8,
    extra: impl Fn(&Path) -> Vec<String>,
) -> anyhow::Result<Ha> {
    plinth_common::tls::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let db = db.to_string();
    let data = |i: u8| dir.path().join(format!("c{i}"));
    let ip = |i: u8| format!("127.0.0.{}", base + i);
    let init = run(Command::new(bin("plinth-coordinator"))
        .args(["init", "--ha", "--database-url", &db, "--san", &ip(1)])
        .arg("--data-dir")
        .arg(data(1)))?;
    let admin_token = word(&init, "tok-")?;
    let key = word(&init, "pjk-")?;
    // The same database refuses a second region.
    let again = Command::new(bin("plinth-coordinator"))
        .args(["init", "--database-url", &db])
        .arg("--data-dir")
        .arg(dir.path().join("second"))
        .output()?;
    anyhow::ensure!(!again.status.success(), "a second init on one database");
    anyhow::ensure!(
        String::from_utf8_lossy(&again.stderr).contains("already holds a region"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for i in 2..=n {
        let joined = run(Command::new(bin("plinth-coordinator"))
            .args([
                "join",
                "--database-url",
                &db,
                "--key",
                &key,
                "--san",
                &ip(i),
            ])
            .arg("--data-dir")
            .arg(data(i)))?;
        anyhow::ensure!(joined.contains("Joined the region"), "{joined}");
    }
    let mut members = Vec::new();
    for i in 1..=n {
        let name = format!("c{i}");
        let log = dir.path().join(format!("{name}.log"));
        let config = data(i).join("coordinator.toml");
        let mut args = vec![
            "serve".to_string(),
            "--config".to_string(),
            config.to_string_lossy().into_owned(),
        ];
        for (flag, value) in [
            ("--listen", format!("{}:0", ip(i))),
            ("--metrics-listen", format!("{}:0", ip(i))),
            ("--job-lease-ttl", LEASE_TTL.to_string()),
            ("--coordinator-name", name.clone()),
        ] {
            args.extend([flag.to_string(), value]);
        }
        args.extend(extra(dir.path()));
        let (daemon, url, metrics) = serve(&args, &data(i), &log).await?;
        members.push(Coordinator {
            name,
            data: data(i),
            log,
            url,
            metrics,
            daemon,
            args,
        });
    }
    // Every member has the one region CA.
    let ca_pem = std::fs::read_to_string(data(1).join("ca.pem"))?;
    for m in &members[1..] {
        anyhow::ensure!(std::fs::read_to_string(m.data.join("ca.pem"))? == ca_pem);
    }
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&ca_pem, None)?)
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(Ha {
        dir,
        admin_token,
        http,
        members,
        database_url: db,
        pg: None,
    })
}

/// The `serve` flags of coordinators sharing one image directory under the test's `dir`
/// (as an NFS mount would be), and `more`.
pub fn shared_images(dir: &Path, more: &[&str]) -> Vec<String> {
    let images = dir.join("shared-images");
    let mut args = vec![
        "--images-dir".to_string(),
        images.to_string_lossy().into_owned(),
    ];
    args.extend(more.iter().map(|m| m.to_string()));
    args
}

/// Starts `plinth-coordinator` with `args` on data directory `data`, logging to `log`; waits
/// for its API and `/metrics` addresses.
async fn serve(
    args: &[String],
    data: &Path,
    log: &Path,
) -> anyhow::Result<(Daemon, String, String)> {
    for file in ["coordinator.addr", "metrics.addr"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    let mut cmd = Command::new(bin("plinth-coordinator"));
    cmd.args(args);
    let daemon = Daemon::spawn(cmd, log)?;
    let bound = read_addr(&data.join("coordinator.addr")).await;
    let url = format!(
        "https://{}",
        bound.map_err(|e| e.context(std::fs::read_to_string(log).unwrap_or_default()))?
    );
    let metrics = format!(
        "http://{}/metrics",
        read_addr(&data.join("metrics.addr")).await?
    );
    Ok((daemon, url, metrics))
}

impl Coordinator {
    /// Starts it again (after a kill, say), on a new port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let (daemon, url, metrics) = serve(&self.args, &self.data, &self.log).await?;
        (self.daemon, self.url, self.metrics) = (daemon, url, metrics);
        Ok(())
    }
}

impl Ha {
    pub async fn call(
        &self,
        at: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.members[at].url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Whether member `at` says it holds the job lease (none when it does not answer).
    pub async fn holds(&self, at: usize) -> Option<bool> {
        let text = reqwest::get(&self.members[at].metrics)
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let line = text
            .lines()
            .find(|l| l.starts_with("plinth_coordinator_job_lease_held "))?;
        Some(line.ends_with(" 1"))
    }

    /// The one member holding the lease among `alive`, once exactly one says so.
    pub async fn holder(&self, alive: &[usize]) -> anyhow::Result<usize> {
        wait_for(
            "exactly one coordinator to hold the job lease",
            TAKEOVER_WITHIN,
            || async {
                let mut holding = Vec::new();
                for &i in alive {
                    if self.holds(i).await == Some(true) {
                        holding.push(i);
                    }
                }
                Ok((holding.len() == 1).then(|| holding[0]))
            },
        )
        .await
    }

    /// Enrolls an agent on `ip` in `cluster` through member `at` and starts it (libvirt's test
    /// driver), reporting to that member only.
    pub async fn agent(&self, at: usize, ip: &str, cluster: &str) -> anyhow::Result<Agent> {
        self.agent_with(at, ip, cluster, Vec::new()).await
    }

    /// [`Ha::agent`] with more `run` flags.
    pub async fn agent_with(
        &self,
        at: usize,
        ip: &str,
        cluster: &str,
        args: Vec<String>,
    ) -> anyhow::Result<Agent> {
        let (status, token) = self
            .call(
                at,
                reqwest::Method::POST,
                "/v1/enrollment-tokens",
                Some(json!({"ttl": "10m"})),
            )
            .await?;
        anyhow::ensure!(status == 201, "enrollment token: {status} {token}");
        let dir = self.dir.path().join(format!("agent-{ip}"));
        let (ok, out) = crate::enroll_at(
            &self.members[at].url,
            &dir,
            ip,
            cluster,
            token["token"].as_str().unwrap_or_default(),
            token["ca_hash"].as_str().unwrap_or_default(),
        )?;
        anyhow::ensure!(ok, "enroll: {out}");
        let log = self.dir.path().join(format!("agent-{ip}.log"));
        let mut agent = Agent::enrolled(dir, ip, "test:///default", args, log)?;
        agent.run()?;
        Ok(agent)
    }

    /// A blank 64 MiB qcow2 uploaded through member `at` as an image of `tenant`; its id.
    pub async fn blank_image(&self, at: usize, tenant: &Value) -> anyhow::Result<String> {
        let path = self.dir.path().join("blank.qcow2");
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg("64M"))?;
        let body = json!({"name": "blank", "tenant_id": tenant, "os_type": "linux",
            "architecture": "x86_64", "platform": "centos", "version": "7.9",
            "target_size_gb": 20});
        let (status, image) = self
            .call(at, reqwest::Method::POST, "/v1/images", Some(body))
            .await?;
        anyhow::ensure!(status == 201, "create image: {status} {image}");
        let id = image["id"].as_str().unwrap_or_default().to_string();
        let resp = self
            .http
            .put(format!("{}/v1/images/{id}/content", self.members[at].url))
            .bearer_auth(&self.admin_token)
            .body(std::fs::read(&path)?)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "upload: {}", resp.text().await?);
        Ok(id)
    }

    /// Cluster `id`, made through member `at`.
    pub async fn cluster(&self, at: usize, id: &str) -> anyhow::Result<()> {
        let (status, body) = self
            .call(
                at,
                reqwest::Method::POST,
                "/v1/clusters",
                Some(json!({"id": id})),
            )
            .await?;
        anyhow::ensure!(status == 201, "cluster: {status} {body}");
        Ok(())
    }

    /// A tenant made through member `at`.
    pub async fn tenant(&self, at: usize) -> anyhow::Result<Value> {
        let body = json!({"email": "a@example.com", "name": "A"});
        let (status, tenant) = self
            .call(at, reqwest::Method::POST, "/v1/tenants", Some(body))
            .await?;
        anyhow::ensure!(status == 201, "tenant: {status} {tenant}");
        Ok(tenant)
    }

    /// An import of `url` (content `sha256`) as image `name` of `tenant`, asked of member `at`;
    /// the accepted image.
    pub async fn import(
        &self,
        at: usize,
        tenant: &Value,
        name: &str,
        url: &str,
        sha256: &str,
    ) -> anyhow::Result<Value> {
        let body = json!({"name": name, "tenant_id": tenant["id"], "os_type": "linux",
            "architecture": "x86_64", "platform": "centos", "version": "7.9",
            "target_size_gb": 20, "sha256": sha256, "url": url});
        let (status, image) = self
            .call(at, reqwest::Method::POST, "/v1/images/import", Some(body))
            .await?;
        anyhow::ensure!(status == 202, "import: {status} {image}");
        Ok(image)
    }

    pub fn log(&self, at: usize) -> String {
        std::fs::read_to_string(&self.members[at].log).unwrap_or_default()
    }
}
