//! Requests refused before their body is read still get their answer over HTTP/2 (issue 18,
//! point 4). A tenant token on admin-only POSTs is refused by the caller check, before the
//! handler reads the body; h2 would otherwise end such a stream with a reset that some
//! clients (curl) report as "Stream error in the HTTP/2 framing layer" instead of the 403.
//! 1,000 refused POSTs with bodies from a reqwest HTTP/2 client, and 60 from curl (as
//! `bounds`, this test needs curl), each counted as answered only with the 403 and plinth's
//! JSON error body. Also: refusals that come from outside the handlers (no WebSocket
//! handshake, a method a path lacks) are JSON over both protocols.

#![allow(clippy::unwrap_used)]

use futures_util::StreamExt;
use plinth_common::tls::client_config;
use plinth_e2e::Region;
use serde_json::{Value, json};
use std::time::Duration;

/// The admin-only POSTs the issue names; the image id is well formed (no such image).
const REFUSED: [&str; 3] = [
    "/v1/images/img-0000000000000000/copy-to-base",
    "/v1/tenants",
    "/v1/enrollment-tokens",
];

/// Bodies the coordinator never reads here: small, a few frames, and past h2's initial
/// 64 KiB stream window (the client is still sending when the answer comes).
fn body(i: usize) -> String {
    let pad = match i % 4 {
        0 => 16,
        1 => 4 << 10,
        2 => 40 << 10,
        _ => 200 << 10,
    };
    json!({"name": "x".repeat(pad), "email": "t@example.com", "ttl": "1h"}).to_string()
}

/// A tenant and a token of its own.
async fn tenant_token(region: &Region) -> anyhow::Result<String> {
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "h2@example.com", "name": "H2"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{tenant}");
    let (status, minted) = region
        .post(
            "/v1/tokens",
            json!({"role": "tenant", "tenant_id": tenant["id"], "name": "h2", "ttl": "1h"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{minted}");
    Ok(minted["secret"].as_str().unwrap().to_string())
}

/// Ok when the answer is the refusal: 403, JSON, code `forbidden`.
fn is_refusal(status: u16, content_type: &str, body: &str) -> Result<(), String> {
    let parsed: Value = serde_json::from_str(body).map_err(|_| format!("{status} {body:?}"))?;
    if status == 403
        && content_type.starts_with("application/json")
        && parsed["error"]["code"] == "forbidden"
        && parsed["error"]["message"].is_string()
    {
        return Ok(());
    }
    Err(format!("{status} {content_type} {body}"))
}

#[tokio::test]
async fn refusals_before_the_body_is_read_are_answered_over_http2() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let token = tenant_token(&region).await?;

    let mut tls = client_config(&region.ca_pem, None)?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()?;
    let sent = 1_000;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..sent)
        .map(|i| {
            let http = http.clone();
            let url = format!("{}{}", region.url, REFUSED[i % REFUSED.len()]);
            let token = token.clone();
            async move {
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body(i))
                    .send()
                    .await
                    .map_err(|e| format!("{url}: no answer: {e:?}"))?;
                if resp.version() != reqwest::Version::HTTP_2 {
                    return Err(format!("{url}: answered over {:?}", resp.version()));
                }
                let status = resp.status().as_u16();
                let content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let text = resp
                    .text()
                    .await
                    .map_err(|e| format!("{url}: answer cut short: {e:?}"))?;
                is_refusal(status, &content_type, &text).map_err(|e| format!("{url}: {e}"))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {sent} refusals over HTTP/2 were not answered as 403 forbidden; first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    // curl (nghttp2) reports the reset that ends such a stream as an error even after the
    // answer (reqwest does not): the same refusals through it, a few dozen.
    let file = region.dir.path().join("body.json");
    // Past hyper's 1 MiB stream window: curl is still sending when the 403 comes.
    let big = json!({"name": "x".repeat(1536 << 10), "email": "t@example.com"}).to_string();
    std::fs::write(&file, big)?;
    let ca = region.data_dir().join("ca.pem");
    let mut curl_failures = Vec::new();
    let rounds = 20;
    for round in 0..rounds {
        for path in REFUSED {
            let out = tokio::process::Command::new("curl")
                .args(["-sS", "--http2", "--cacert"])
                .arg(&ca)
                .args(["-H", &format!("authorization: Bearer {token}")])
                .args(["-H", "content-type: application/json", "--data-binary"])
                .arg(format!("@{}", file.display()))
                .args([
                    "-w",
                    "\n%{http_code} %{http_version} %{content_type}",
                    &format!("{}{path}", region.url),
                ])
                .output()
                .await?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let (body, tail) = stdout.rsplit_once('\n').unwrap_or_default();
            let mut tail = tail.splitn(3, ' ');
            let (status, version, content_type) = (
                tail.next().unwrap_or_default(),
                tail.next().unwrap_or_default(),
                tail.next().unwrap_or_default(),
            );
            let answered = out.status.success() && version == "2";
            let checked = is_refusal(status.parse().unwrap_or(0), content_type, body);
            if !answered || checked.is_err() {
                curl_failures.push(format!(
                    "round {round} {path}: {:?} {stdout:?} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(
        curl_failures.is_empty(),
        "{} of {} curl --http2 refusals were not answered: {curl_failures:#?}",
        curl_failures.len(),
        rounds * REFUSED.len()
    );
    Ok(())
}

/// Every error answer is JSON over both protocols: the console WebSocket asked without the
/// handshake is 426 `upgrade_required` (HTTP/1.1 with `Upgrade: websocket`), a method a path
/// lacks is 405 `method_not_allowed` naming what it allows.
#[tokio::test]
async fn refusals_outside_the_handlers_are_json_too() -> anyhow::Result<()> {
    let region = Region::start().await?;
    for (label, alpn) in [("HTTP/1.1", &b"http/1.1"[..]), ("HTTP/2", &b"h2"[..])] {
        let mut tls = client_config(&region.ca_pem, None)?;
        tls.alpn_protocols = vec![alpn.to_vec()];
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(30));
        builder = if alpn == b"h2" {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let http = builder.build()?;
        let cases = [
            (
                reqwest::Method::GET,
                "/v1/baremetal/console/0123456789abcdef",
                426,
                "upgrade_required",
            ),
            (
                reqwest::Method::DELETE,
                "/healthz",
                405,
                "method_not_allowed",
            ),
            (
                reqwest::Method::PUT,
                "/v1/tenants",
                405,
                "method_not_allowed",
            ),
        ];
        for (method, path, want, code) in cases {
            let resp = http
                .request(method.clone(), format!("{}{path}", region.url))
                .bearer_auth(&region.admin_token)
                .send()
                .await?;
            let status = resp.status().as_u16();
            let upgrade = resp
                .headers()
                .get("upgrade")
                .map(|v| v.to_str().unwrap_or_default().to_string());
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let text = resp.text().await?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|_| anyhow::anyhow!("{label} {method} {path}: {status} {text:?}"))?;
            assert_eq!(status, want, "{label} {method} {path}: {body}");
            assert_eq!(content_type, "application/json", "{label} {method} {path}");
            assert_eq!(
                body["error"]["code"], code,
                "{label} {method} {path}: {body}"
            );
            assert!(body["error"]["message"].is_string(), "{body}");
            if want == 426 && alpn != b"h2" {
                assert_eq!(upgrade.as_deref(), Some("websocket"), "{label}");
            }
        }
    }
    Ok(())
}
