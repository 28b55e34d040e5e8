//! Benchmark: the agent's `/metrics` beside the two exporters it replaces on a hypervisor,
//! on this machine, in one run: Debian's `prometheus-node-exporter` restricted to the
//! collectors that make the same host families (cpu, diskstats, filesystem, loadavg, meminfo,
//! netdev, netstat, sockstat, stat) and Debian's `prometheus-libvirt-exporter` against the same
//! libvirt URI as the agent: libvirt's test driver loaded with `DOMAINS` running domains (the
//! test driver reports no block or interface numbers). It prints the median and p90 of one
//! scrape of each, and of both exporters one after the other (as Prometheus scrapes two
//! targets), the memory of the agent against the two exporters together, and series served.
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench metrics`
//! (needs both exporters: scripts/install-deps.sh installs them).
//! Goals (issue 22): agent scrape <= 0.25x the two exporters' scrapes together; agent RSS
//! <= 0.5x the two exporters' RSS together; agent anonymous memory <= 0.5x node_exporter's.
//! Scrapes go round the three over one keep-alive connection each, as Prometheus would (no
//! compression asked). The program prints a report and exits 0 whether or not the goals are
//! met.

use plinth_e2e::process::Daemon;
use plinth_e2e::prometheus::free_port;
use plinth_e2e::{Region, wait_for};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const LIBVIRT_EXPORTER: &str = "/usr/bin/prometheus-libvirt-exporter";
const SCRAPES: usize = 200;
const WARMUP: usize = 20;
const DOMAINS: usize = 50;
const AGENT_IP: &str = "127.0.0.111";
const EXPORTER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 112);
const LIBVIRT_EXPORTER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 123);
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

fn node_exporter(port: u16, log: &std::path::Path) -> anyhow::Result<Daemon> {
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
    Daemon::spawn(cmd, log)
}

fn libvirt_exporter(port: u16, uri: &str, log: &std::path::Path) -> anyhow::Result<Daemon> {
    let mut cmd = Command::new(LIBVIRT_EXPORTER);
    cmd.arg(format!("--web.listen-address={LIBVIRT_EXPORTER_IP}:{port}"))
        .arg(format!("--libvirt.uri={uri}"));
    Daemon::spawn(cmd, log)
}

fn new_timing() -> Timing {
    Timing {
        samples: Vec::with_capacity(SCRAPES),
        bytes: 0,
        series: 0,
    }
}

/// Memory of one process, KiB: [RSS, peak RSS, anonymous, files, PSS, USS, own executable].
fn memory(pid: u32) -> anyhow::Result<[u64; 7]> {
    let [rss, hwm, anon, file, pss, uss] = rss_kib(pid)?;
    Ok([rss, hwm, anon, file, pss, uss, executable_kib(pid)?])
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    for exe in [NODE_EXPORTER, LIBVIRT_EXPORTER] {
        anyhow::ensure!(
            std::path::Path::new(exe).exists(),
            "{exe} is missing: run scripts/install-deps.sh"
        );
    }
    let region = Region::start().await?;
    region.create_cluster("bench").await?;
    let node = region.dir.path().join("bench-node.xml");
    std::fs::write(&node, test_node(DOMAINS))?;
    // One URI for both: each opens libvirt's test driver on the same node file, so each
    // sees the same DOMAINS running domains.
    let uri = format!("test://{}", node.display());
    let agent = region
        .start_agent_with_args(AGENT_IP, "bench", &uri, Vec::new())
        .await?;
    let agent_url = format!("{}/metrics", agent.metrics_base().await?);

    let port = free_port(EXPORTER_IP)?;
    let exporter = node_exporter(port, &region.dir.path().join("node_exporter.log"))?;
    let exporter_url = format!("http://{EXPORTER_IP}:{port}/metrics");
    let lport = free_port(LIBVIRT_EXPORTER_IP)?;
    let lexporter = libvirt_exporter(lport, &uri, &region.dir.path().join("libvirt_exporter.log"))?;
    let lexporter_url = format!("http://{LIBVIRT_EXPORTER_IP}:{lport}/metrics");

    let agent_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let exporter_http = agent_http.clone();
    let lexporter_http = agent_http.clone();
    for (what, http, url) in [
        ("node_exporter", &exporter_http, &exporter_url),
        ("libvirt exporter", &lexporter_http, &lexporter_url),
    ] {
        wait_for(
            &format!("{what} to answer"),
            Duration::from_secs(30),
            || async { Ok(scrape(http, url).await.ok().map(|_| ())) },
        )
        .await?;
    }
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
    let (_, body) = scrape(&lexporter_http, &lexporter_url).await?;
    let exporter_domains = body
        .lines()
        .filter(|l| l.starts_with("libvirt_domain_info_virtual_cpus{"))
        .count();
    anyhow::ensure!(
        exporter_domains == DOMAINS,
        "the libvirt exporter sees {exporter_domains} domains, want {DOMAINS}"
    );

    for _ in 0..WARMUP {
        scrape(&agent_http, &agent_url).await?;
        scrape(&exporter_http, &exporter_url).await?;
        scrape(&lexporter_http, &lexporter_url).await?;
    }
    let (mut agent_t, mut exporter_t, mut lexporter_t, mut both_t) =
        (new_timing(), new_timing(), new_timing(), new_timing());
    for _ in 0..SCRAPES {
        for (http, url, t) in [
            (&agent_http, &agent_url, &mut agent_t),
            (&exporter_http, &exporter_url, &mut exporter_t),
            (&lexporter_http, &lexporter_url, &mut lexporter_t),
        ] {
            let (took, body) = scrape(http, url).await?;
            t.samples.push(took);
            t.bytes = body.len();
            t.series = count_series(&body);
        }
        // Both exporters one after the other, as one Prometheus scraping two targets.
        let started = Instant::now();
        scrape(&exporter_http, &exporter_url).await?;
        scrape(&lexporter_http, &lexporter_url).await?;
        both_t.samples.push(started.elapsed());
    }
    both_t.series = exporter_t.series + lexporter_t.series;
    both_t.bytes = exporter_t.bytes + lexporter_t.bytes;
    let pid = |d: &Daemon, what: &str| d.pid().ok_or_else(|| anyhow::anyhow!("{what} pid"));
    let agent_pid = agent.pid().ok_or_else(|| anyhow::anyhow!("agent pid"))?;
    let a = memory(agent_pid)?;
    let e = memory(pid(&exporter, "node_exporter")?)?;
    let l = memory(pid(&lexporter, "libvirt exporter")?)?;
    let both: Vec<u64> = e.iter().zip(l.iter()).map(|(x, y)| x + y).collect();

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    println!(
        "metrics benchmark: {SCRAPES} rounds, one scrape of each per round, one keep-alive connection each; \
         libvirt test driver with {DOMAINS} running domains for the agent and the libvirt exporter"
    );
    println!(
        "{:<28}{:>16}{:>16}{:>18}{:>20}",
        "", "plinth-agent", "node_exporter", "libvirt_exporter", "both exporters"
    );
    let mut rows: Vec<(&str, String, String, String, String)> = vec![
        (
            "median scrape",
            ms(agent_t.quantile(0.5)),
            ms(exporter_t.quantile(0.5)),
            ms(lexporter_t.quantile(0.5)),
            ms(both_t.quantile(0.5)),
        ),
        (
            "p90 scrape",
            ms(agent_t.quantile(0.9)),
            ms(exporter_t.quantile(0.9)),
            ms(lexporter_t.quantile(0.9)),
            ms(both_t.quantile(0.9)),
        ),
    ];
    for (i, label) in [
        "RSS after",
        "peak RSS (VmHWM)",
        "  of it anonymous",
        "  of it files (code, libs)",
        "PSS (shared pages split)",
        "USS (private pages only)",
        "    own executable resident",
    ]
    .into_iter()
    .enumerate()
    {
        rows.push((label, mib(a[i]), mib(e[i]), mib(l[i]), mib(both[i])));
    }
    for (label, t) in [("series served", 0), ("response bytes", 1)] {
        let pick = |x: &Timing| if t == 0 { x.series } else { x.bytes }.to_string();
        rows.push((
            label,
            pick(&agent_t),
            pick(&exporter_t),
            pick(&lexporter_t),
            pick(&both_t),
        ));
    }
    for (label, w, x, y, z) in rows {
        println!("{label:<28}{w:>16}{x:>16}{y:>18}{z:>20}");
    }
    println!(
        "(the agent's series include {instance_series} per-instance ones for {DOMAINS} test-driver domains; \
         its memory is the whole agent: mTLS API, libvirt client, heartbeats, history ring)"
    );
    let scrape_ratio = agent_t.quantile(0.5).as_secs_f64() / both_t.quantile(0.5).as_secs_f64();
    let rss_ratio = a[0] as f64 / both[0] as f64;
    let anon_ratio = a[2] as f64 / e[2] as f64;
    let verdict = |r: f64, goal: f64| if r <= goal { "met" } else { "NOT met" };
    println!(
        "goal agent scrape <= 0.25x both exporters': {scrape_ratio:.2}x ({})",
        verdict(scrape_ratio, 0.25)
    );
    println!(
        "goal agent RSS <= 0.5x both exporters' RSS: {rss_ratio:.2}x ({})",
        verdict(rss_ratio, 0.5)
    );
    println!(
        "goal agent anonymous <= 0.5x node_exporter's: {anon_ratio:.2}x ({})",
        verdict(anon_ratio, 0.5)
    );
    if std::env::var_os("METRICS_BENCH_MAPS").is_some() {
        for (who, pid) in [
            ("plinth-agent", agent_pid),
            ("node_exporter", pid(&exporter, "node_exporter")?),
            ("libvirt_exporter", pid(&lexporter, "libvirt exporter")?),
        ] {
            println!("{who}: largest resident mappings");
            for (kib, path) in top_mappings(pid, 8)? {
                println!("  {:>8} KiB  {path}", kib);
            }
        }
    }
    drop(lexporter);
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
