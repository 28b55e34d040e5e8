//! Benchmark: the agent's `/metrics` beside Debian's `prometheus-node-exporter` restricted to
//! the collectors that make the same host families (cpu, diskstats, filesystem, loadavg,
//! meminfo, netdev, netstat, sockstat, stat), on this machine, in one run: the median (and
//! p90) time of 200 scrapes of each, and the resident memory of each process afterwards.
//! The agent also serves per-instance series: it manages libvirt's test driver loaded with
//! `DOMAINS` running domains (the test driver reports no block or interface numbers, so
//! those are the three `libvirt_domain_info_*` families per domain).
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench metrics`
//! (needs `prometheus-node-exporter`: scripts/install-deps.sh installs it).
//! Goal (issue 6): agent median ≤ 0.5 × node_exporter's, agent RSS ≤ 0.5 × node_exporter's.
//! Scrapes alternate between the two over one keep-alive connection each, as Prometheus
//! would (no compression asked: both answer in plain text). The program prints a report and
//! exits 0 whether or not the goals are met.

use plinth_e2e::process::Daemon;
use plinth_e2e::prometheus::free_port;
use plinth_e2e::{Region, wait_for};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const SCRAPES: usize = 200;
const WARMUP: usize = 20;
const DOMAINS: usize = 50;
const AGENT_IP: &str = "127.0.0.111";
const EXPORTER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 112);
/// What Prometheus 2.x sends.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A libvirt test-driver node with `n` running domains named like instances.
fn test_node(n: usize) -> String {
    let mut xml = String::from(
        "<node>\n<cpu><nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>1</threads>\
         <active>16</active><mhz>2000</mhz><model>x86_64</model></cpu>\n<memory>268435456</memory>\n",
    );
    for i in 0..n {
        xml.push_str(&format!(
            "<domain type='test'><name>inst-{i:012x}</name>\
             <uuid>6695eb01-f6a4-8304-79aa-{i:012x}</uuid><memory>1048576</memory>\
             <currentMemory>1048576</currentMemory><vcpu>2</vcpu><os><type>hvm</type></os></domain>\n"
        ));
    }
    xml.push_str("</node>\n");
    xml
}

/// VmRSS, VmHWM, RssAnon, RssFile, Pss (shared pages divided among their users) and USS
/// (pages no other process maps) of a process, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<[u64; 6]> {
    let kib = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok([
        kib(&status, "VmRSS:"),
        kib(&status, "VmHWM:"),
        kib(&status, "RssAnon:"),
        kib(&status, "RssFile:"),
        kib(&rollup, "Pss:"),
        kib(&rollup, "Private_Clean:") + kib(&rollup, "Private_Dirty:"),
    ])
}

struct Timing {
    samples: Vec<Duration>,
    bytes: usize,
    series: usize,
}

impl Timing {
    fn quantile(&self, q: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() - 1) as f64 * q).round() as usize]
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let resp = http.get(url).header("accept", ACCEPT).send().await?;
    anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
    let body = resp.text().await?;
    Ok((started.elapsed(), body))
}

fn count_series(body: &str) -> usize {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::path::Path::new(NODE_EXPORTER).exists(),
        "{NODE_EXPORTER} is missing: run scripts/install-deps.sh"
    );
    let region = Region::start().await?;
    region.create_cluster("bench").await?;
    let node = region.dir.path().join("bench-node.xml");
    std::fs::write(&node, test_node(DOMAINS))?;
    let agent = region
        .start_agent_with_args(
            AGENT_IP,
            "bench",
            &format!("test://{}", node.display()),
            Vec::new(),
        )
        .await?;
    let agent_url = format!("{}/metrics", agent.metrics_base().await?);

    let port = free_port(EXPORTER_IP)?;
    let mut cmd = Command::new(NODE_EXPORTER);
    cmd.arg(format!("--web.listen-address={EXPORTER_IP}:{port}"))
        .arg("--collector.disable-defaults");
    for c in [
        "cpu",
        "diskstats",
        "filesystem",
        "loadavg",
        "meminfo",
        "netdev",
        "netstat",
        "sockstat",
        "stat",
    ] {
        cmd.arg(format!("--collector.{c}"));
    }
    let exporter = Daemon::spawn(cmd, &region.dir.path().join("node_exporter.log"))?;
    let exporter_url = format!("http://{EXPORTER_IP}:{port}/metrics");

    let agent_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let exporter_http = agent_http.clone();
    wait_for(
        "node_exporter to answer",
        Duration::from_secs(30),
        || async { Ok(scrape(&exporter_http, &exporter_url).await.ok().map(|_| ())) },
    )
    .await?;
    let (_, body) = scrape(&agent_http, &agent_url).await?;
    let instance_series = body
        .lines()
        .filter(|l| l.starts_with("libvirt_domain_"))
        .count();
    anyhow::ensure!(
        instance_series >= DOMAINS * 3,
        "the agent serves {instance_series} per-instance series, want {}",
        DOMAINS * 3
    );

    for _ in 0..WARMUP {
        scrape(&agent_http, &agent_url).await?;
        scrape(&exporter_http, &exporter_url).await?;
    }
    let mut agent_t = Timing {
        samples: Vec::with_capacity(SCRAPES),
        bytes: 0,
        series: 0,
    };
    let mut exporter_t = Timing {
        samples: Vec::with_capacity(SCRAPES),
        bytes: 0,
        series: 0,
    };
    for _ in 0..SCRAPES {
        for (http, url, t) in [
            (&agent_http, &agent_url, &mut agent_t),
            (&exporter_http, &exporter_url, &mut exporter_t),
        ] {
            let (took, body) = scrape(http, url).await?;
            t.samples.push(took);
            t.bytes = body.len();
            t.series = count_series(&body);
        }
    }
    let agent_pid = agent.pid().ok_or_else(|| anyhow::anyhow!("agent pid"))?;
    let exporter_pid = exporter
        .pid()
        .ok_or_else(|| anyhow::anyhow!("node_exporter pid"))?;
    let [
        agent_rss,
        agent_hwm,
        agent_anon,
        agent_file,
        agent_pss,
        agent_uss,
    ] = rss_kib(agent_pid)?;
    let [
        exporter_rss,
        exporter_hwm,
        exporter_anon,
        exporter_file,
        exporter_pss,
        exporter_uss,
    ] = rss_kib(exporter_pid)?;

    let agent_exe = executable_kib(agent_pid)?;
    let exporter_exe = executable_kib(exporter_pid)?;

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    println!(
        "metrics benchmark: {SCRAPES} scrapes each, alternating, one keep-alive connection each"
    );
    println!("{:<28}{:>18}{:>18}", "", "plinth-agent", "node_exporter");
    for (label, a, e) in [
        (
            "median scrape",
            ms(agent_t.quantile(0.5)),
            ms(exporter_t.quantile(0.5)),
        ),
        (
            "p90 scrape",
            ms(agent_t.quantile(0.9)),
            ms(exporter_t.quantile(0.9)),
        ),
        ("RSS after", mib(agent_rss), mib(exporter_rss)),
        ("peak RSS (VmHWM)", mib(agent_hwm), mib(exporter_hwm)),
        ("  of it anonymous", mib(agent_anon), mib(exporter_anon)),
        (
            "  of it files (code, libs)",
            mib(agent_file),
            mib(exporter_file),
        ),
        ("    its own executable", mib(agent_exe), mib(exporter_exe)),
        (
            "    shared libraries",
            mib(agent_file.saturating_sub(agent_exe)),
            mib(exporter_file.saturating_sub(exporter_exe)),
        ),
        (
            "PSS (shared pages split)",
            mib(agent_pss),
            mib(exporter_pss),
        ),
        (
            "USS (private pages only)",
            mib(agent_uss),
            mib(exporter_uss),
        ),
        (
            "series served",
            agent_t.series.to_string(),
            exporter_t.series.to_string(),
        ),
        (
            "response bytes",
            agent_t.bytes.to_string(),
            exporter_t.bytes.to_string(),
        ),
    ] {
        println!("{label:<28}{a:>18}{e:>18}");
    }
    println!(
        "(the agent's series include {instance_series} per-instance ones for {DOMAINS} test-driver domains, \
         and its RSS is the whole agent: mTLS API, libvirt client, heartbeats, history ring)"
    );
    let time_ratio = agent_t.quantile(0.5).as_secs_f64() / exporter_t.quantile(0.5).as_secs_f64();
    let rss_ratio = agent_rss as f64 / exporter_rss as f64;
    let verdict = |r: f64| if r <= 0.5 { "met" } else { "NOT met" };
    println!(
        "goal scrape <= 0.5x: {time_ratio:.2}x ({}); goal RSS <= 0.5x: {rss_ratio:.2}x ({})",
        verdict(time_ratio),
        verdict(rss_ratio)
    );
    if std::env::var_os("METRICS_BENCH_MAPS").is_some() {
        for (who, pid) in [("plinth-agent", agent_pid), ("node_exporter", exporter_pid)] {
            println!("{who}: largest resident mappings");
            for (kib, path) in top_mappings(pid, 8)? {
                println!("  {:>8} KiB  {path}", kib);
            }
        }
    }
    drop(exporter);
    drop(agent);
    Ok(())
}

/// The `n` mappings (by file, or [anon]) with the most resident memory.
fn top_mappings(pid: u32, n: usize) -> anyhow::Result<Vec<(u64, String)>> {
    let mut all: Vec<(u64, String)> = resident_by_mapping(pid)?
        .into_iter()
        .map(|(p, k)| (k, p))
        .collect();
    all.sort_by(|a, b| b.cmp(a));
    all.truncate(n);
    Ok(all)
}

/// Resident KiB of a process's own executable file (its code and constant data).
fn executable_kib(pid: u32) -> anyhow::Result<u64> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let exe = exe.to_string_lossy();
    Ok(resident_by_mapping(pid)?
        .get(exe.as_ref())
        .copied()
        .unwrap_or(0))
}

/// Resident KiB of each mapped file, anonymous memory summed as [anon].
fn resident_by_mapping(pid: u32) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut by_path = std::collections::HashMap::<String, u64>::new();
    let mut current = String::new();
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            let kib: u64 = kib
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .unwrap_or(0);
            *by_path.entry(current.clone()).or_default() += kib;
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            current = line
                .split_whitespace()
                .nth(5)
                .unwrap_or("[anon]")
                .to_string();
        }
    }
    Ok(by_path)
}
