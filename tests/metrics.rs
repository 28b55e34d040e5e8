//! Host monitoring end to end: the agent's `/metrics` passes `promtool check metrics`; a real
//! Prometheus scrapes it every second and every one of the seed's 14 families comes back
//! through Prometheus's HTTP API with plausible values (disk and loopback counters grow while
//! the test writes and sends); libvirt test-driver domains have per-instance series; the
//! coordinator serves the history from the agent and from Prometheus; the CLI prints it.

use plinth_e2e::prometheus::{Prometheus, free_port, promtool_check};
use plinth_e2e::{Region, RegionOptions, bin, wait_for};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

const AGENT_IP: &str = "127.0.0.101";
const PROM_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 102);

/// `(labels, value)` of every sample of `name` in Prometheus text.
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = match series.strip_prefix(name)? {
                "" => String::new(),
                rest if rest.starts_with('{') => rest.to_string(),
                _ => return None,
            };
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

async fn scrape(base: &str, accept: Option<&str>) -> anyhow::Result<(String, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut req = http.get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().await?;
    anyhow::ensure!(resp.status().is_success(), "scrape: {}", resp.status());
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((content_type, resp.text().await?))
}

/// Disk writes that reach the device (each file synced) in a directory on a real disk.
fn write_to_disk(dir: &std::path::Path, round: u32) -> anyhow::Result<()> {
    let path = dir.join(format!("load-{round}.bin"));
    let mut f = std::fs::File::create(&path)?;
    let block = vec![round as u8; 1 << 20];
    for _ in 0..4 {
        f.write_all(&block)?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// Packets on loopback: a burst of bytes through a TCP connection to ourselves.
fn send_on_loopback(ip: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind((ip, 0))?;
    let addr = listener.local_addr()?;
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..32 {
            s.write_all(&chunk)?;
        }
        Ok(())
    });
    let (mut conn, _) = listener.accept()?;
    let mut sink = Vec::new();
    conn.read_to_end(&mut sink)?;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    anyhow::ensure!(sink.len() == 32 * 64 * 1024);
    Ok(())
}

