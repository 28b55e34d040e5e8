//! A real Prometheus server (Debian's `prometheus` package) for the monitoring tests: it
//! listens on a 127.0.0.x address only, keeps its TSDB in a temporary directory, scrapes the
//! given targets every second, and is stopped by its pid when dropped.

use crate::process::Daemon;
use crate::wait_for;
use anyhow::{Context, bail};
use serde_json::Value;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

pub struct Prometheus {
    pub url: String,
    http: reqwest::Client,
    _daemon: Daemon,
    // Last, so the TSDB is removed after the server stopped.
    _dir: TempDir,
}

/// A port free on `ip` now (Prometheus takes no port 0).
pub fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

impl Prometheus {
    /// Starts Prometheus on `ip:port` scraping each of `targets` (`host:port`) every second.
    pub async fn start(ip: Ipv4Addr, port: u16, targets: &[String]) -> anyhow::Result<Prometheus> {
        anyhow::ensure!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: run scripts/install-deps.sh"
        );
        let dir = tempfile::Builder::new().prefix("plinth-prom-").tempdir()?;
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: plinth\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config)?;
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={ip}:{port}"))
        .arg("--log.level=warn");
        let daemon = Daemon::spawn(cmd, &dir.path().join("prometheus.log"))?;
        let url = format!("http://{ip}:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let ready = format!("{url}/-/ready");
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            let http = http.clone();
            let ready = ready.clone();
            async move {
                let ok = http.get(&ready).send().await?.status().is_success();
                Ok(ok.then_some(()))
            }
        })
        .await
        .with_context(|| {
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        })?;
        Ok(Prometheus {
            url,
            http,
            _daemon: daemon,
            _dir: dir,
        })
    }

    /// An instant query's result vector.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<Value>> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            bail!("query {promql}: {body}");
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The values of an instant query, one per series.
    pub async fn values(&self, promql: &str) -> anyhow::Result<Vec<f64>> {
        Ok(self
            .query(promql)
            .await?
            .iter()
            .filter_map(|s| s["value"][1].as_str().and_then(|v| v.parse().ok()))
            .collect())
    }
}

/// `promtool check metrics` on `text`: the problems it found, one line each, or an error when
/// it could not parse the text (exit status 1) or failed otherwise.
pub fn promtool_check(text: &str) -> anyhow::Result<Vec<String>> {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: clean; 3: lint problems (listed); anything else: it could not read the text.
    match out.status.code() {
        Some(0) | Some(3) => Ok(said
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        code => bail!("promtool check metrics exited {code:?}: {said}"),
    }
}
