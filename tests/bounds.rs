//! Bounds on what requests bring (issue 16, point 5): token TTLs at most `max_token_ttl`
//! (refused above it, never overflowed), one text rule for every name, note and description,
//! import URLs at most 2,048 bytes, and JSON bodies over the limit answered 413 over HTTP/1.1
//! and HTTP/2 alike. Every refusal changes nothing.

#![allow(clippy::unwrap_used)]

use plinth_common::tls::client_config;
use plinth_e2e::{Region, RegionOptions};
use serde_json::{Value, json};
use std::time::Duration;

async fn names_of(region: &Region, path: &str, key: &str) -> anyhow::Result<Vec<String>> {
    let (status, list) = region.get(path).await?;
    anyhow::ensure!(status == 200, "{path}: {list}");
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t[key].as_str().map(String::from))
        .collect())
}

fn refused(status: u16, body: &Value, field: &str, says: &str) -> Result<(), String> {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    if status == 400
        && body["error"]["code"] == "invalid_field"
        && message.starts_with(&format!("{field}:"))
        && message.contains(says)
    {
        Ok(())
    } else {
        Err(format!("{status} {body}"))
    }
}

#[tokio::test]
async fn token_ttls_are_bounded_and_never_overflow() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        extra_args: vec!["--max-token-ttl".into(), "30d".into()],
        ..Default::default()
    })
    .await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "t@example.com", "name": "T"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{tenant}");
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let (status, minted) = region
        .post(
            "/v1/tokens",
            json!({"role": "tenant", "tenant_id": tenant_id, "name": "tenant's own", "ttl": "1h"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{minted}");
    let tenant_token = minted["secret"].as_str().unwrap().to_string();

    // (label, caller is the tenant, ttl, what the message says)
    let cases = [
        (
            "the issue's value, admin",
            false,
            "99999999999d",
            "maximum, 30d",
        ),
        (
            "the issue's value, tenant",
            true,
            "99999999999d",
            "maximum, 30d",
        ),
        ("a day over the maximum", true, "31d", "maximum, 30d"),
        (
            "overflows u64 seconds",
            false,
            "213503982334602d",
            "too long",
        ),
        (
            "more digits than u64",
            true,
            "99999999999999999999d",
            "number",
        ),
        ("zero", false, "0s", "longer than zero"),
    ];
    for (label, as_tenant, ttl, says) in cases {
        let name = format!("ttl case {label}");
        let body = if as_tenant {
            json!({"role": "tenant", "tenant_id": tenant_id, "name": name, "ttl": ttl})
        } else {
            json!({"role": "admin", "name": name, "ttl": ttl})
        };
        let token = if as_tenant {
            &tenant_token
        } else {
            &region.admin_token
        };
        let (status, resp) = region
            .call(reqwest::Method::POST, "/v1/tokens", Some(token), Some(body))
            .await?;
        if let Err(e) = refused(status, &resp, "ttl", says) {
            panic!("{label}: {e}");
        }
    }
    let stored = names_of(&region, "/v1/tokens", "name").await?;
    assert!(
        !stored.iter().any(|n| n.starts_with("ttl case")),
        "a refused token was stored: {stored:?}"
    );

    // At the maximum: stored, expiring within the maximum (never in 1970).
    let (status, ok) = region
        .call(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(&tenant_token),
            Some(json!({"role": "tenant", "tenant_id": tenant_id, "name": "month", "ttl": "30d"})),
        )
        .await?;
    assert_eq!(status, 201, "{ok}");
    let expires = time::OffsetDateTime::parse(
        ok["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )?;
    let created = time::OffsetDateTime::parse(
        ok["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )?;
    assert_eq!(expires - created, time::Duration::days(30), "{ok}");

    // Enrollment tokens keep their 7-day maximum.
    let (status, resp) = region
        .post("/v1/enrollment-tokens", json!({"ttl": "8d"}))
        .await?;
    refused(status, &resp, "ttl", "maximum, 7d").unwrap();
    let (status, resp) = region
        .post("/v1/enrollment-tokens", json!({"ttl": "99999999999d"}))
        .await?;
    refused(status, &resp, "ttl", "maximum, 7d").unwrap();
    Ok(())
}

#[tokio::test]
async fn every_name_note_and_description_follows_one_text_rule() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "t@example.com", "name": "T"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{tenant}");
    let tenant_id = tenant["id"].as_str().unwrap().to_string();
    let image = |extra: Value| {
        let mut body = json!({"name": "img", "tenant_id": tenant_id, "os_type": "linux",
            "architecture": "x86_64", "platform": "centos", "version": "7.9",
            "target_size_gb": 20});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let long_url = format!("http://127.0.0.1:1/{}.qcow2", "a".repeat(2100));
    // (label, path, body, field, what the message says)
    let cases = [
        (
            "tenant name with ESC",
            "/v1/tenants",
            json!({"email": "e@example.com", "name": "evil\u{1b}[2J"}),
            "name",
            "U+001B",
        ),
        (
            "tenant name with CR/LF",
            "/v1/tenants",
            json!({"email": "f@example.com", "name": "a\r\nb"}),
            "name",
            "U+000D",
        ),
        (
            "tenant name over 64",
            "/v1/tenants",
            json!({"email": "g@example.com", "name": "x".repeat(65)}),
            "name",
            "1-64",
        ),
        (
            "token name with NUL",
            "/v1/tokens",
            json!({"role": "admin", "name": "a\u{0}b"}),
            "name",
            "U+0000",
        ),
        (
            "enrollment description with LF",
            "/v1/enrollment-tokens",
            json!({"ttl": "1h", "description": "rack 7\nFAKE LOG LINE"}),
            "description",
            "U+000A",
        ),
        (
            "enrollment description over 1024",
            "/v1/enrollment-tokens",
            json!({"ttl": "1h", "description": "d".repeat(1025)}),
            "description",
            "at most 1024",
        ),
        (
            "cluster description with DEL",
            "/v1/clusters",
            json!({"id": "az9", "description": "a\u{7f}"}),
            "description",
            "U+007F",
        ),
        (
            "image note with ESC",
            "/v1/images",
            image(json!({"note": "x\u{1b}]0;owned\u{7}"})),
            "note",
            "U+001B",
        ),
        (
            "image tag with LF",
            "/v1/images",
            image(json!({"tags": ["ok", "a\nb"]})),
            "tags",
            "U+000A",
        ),
        (
            "segment name with a bidi override",
            "/v1/segments",
            json!({"name": "pub\u{202e}lic", "cidr": "203.0.113.0/24", "gateway": "203.0.113.1",
                   "nic": "bond1"}),
            "name",
            "U+202E",
        ),
        (
            "import URL over 2048 bytes",
            "/v1/images/import",
            image(json!({"url": long_url})),
            "url",
            "2048 bytes",
        ),
    ];
    for (label, path, body, field, says) in cases {
        let (status, resp) = region.post(path, body).await?;
        if let Err(e) = refused(status, &resp, field, says) {
            panic!("{label}: {e}");
        }
    }
    // Nothing of it was stored.
    assert_eq!(names_of(&region, "/v1/tenants", "name").await?, ["T"]);
    assert!(names_of(&region, "/v1/clusters", "id").await?.is_empty());
    let (_, images) = region.get("/v1/images").await?;
    assert_eq!(images["total"], 0, "{images}");
    let (_, segments) = region.get("/v1/segments").await?;
    assert_eq!(
        segments["items"].as_array().map(Vec::len),
        Some(0),
        "{segments}"
    );
    let tokens = names_of(&region, "/v1/tokens", "name").await?;
    assert_eq!(tokens, ["initial admin"]);

    // Text within the rule is taken, trimmed.
    let (status, ok) = region
        .post(
            "/v1/tenants",
            json!({"email": "z@example.com", "name": "  Zürich östra  "}),
        )
        .await?;
    assert_eq!(status, 201, "{ok}");
    assert_eq!(ok["name"], "Zürich östra");
    Ok(())
}

/// A client speaking only `alpn` (h2 or http/1.1) to the region.
fn client(region: &Region, alpn: &[u8]) -> anyhow::Result<reqwest::Client> {
    let mut tls = client_config(&region.ca_pem, None)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30));
    if alpn == b"h2" {
        builder = builder.http2_prior_knowledge();
    } else {
        builder = builder.http1_only();
    }
    Ok(builder.build()?)
}

#[tokio::test]
async fn json_bodies_over_the_limit_are_413_over_http1_and_http2() -> anyhow::Result<()> {
    let region = Region::start().await?;
    // A valid request but for its size: 20 MiB of name, more than the socket buffers hold, so
    // the client is still sending when the coordinator answers.
    let big = json!({"email": "big@example.com", "name": "x".repeat(20 << 20)}).to_string();
    for (label, alpn, version) in [
        ("HTTP/1.1", &b"http/1.1"[..], reqwest::Version::HTTP_11),
        ("HTTP/2", &b"h2"[..], reqwest::Version::HTTP_2),
    ] {
        let http = client(&region, alpn)?;
        let resp = http
            .post(format!("{}/v1/tenants", region.url))
            .bearer_auth(&region.admin_token)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{label}: no response, {e:?}"))?;
        assert_eq!(resp.version(), version, "{label}");
        assert_eq!(resp.status().as_u16(), 413, "{label}");
        let body: Value = resp.json().await?;
        assert_eq!(body["error"]["code"], "body_too_large", "{label}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("2 MiB"), "{label}: {message}");
        // The same client goes on: a body within the limit is read as usual.
        let resp = http
            .post(format!("{}/v1/tenants", region.url))
            .bearer_auth(&region.admin_token)
            .json(
                &json!({"email": format!("{}@example.com", version_tag(version)), "name": "small"}),
            )
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 201, "{label}");
    }
    // curl (nghttp2) reports a stream reset after the answer as an error where reqwest
    // does not: both must see the 413.
    let file = region.dir.path().join("big.json");
    std::fs::write(&file, &big)?;
    let ca = region.data_dir().join("ca.pem");
    for (label, flag, version) in [
        ("curl HTTP/1.1", "--http1.1", "1.1"),
        ("curl HTTP/2", "--http2", "2"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-sS", flag, "--cacert"])
            .arg(&ca)
            .args([
                "-H",
                &format!("authorization: Bearer {}", region.admin_token),
            ])
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .args([
                "-w",
                "\n%{http_code} %{http_version}",
                &format!("{}/v1/tenants", region.url),
            ])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{label}: {:?} {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, tail) = stdout.rsplit_once('\n').unwrap_or_default();
        assert_eq!(tail, format!("413 {version}"), "{label}: {stdout}");
        let body: Value = serde_json::from_str(body)?;
        assert_eq!(body["error"]["code"], "body_too_large", "{label}: {body}");
    }
    let emails = names_of(&region, "/v1/tenants", "email").await?;
    assert!(!emails.iter().any(|e| e == "big@example.com"), "{emails:?}");
    Ok(())
}

fn version_tag(v: reqwest::Version) -> &'static str {
    if v == reqwest::Version::HTTP_2 {
        "h2"
    } else {
        "h1"
    }
}