/// The seed's 14 metric families, queried back through Prometheus: each present and
/// plausible for this machine.
async fn check_families(prom: &Prometheus, target: &str) -> anyhow::Result<()> {
    let sel = format!("instance=\"{target}\"");
    let one = |v: Vec<f64>, what: &str| -> anyhow::Result<f64> {
        anyhow::ensure!(v.len() == 1, "{what}: {v:?}");
        Ok(v[0])
    };
    // How much a counter grew over the last minute, summed over its series.
    let growth = |metric: &str, filter: &str| {
        format!(
            "sum(max_over_time({metric}{{{sel}{filter}}}[1m]) - min_over_time({metric}{{{sel}{filter}}}[1m]))"
        )
    };
    for (metric, filter) in [
        ("node_network_receive_bytes_total", ",device=\"lo\""),
        ("node_network_transmit_bytes_total", ",device=\"lo\""),
        ("node_network_receive_packets_total", ",device=\"lo\""),
        ("node_network_transmit_packets_total", ",device=\"lo\""),
        ("node_disk_written_bytes_total", ""),
        ("node_disk_writes_completed_total", ""),
        ("node_cpu_seconds_total", ""),
    ] {
        let grew = one(prom.values(&growth(metric, filter)).await?, metric)?;
        assert!(grew > 0.0, "{metric}{filter} did not grow: {grew}");
    }
    for metric in [
        "node_disk_read_bytes_total",
        "node_disk_reads_completed_total",
    ] {
        let values = prom.values(&format!("{metric}{{{sel}}}")).await?;
        assert!(!values.is_empty(), "{metric}: no series");
        assert!(values.iter().all(|v| *v >= 0.0), "{metric}: {values:?}");
    }
    let cpus = std::fs::read_to_string("/proc/stat")?
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let modes = prom
        .query(&format!("node_cpu_seconds_total{{{sel}}}"))
        .await?;
    assert_eq!(modes.len(), cpus * 8, "8 modes per CPU: {modes:?}");
    for load in ["node_load1", "node_load5", "node_load15"] {
        let v = one(prom.values(&format!("{load}{{{sel}}}")).await?, load)?;
        assert!((0.0..10_000.0).contains(&v), "{load} {v}");
    }
    let total = one(
        prom.values(&format!("node_memory_MemTotal_bytes{{{sel}}}"))
            .await?,
        "MemTotal",
    )?;
    let available = one(
        prom.values(&format!("node_memory_MemAvailable_bytes{{{sel}}}"))
            .await?,
        "MemAvailable",
    )?;
    assert!(
        total > 64.0 * 1024.0 * 1024.0 && available > 0.0 && available <= total,
        "memory {available} of {total}"
    );
    let root_size = one(
        prom.values(&format!(
            "node_filesystem_size_bytes{{{sel},mountpoint=\"/\"}}"
        ))
        .await?,
        "/ size",
    )?;
    let root_avail = one(
        prom.values(&format!(
            "node_filesystem_avail_bytes{{{sel},mountpoint=\"/\"}}"
        ))
        .await?,
        "/ avail",
    )?;
    assert!(
        root_size > 0.0 && root_avail <= root_size,
        "/: {root_avail} of {root_size}"
    );
    // Prometheus's own scrape connection is established while it runs.
    let estab = one(
        prom.values(&format!("node_netstat_Tcp_CurrEstab{{{sel}}}"))
            .await?,
        "CurrEstab",
    )?;
    assert!(estab >= 1.0, "CurrEstab {estab}");
    let inuse = one(
        prom.values(&format!("node_sockstat_TCP_inuse{{{sel}}}"))
            .await?,
        "TCP inuse",
    )?;
    assert!(inuse >= 1.0, "TCP inuse {inuse}");
    let blocked = one(
        prom.values(&format!("node_procs_blocked{{{sel}}}")).await?,
        "procs_blocked",
    )?;
    assert!((0.0..100_000.0).contains(&blocked), "blocked {blocked}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_agent_and_host_detail_shows_history() -> anyhow::Result<()> {
    let prom_port = free_port(PROM_IP)?;
    let prom_url = format!("http://{PROM_IP}:{prom_port}");
    let region = Region::start_with(RegionOptions {
        extra_args: vec!["--prometheus-url".into(), prom_url.clone()],
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let agent = region
        .start_agent_with_args(
            AGENT_IP,
            "az1",
            "test:///default",
            vec!["--metrics-step".into(), "1s".into()],
        )
        .await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let base = agent.metrics_base().await?;

    // The classic text format, as node_exporter serves it, passes promtool.
    let (content_type, text) = scrape(&base, None).await?;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    // promtool parses it; its only complaints are about the camelCase in three names this
    // exporter must keep because node_exporter has them (node_exporter 1.5 draws the same).
    let problems = promtool_check(&text)?;
    let expected: Vec<String> = [
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_netstat_Tcp_CurrEstab",
    ]
    .iter()
    .map(|n| format!("{n} metric names should be written in 'snake_case' not 'camelCase'"))
    .collect();
    assert_eq!(problems, expected, "promtool check metrics on:\n{text}");
    assert!(!text.contains("# EOF"));
    // OpenMetrics to a scraper that asks for it.
    let (content_type, om) =
        scrape(&base, Some("application/openmetrics-text;version=1.0.0")).await?;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(om.ends_with("# EOF\n"));

    // libvirt's test driver runs one domain, "test": its per-instance series are there.
    for name in [
        "libvirt_domain_info_cpu_time_seconds_total",
        "libvirt_domain_info_memory_usage_bytes",
        "libvirt_domain_info_virtual_cpus",
    ] {
        let s = samples(&text, name);
        assert!(
            s.iter()
                .any(|(labels, v)| labels.contains("domain=\"test\"")
                    && labels.contains("uuid=\"")
                    && labels.contains("instance_id=\"\"")
                    && *v >= 0.0),
            "{name}: {s:?}"
        );
    }
    let success = samples(&text, "plinth_collector_success");
    assert_eq!(success.len(), 9, "{success:?}");
    assert!(success.iter().all(|(_, v)| *v == 1.0), "{success:?}");

    let target = base.trim_start_matches("http://").to_string();
    let prom = Prometheus::start(PROM_IP, prom_port, std::slice::from_ref(&target)).await?;
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    // Load while Prometheus gathers a few scrapes.
    let mut round = 0;
    wait_for(
        "Prometheus to hold 6 scrapes",
        Duration::from_secs(90),
        || {
            round += 1;
            let work = work.path().to_path_buf();
            let prom = &prom;
            let sel = format!("node_load1{{instance=\"{target}\"}}[1m]");
            async move {
                write_to_disk(&work, round)?;
                send_on_loopback(AGENT_IP)?;
                let n = prom.values(&format!("count_over_time({sel})")).await?;
                Ok(n.first().is_some_and(|n| *n >= 6.0).then_some(()))
            }
        },
    )
    .await?;
    check_families(&prom, &target).await?;
    let domains = prom
        .values(&format!(
            "libvirt_domain_info_cpu_time_seconds_total{{instance=\"{target}\",domain=\"test\"}}"
        ))
        .await?;
    assert_eq!(domains.len(), 1, "the test domain through Prometheus");

    // Host detail history, from the agent's ring (1 s steps here) ...
    let path = format!("/v1/hosts/{}/metrics?source=agent", agent.host_id);
    let (status, from_agent) = region.get(&path).await?;
    assert_eq!(status, 200, "{from_agent}");
    assert_eq!(from_agent["source"], "agent");
    assert_eq!(from_agent["step_s"], 1);
    let series = from_agent["series"].as_array().cloned().unwrap_or_default();
    assert_eq!(series.len(), 14, "{from_agent}");
    for name in [
        "cpu_used_percent",
        "memory_used_percent",
        "filesystem_used_percent",
        "load1",
        "disk_written_bytes",
        "tcp_established",
        "procs_blocked",
    ] {
        let s = series
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or(&Value::Null);
        let points = s["points"].as_array().cloned().unwrap_or_default();
        assert!(points.len() >= 2, "{name}: {s}");
        assert!(
            points
                .iter()
                .all(|p| p["v"].as_f64().is_some_and(|v| v >= 0.0)),
            "{name}: {s}"
        );
        if s["unit"] == "percent" {
            assert!(
                points
                    .iter()
                    .all(|p| p["v"].as_f64().is_some_and(|v| v <= 100.0))
            );
        }
    }
    let (status, two) = region
        .get(&format!(
            "/v1/hosts/{}/metrics?source=agent&names=load1,cpu_used_percent&since=5s",
            agent.host_id
        ))
        .await?;
    assert_eq!(status, 200, "{two}");
    assert_eq!(two["series"].as_array().map(Vec::len), Some(2));

    // ... and from Prometheus (the default when the coordinator has one).
    // Points fall on multiples of the step (15 s): a rate has its first point once one of
    // them comes after two scrapes, so this waits for it while the load goes on.
    let path = format!("/v1/hosts/{}/metrics?since=2m", agent.host_id);
    let names = [
        "cpu_used_percent",
        "memory_used_percent",
        "filesystem_used_percent",
        "load1",
        "disk_written_bytes",
        "disk_writes",
        "tcp_established",
        "procs_blocked",
    ];
    let waited = wait_for(
        "a point of every series from Prometheus, the test's writes in the write rate",
        Duration::from_secs(120),
        || {
            round += 1;
            let (work, path, region) = (work.path().to_path_buf(), &path, &region);
            async move {
                write_to_disk(&work, round)?;
                send_on_loopback(AGENT_IP)?;
                let (status, body) = region.get(path).await?;
                anyhow::ensure!(status == 200, "{body}");
                let series = body["series"].as_array().cloned().unwrap_or_default();
                let complete = names.iter().all(|name| {
                    series.iter().any(|s| {
                        s["name"] == *name && s["points"].as_array().is_some_and(|p| !p.is_empty())
                    })
                });
                // A rate's first point may cover scrapes before these writes: wait for one
                // that shows them.
                let wrote = series.iter().any(|s| {
                    s["name"] == "disk_written_bytes"
                        && s["points"]
                            .as_array()
                            .is_some_and(|p| p.iter().any(|p| p["v"].as_f64() > Some(0.0)))
                });
                Ok((complete && wrote).then_some(body))
            }
        },
    )
    .await;
    let from_prom = match waited {
        Ok(body) => body,
        Err(e) => panic!("{e}; last answer: {:#}", region.get(&path).await?.1),
    };
    assert_eq!(from_prom["source"], "prometheus");
    let prom_series = from_prom["series"].as_array().cloned().unwrap_or_default();
    assert_eq!(prom_series.len(), 14);
    let written: f64 = prom_series
        .iter()
        .find(|s| s["name"] == "disk_written_bytes")
        .and_then(|s| s["points"].as_array())
        .map(|p| p.iter().filter_map(|p| p["v"].as_f64()).sum())
        .unwrap_or(0.0);
    assert!(
        written > 0.0,
        "the test's writes show in the disk write rate"
    );

    // Bad requests are refused with the field named.
    for (query, field) in [
        ("names=load5", "names"),
        ("since=yesterday", "since"),
        ("source=graphite", "source"),
    ] {
        let (status, body) = region
            .get(&format!("/v1/hosts/{}/metrics?{query}", agent.host_id))
            .await?;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{query}: {body}"
        );
    }

    // The CLI: current values and a trend per metric.
    let ca = region.data_dir().join("ca.pem");
    let out = Command::new(bin("plinth"))
        .args(["hosts", "metrics", &agent.host_id, "--source", "agent"])
        .env("PLINTH_URL", &region.url)
        .env("PLINTH_TOKEN", &region.admin_token)
        .env("PLINTH_CA", &ca)
        .env("HOME", region.dir.path())
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("from agent"), "{stdout}");
    for title in [
        "CPU usage",
        "Memory usage",
        "Disk write throughput",
        "Blocked processes",
    ] {
        assert!(stdout.contains(title), "{title}: {stdout}");
    }
    assert!(
        stdout.chars().any(|c| ('▁'..='█').contains(&c)),
        "a sparkline: {stdout}"
    );
    println!("{stdout}");
    Ok(())
}

/// Sends SIGCONT to a stopped process when dropped, so a failing test never leaves libvirtd
/// frozen.
struct Frozen(i32);

impl Frozen {
    fn freeze(pid: u32) -> anyhow::Result<Frozen> {
        let pid = i32::try_from(pid)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP)?;
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::SIGCONT,
        );
    }
}

