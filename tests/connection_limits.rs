//! Connection limits (issue 16, point 3) against the real binaries: connections that never
//! finish a TLS handshake, never ask anything, or send half a request head are closed by the
//! timeouts while an authenticated client is still served; connections over the cap are
//! refused at once and counted while the accepted ones keep working; the agent's `/metrics`
//! closes idle connections; a stalled upload is refused with 408 and leaves no content.

use plinth_e2e::{Region, RegionOptions, wait_for};
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long the server may take to close what it should close, far beyond the timeouts used.
const CLOSE_DEADLINE: Duration = Duration::from_secs(60);
const HALF_HEAD: &[u8] = b"GET /v1/hosts HTTP/1.1\r\nHost: plinth\r\nX-Slow: ";

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    Ok(url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .parse()?)
}

/// A TLS client speaking HTTP/1.1 only (the half-request is HTTP/1 text).
fn connector(region: &Region) -> anyhow::Result<TlsConnector> {
    let mut config = plinth_common::tls::client_config(&region.ca_pem, None)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn tls(connector: &TlsConnector, addr: SocketAddr) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    Ok(connector.connect(name, tcp).await?)
}

/// Reads until the server closes the connection (end of stream or an error); what came.
async fn until_closed<S: AsyncRead + Unpin>(mut stream: S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits (with the deadline) until the server has closed every one of `streams`.
async fn all_closed<S: AsyncRead + Unpin + Send + 'static>(
    what: &str,
    streams: Vec<S>,
) -> anyhow::Result<()> {
    let n = streams.len();
    let mut tasks = tokio::task::JoinSet::new();
    for s in streams {
        tasks.spawn(until_closed(s));
    }
    let closed = tokio::time::timeout(CLOSE_DEADLINE, async {
        let mut closed = 0;
        while let Some(done) = tasks.join_next().await {
            done?;
            closed += 1;
        }
        anyhow::Ok(closed)
    })
    .await;
    match closed {
        Ok(Ok(count)) if count == n => Ok(()),
        Ok(other) => anyhow::bail!("{what}: {other:?}"),
        Err(_) => anyhow::bail!(
            "{what}: {} of {n} still open after {CLOSE_DEADLINE:?}",
            tasks.len()
        ),
    }
}

/// One series of a Prometheus text scrape of `base`, or 0 when absent.
async fn sample(base: &str, series: &str) -> anyhow::Result<f64> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

/// `http://addr` of the coordinator's `/metrics`, started with `--metrics-listen`.
async fn coordinator_metrics(region: &Region) -> anyhow::Result<String> {
    let file = region.data_dir().join("metrics.addr");
    let addr = wait_for(
        "the coordinator's /metrics",
        Duration::from_secs(30),
        || async {
            Ok(std::fs::read_to_string(&file)
                .ok()
                .map(|s| s.trim().to_string()))
        },
    )
    .await?;
    Ok(format!("http://{addr}"))
}

