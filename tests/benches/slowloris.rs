//! Benchmark: the coordinator API under a slow-loris load on loopback. The p50/p99 of an
//! authenticated `GET /v1/hosts` (over one keep-alive HTTP/2 connection, as a CLI or
//! console holds one) alone, then with 2,000 slow-loris connections open: half connect and
//! send nothing, half finish TLS and trickle a request head a byte a second. Also: how many
//! of the 2,000 the cap refused, how many each timeout closed (the server's own counters),
//! and how many brand-new clients got an answer while the load held the cap.
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench slowloris`.
//! The coordinator runs with `--max-connections 1024` so the load fills the cap; every other
//! limit is the default (handshake 10 s, header 30 s, idle 60 s). Prints a report; exits 0.

use plinth_e2e::{Region, RegionOptions, wait_for};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const REQUESTS: usize = 300;
const LORIS: usize = 2000;
const CAP: &str = "1024";
const PROBES: usize = 20;

fn quantiles(mut samples: Vec<Duration>) -> [Duration; 3] {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.99), at(1.0)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn timed_gets(region: &Region, client: &reqwest::Client) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let resp = client
            .get(format!("{}/v1/hosts", region.url))
            .bearer_auth(&region.admin_token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "GET /v1/hosts: {}",
            resp.status()
        );
        resp.bytes().await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

async fn counter(metrics: &str, series: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{metrics}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

/// One slow-loris connection: silent, or TLS trickling a head until the server closes it.
async fn loris(
    addr: SocketAddr,
    connector: Option<TlsConnector>,
    accepted: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut tcp = TcpStream::connect(addr).await?;
    let Some(connector) = connector else {
        // Holds the socket until the server closes it.
        let mut buf = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
        return Ok(());
    };
    let mut tls = connector
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await?;
    accepted.fetch_add(1, Ordering::Relaxed);
    let head = b"GET /v1/hosts HTTP/1.1\r\nHost: plinth\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    // The trickle is the load itself: one byte a second, until the server closes.
    let mut trickle = tokio::time::interval(TRICKLE);
    for byte in head.iter().cycle() {
        trickle.tick().await;
        if tls.write_all(&[*byte]).await.is_err() || tls.flush().await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// How often a slow-loris connection sends the next byte of its request head.
const TRICKLE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plinth_common::serve::raise_fd_limit()?;
    let region = Region::start_with(RegionOptions {
        extra_args: ["--max-connections", CAP, "--metrics-listen", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..RegionOptions::default()
    })
    .await?;
    let file = region.data_dir().join("metrics.addr");
    let metrics = wait_for("/metrics", Duration::from_secs(30), || async {
        Ok(std::fs::read_to_string(&file)
            .ok()
            .map(|s| s.trim().to_string()))
    })
    .await?;
    let metrics = format!("http://{metrics}");
    let addr: SocketAddr = region.url.trim_start_matches("https://").parse()?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(plinth_common::tls::client_config(&region.ca_pem, None)?)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Warm-up (and the client's connection, held from before the load).
    timed_gets(&region, &client).await?;
    let alone = quantiles(timed_gets(&region, &client).await?);

    let mut config = plinth_common::tls::client_config(&region.ca_pem, None)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let accepted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut load = tokio::task::JoinSet::new();
    for i in 0..LORIS {
        let tls = (i % 2 == 1).then(|| connector.clone());
        load.spawn(loris(addr, tls, accepted.clone()));
    }
    let open = "plinth_http_connections_open{listener=\"api\"}";
    let refused = "plinth_http_connections_refused_total{listener=\"api\"}";
    wait_for(
        "the load to be in place",
        Duration::from_secs(60),
        || async {
            let seen = counter(&metrics, open).await? + counter(&metrics, refused).await?;
            Ok((seen >= LORIS as f64).then_some(()))
        },
    )
    .await?;
    let loaded = quantiles(timed_gets(&region, &client).await?);
    let mut probes_ok = 0;
    for _ in 0..PROBES {
        let fresh = reqwest::Client::builder()
            .use_preconfigured_tls(plinth_common::tls::client_config(&region.ca_pem, None)?)
            .timeout(Duration::from_secs(5))
            .build()?;
        let ok = fresh
            .get(format!("{}/v1/hosts", region.url))
            .bearer_auth(&region.admin_token)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        probes_ok += usize::from(ok);
    }
    let refused_n = counter(&metrics, refused).await?;

    // Every loris connection ends when the server closes it.
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while load.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let all_closed_after = started.elapsed();
    let phase = |p: &str| format!("plinth_http_timeouts_total{{listener=\"api\",phase=\"{p}\"}}");
    let (handshake, header, idle) = (
        counter(&metrics, &phase("handshake")).await?,
        counter(&metrics, &phase("header")).await?,
        counter(&metrics, &phase("idle")).await?,
    );
    let after = quantiles(timed_gets(&region, &client).await?);

    println!(
        "slow-loris on loopback: {LORIS} connections ({} silent TCP, {} TLS trickling a request head at 1 byte/s)",
        LORIS / 2,
        LORIS / 2
    );
    println!(
        "coordinator (release): --max-connections {CAP}; handshake 10s, header 30s, idle 60s (defaults)"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        format!("GET /v1/hosts, {REQUESTS} requests, 1 keep-alive h2 client"),
        "p50",
        "p99",
        "max"
    );
    for (label, q) in [
        ("  without load", alone),
        ("  with the 2,000 slow-loris connections", loaded),
        ("  after the server closed them", after),
    ] {
        println!(
            "{label:<44} {:>10} {:>10} {:>10}",
            ms(q[0]),
            ms(q[1]),
            ms(q[2])
        );
    }
    println!("refused over the cap (server counter): {refused_n}");
    println!(
        "TLS loris connections accepted: {}",
        accepted.load(Ordering::Relaxed)
    );
    println!(
        "closed by timeouts (server counters): handshake {handshake}, header {header}, idle {idle}"
    );
    println!(
        "all {LORIS} closed by the server: {} ({:.1} s after the load started)",
        if drained {
            "yes"
        } else {
            "no (120 s deadline)"
        },
        all_closed_after.as_secs_f64()
    );
    println!("new clients during the load (cap full): {probes_ok}/{PROBES} answered");
    Ok(())
}