/// A real libvirtd frozen with SIGSTOP (every call to it hangs, as during the worst of a
/// migration) costs a scrape the per-instance series and a timeout, never the host series
/// and never the scrape itself; once libvirtd answers again, the instance series come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_libvirt_costs_only_the_instance_series() -> anyhow::Result<()> {
    use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
    let opts = LibvirtDaemonOptions::new("metrics-hv", Ipv4Addr::new(127, 0, 0, 103));
    let Some(daemon) = LibvirtDaemon::start(opts)? else {
        return Ok(());
    };
    // A 1-vCPU TCG guest with a small raw disk, named like an instance.
    let disk = daemon.dir().join("lib/images/tiny.img");
    std::fs::File::create(&disk)?.set_len(16 << 20)?;
    let name = "inst-00000000abcd";
    let xml = format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
           <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
           <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
             <disk type='file' device='disk'><driver name='qemu' type='raw'/>\
               <source file='{}'/><target dev='vda' bus='virtio'/></disk>\
             <memballoon model='none'/></devices></domain>",
        disk.display()
    );
    let conn = daemon.connect()?;
    conn.define_domain_xml(&xml)?.create()?;

    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region
        .start_agent_with_args(
            "127.0.0.104",
            "az1",
            &daemon.unix_uri(),
            vec!["--metrics-deadline".into(), "500ms".into()],
        )
        .await?;
    let base = agent.metrics_base().await?;
    let of_guest = |text: &str, metric: &str| {
        samples(text, metric)
            .into_iter()
            .filter(|(labels, _)| {
                labels.contains(&format!("domain=\"{name}\""))
                    && labels.contains(&format!("instance_id=\"{name}\""))
            })
            .count()
    };
    let timeouts = |text: &str| {
        samples(text, "plinth_collector_timeouts_total")
            .into_iter()
            .find(|(labels, _)| labels.contains("collector=\"domains\""))
            .map(|(_, v)| v)
    };
    // On a loaded machine an early scrape may itself miss the 500 ms deadline (the agent's
    // first calls to a guest that is still booting): wait for one that has the guest, and
    // count the frozen daemon's timeouts from there.
    let text = wait_for(
        "a scrape with the guest's series",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            async move {
                let (_, text) = scrape(&base, None).await?;
                Ok(
                    (of_guest(&text, "libvirt_domain_info_cpu_time_seconds_total") == 1)
                        .then_some(text),
                )
            }
        },
    )
    .await?;
    for metric in [
        "libvirt_domain_info_cpu_time_seconds_total",
        "libvirt_domain_info_virtual_cpus",
        "libvirt_domain_block_stats_read_bytes_total",
        "libvirt_domain_block_stats_write_requests_total",
    ] {
        assert_eq!(of_guest(&text, metric), 1, "{metric}:\n{text}");
    }
    let before = timeouts(&text).expect("the domains collector's timeouts are served");

    let pid = daemon.pid().expect("libvirtd runs");
    let frozen = Frozen::freeze(pid)?;
    for round in 1..=2 {
        let started = std::time::Instant::now();
        let (_, text) = scrape(&base, None).await?;
        println!(
            "scrape {round} with libvirtd frozen took {:?} (deadline 500ms)",
            started.elapsed()
        );
        assert!(!text.contains("libvirt_domain_"), "{text}");
        for metric in [
            "node_load1",
            "node_cpu_seconds_total",
            "node_memory_MemAvailable_bytes",
            "node_network_receive_bytes_total",
            "node_disk_written_bytes_total",
            "node_filesystem_avail_bytes",
            "node_netstat_Tcp_CurrEstab",
            "node_procs_blocked",
        ] {
            assert!(
                !samples(&text, metric).is_empty(),
                "{metric} missing:\n{text}"
            );
        }
        let success = samples(&text, "plinth_collector_success");
        assert!(
            success
                .iter()
                .all(|(labels, v)| (*v == 0.0) == labels.contains("\"domains\"")),
            "only the domains collector failed: {success:?}"
        );
        assert!(
            timeouts(&text).is_some_and(|n| n >= before + f64::from(round)),
            "round {round}: {:?}",
            timeouts(&text)
        );
    }

    drop(frozen);
    wait_for(
        "the instance series to come back",
        Duration::from_secs(60),
        || async {
            let (_, text) = scrape(&base, None).await?;
            Ok((of_guest(&text, "libvirt_domain_info_cpu_time_seconds_total") == 1).then_some(()))
        },
    )
    .await?;
    drop(conn);
    Ok(())
}