/// GET /v1/hosts as the admin with a client that gives up after `limit`.
async fn hosts(region: &Region, limit: Duration) -> anyhow::Result<u16> {
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(plinth_common::tls::client_config(&region.ca_pem, None)?)
        .timeout(limit)
        .build()?;
    let resp = client
        .get(format!("{}/v1/hosts", region.url))
        .bearer_auth(&region.admin_token)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_while_clients_are_served() -> anyhow::Result<()>
{
    plinth_common::serve::raise_fd_limit()?;
    let region = Region::start_with(RegionOptions {
        extra_args: args(&[
            "--tls-handshake-timeout",
            "8s",
            "--header-read-timeout",
            "8s",
            "--idle-timeout",
            "8s",
            "--metrics-listen",
            "127.0.0.1:0",
        ]),
        ..RegionOptions::default()
    })
    .await?;
    let metrics = coordinator_metrics(&region).await?;
    let addr = addr_of(&region.url)?;
    let connector = connector(&region)?;

    // 200 that connect and send nothing, 150 that finish TLS and ask nothing, 150 that send
    // half a request head.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(addr).await?);
    }
    let mut idle = Vec::new();
    let mut half = Vec::new();
    for i in 0..300 {
        let mut s = tls(&connector, addr).await?;
        if i % 2 == 0 {
            s.write_all(HALF_HEAD).await?;
            s.flush().await?;
            half.push(s);
        } else {
            idle.push(s);
        }
    }
    let open = sample(&metrics, "plinth_http_connections_open{listener=\"api\"}").await?;
    // All 500 are open at once, and the API answers in its usual time beside them.
    assert!(open >= 500.0, "{open} connections open");
    assert_eq!(hosts(&region, Duration::from_secs(5)).await?, 200);

    all_closed("silent connections", silent).await?;
    all_closed("idle TLS connections", idle).await?;
    all_closed("half-sent requests", half).await?;
    let timeouts =
        |phase: &str| format!("plinth_http_timeouts_total{{listener=\"api\",phase=\"{phase}\"}}");
    assert_eq!(sample(&metrics, &timeouts("handshake")).await?, 200.0);
    assert_eq!(sample(&metrics, &timeouts("header")).await?, 150.0);
    // The client of the GET above went idle too.
    assert!(sample(&metrics, &timeouts("idle")).await? >= 150.0);
    assert_eq!(hosts(&region, Duration::from_secs(5)).await?, 200);
    Ok(())
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_counted() -> anyhow::Result<()> {
    plinth_common::serve::raise_fd_limit()?;
    let region = Region::start_with(RegionOptions {
        extra_args: args(&["--max-connections", "50", "--metrics-listen", "127.0.0.1:0"]),
        ..RegionOptions::default()
    })
    .await?;
    let metrics = coordinator_metrics(&region).await?;
    let addr = addr_of(&region.url)?;
    let connector = connector(&region)?;
    let open = "plinth_http_connections_open{listener=\"api\"}";
    let refused = "plinth_http_connections_refused_total{listener=\"api\"}";

    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(tls(&connector, addr).await?);
    }
    for i in 0..30 {
        // Closed before any TLS: the handshake fails.
        assert!(
            tls(&connector, addr).await.is_err(),
            "connection {i} over the cap"
        );
    }
    assert!(
        hosts(&region, Duration::from_secs(5)).await.is_err(),
        "a new client is refused too"
    );
    assert_eq!(sample(&metrics, refused).await?, 31.0);
    assert_eq!(sample(&metrics, open).await?, 50.0);

    // The accepted connections are still served.
    let mut first = held.remove(0);
    first
        .write_all(
            format!(
                "GET /v1/hosts HTTP/1.1\r\nHost: plinth\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                region.admin_token
            )
            .as_bytes(),
        )
        .await?;
    let answer = String::from_utf8_lossy(&until_closed(first).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    held.truncate(39);
    wait_for(
        "the server to see 10 clients go",
        Duration::from_secs(30),
        || async { Ok((sample(&metrics, open).await? <= 39.0).then_some(())) },
    )
    .await?;
    assert_eq!(hosts(&region, Duration::from_secs(5)).await?, 200);
    assert_eq!(
        sample(&metrics, refused).await?,
        31.0,
        "nothing refused below the cap"
    );
    drop(held);
    Ok(())
}

#[tokio::test]
async fn the_agent_metrics_listener_closes_idle_connections() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let mut agent = region
        .start_agent_with_flags(
            "127.0.0.71",
            "az1",
            &["--idle-timeout", "2s", "--header-read-timeout", "2s"],
        )
        .await?;
    let base = agent.metrics_base().await?;
    let addr = addr_of(&base)?;
    let mut silent = Vec::new();
    let mut half = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(addr).await?);
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\n")
            .await?;
        half.push(s);
    }
    all_closed("silent /metrics connections", silent).await?;
    all_closed("half-sent /metrics requests", half).await?;
    let timeouts = |phase: &str| {
        format!("plinth_http_timeouts_total{{listener=\"metrics\",phase=\"{phase}\"}}")
    };
    assert_eq!(sample(&base, &timeouts("idle")).await?, 10.0);
    assert_eq!(sample(&base, &timeouts("header")).await?, 10.0);
    // The earlier scrapes' connections close as their clients drop; the agent may see those
    // closes a moment after the next scrape arrives, so it settles on the scrape's own one.
    wait_for(
        "only the scrape's own /metrics connection to be open",
        CLOSE_DEADLINE,
        || async {
            let open = sample(&base, "plinth_http_connections_open{listener=\"metrics\"}").await?;
            Ok((open == 1.0).then_some(()))
        },
    )
    .await?;
    agent.stop();
    Ok(())
}

#[tokio::test]
async fn a_stalled_upload_is_refused_and_leaves_no_content() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        extra_args: args(&["--body-timeout", "2s", "--metrics-listen", "127.0.0.1:0"]),
        ..RegionOptions::default()
    })
    .await?;
    let metrics = coordinator_metrics(&region).await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "a@example.com", "name": "A"}),
        )
        .await?;
    assert_eq!(status, 201, "{tenant}");
    let (status, image) = region
        .post(
            "/v1/images",
            json!({"name": "stalled", "tenant_id": tenant["id"], "os_type": "linux",
                   "architecture": "x86_64", "platform": "centos", "version": "7.9",
                   "target_size_gb": 20}),
        )
        .await?;
    assert_eq!(status, 201, "{image}");
    let id = image["id"].as_str().unwrap_or_default().to_string();

    let mut s = tls(&connector(&region)?, addr_of(&region.url)?).await?;
    s.write_all(
        format!(
            "PUT /v1/images/{id}/content HTTP/1.1\r\nHost: plinth\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            region.admin_token,
            10 << 20
        )
        .as_bytes(),
    )
    .await?;
    s.write_all(&vec![0u8; 256 << 10]).await?;
    s.flush().await?;
    // ...and nothing more: the server answers and closes.
    let answer = tokio::time::timeout(CLOSE_DEADLINE, until_closed(s)).await?;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");

    let (status, after) = region.get(&format!("/v1/images/{id}")).await?;
    assert_eq!(status, 200, "{after}");
    // As when an uploader goes away: the upload failed, and no content was kept.
    assert_eq!(after["status"], "import_failed", "{after}");
    assert_eq!(after["size_bytes"], Value::Null, "{after}");
    let staging = region.data_dir().join("images").join("staging");
    let left: Vec<_> = std::fs::read_dir(&staging)?.collect();
    assert!(left.is_empty(), "staging files left: {left:?}");
    assert_eq!(
        sample(
            &metrics,
            "plinth_http_timeouts_total{listener=\"api\",phase=\"body\"}"
        )
        .await?,
        1.0
    );
    Ok(())
}