/// An instance plinth created carries its instance id and its tenant (which the agent learns
/// from heartbeat acknowledgements) on every per-instance series.
#[tokio::test]
async fn instance_series_carry_instance_and_tenant() -> anyhow::Result<()> {
    use plinth_e2e::instances as inst;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.105", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let tenant = inst::tenant(&region, "metrics@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default().to_string();
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "web-1",
        &image,
        256 * inst::MIB,
        serde_json::json!({}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let running = inst::settled(&region, &id, Duration::from_secs(60)).await?;
    assert_eq!(
        running.as_ref().map(|i| i["state"].clone()),
        Some("running".into())
    );

    let base = agent.metrics_base().await?;
    let labels = wait_for(
        "the instance's labelled series",
        Duration::from_secs(90),
        || {
            let base = base.clone();
            let id = id.clone();
            let tenant = format!("tenant_id=\"{}\"", tenant.id);
            // The tenant label comes with the heartbeat acknowledgement after the create,
            // which may follow the first scrape that has the domain.
            async move {
                let (_, text) = scrape(&base, None).await?;
                Ok(samples(&text, "libvirt_domain_info_virtual_cpus")
                    .into_iter()
                    .find(|(labels, v)| {
                        labels.contains(&format!("domain=\"{id}\""))
                            && labels.contains(&tenant)
                            && *v == 1.0
                    })
                    .map(|(labels, _)| labels))
            }
        },
    )
    .await?;
    assert!(
        labels.contains(&format!("instance_id=\"{id}\""))
            && labels.contains(&format!("tenant_id=\"{}\"", tenant.id)),
        "{labels}"
    );
    Ok(())
}
