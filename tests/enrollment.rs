//! Enrollment end to end: real coordinator, real agents on distinct loopback addresses,
//! libvirt's test driver; one-time tokens, CA pinning, and the facts hosts report.

use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn two_agents_enroll_and_report_their_hosts() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.2", "az1").await?;
    let b = region.start_agent("127.0.0.3", "az1").await?;
    assert_ne!(a.host_id, b.host_id);

    for (agent, ip) in [(&a, "127.0.0.2"), (&b, "127.0.0.3")] {
        let host = region.wait_agent(&agent.host_id, "online").await?;
        assert_eq!(host["ip"], ip);
        assert_eq!(host["cluster_id"], "az1");
        assert_eq!(host["state"], "available");
        assert_eq!(host["hypervisor"], "TEST");
        assert_eq!(host["libvirt_uri"], "test:///default");
        // libvirt's test driver describes a 16-CPU node.
        assert_eq!(host["total_cores"], 16);
        assert!(
            host["total_memory_bytes"].as_u64().unwrap_or(0) > 0,
            "{host}"
        );
        assert!(
            !host["cpu_model"].as_str().unwrap_or("").is_empty(),
            "{host}"
        );
        assert_eq!(host["allocated_cores"], 0);
        let domains = host["domains"].as_array().cloned().unwrap_or_default();
        assert!(
            domains
                .iter()
                .any(|d| d["name"] == "test" && d["state"] == "running"),
            "{host}"
        );
        assert!(host["agent_cert_expires_at"].is_string(), "{host}");
    }

    // The coordinator reaches each agent over mTLS for live facts.
    let (status, live) = region
        .get(&format!("/v1/hosts/{}/agent", a.host_id))
        .await?;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["host_id"], Value::String(a.host_id.clone()));
    assert_eq!(live["facts"]["total_cores"], 16);

    let (status, list) = region.get("/v1/hosts").await?;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 2);

    let (_, clusters) = region.get("/v1/clusters").await?;
    assert_eq!(clusters["items"][0]["id"], "az1");
    assert_eq!(clusters["items"][0]["host_count"], 2);
    Ok(())
}

#[tokio::test]
async fn a_used_enrollment_token_is_refused() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let (token, ca_hash) = region.enrollment_token("10m").await?;
    let first = region.dir.path().join("first");
    let (ok, out) = region.enroll(&first, "127.0.0.2", "az1", &token, &ca_hash)?;
    assert!(ok, "{out}");

    let second = region.dir.path().join("second");
    let (ok, out) = region.enroll(&second, "127.0.0.3", "az1", &token, &ca_hash)?;
    assert!(!ok, "a reused token enrolled: {out}");
    assert!(out.contains("already used"), "{out}");
    assert!(!second.join("agent.pem").exists());

    let (_, list) = region.get("/v1/hosts").await?;
    assert_eq!(list["total"], 1, "only the first enrollment made a host");
    Ok(())
}

/// A CSR that is not one: the token check comes first, so this tells which state a token is in
/// without using it.
async fn enroll_with_bad_csr(region: &Region, token: &str) -> anyhow::Result<(u16, Value)> {
    let body = json!({"token": token, "csr_pem": "not a csr", "cluster_id": "az1", "address": "127.0.0.9", "hostname": "h"});
    region
        .call(reqwest::Method::POST, "/v1/enroll", None, Some(body))
        .await
}

#[tokio::test]
async fn an_expired_enrollment_token_is_refused() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let (token, ca_hash) = region.enrollment_token("1s").await?;
    // Valid at first: the request fails on the CSR, not the token, and uses nothing.
    let (status, body) = enroll_with_bad_csr(&region, &token).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("csr_pem"),
        "{body}"
    );

    wait_for("the token to expire", Duration::from_secs(15), || async {
        let (status, body) = enroll_with_bad_csr(&region, &token).await?;
        Ok((status == 401 && body["error"]["code"] == "enrollment_token_expired").then_some(()))
    })
    .await?;
    let dir = region.dir.path().join("late");
    let (ok, out) = region.enroll(&dir, "127.0.0.2", "az1", &token, &ca_hash)?;
    assert!(!ok, "{out}");
    assert!(out.contains("expired"), "{out}");
    Ok(())
}

#[tokio::test]
async fn bad_enrollments_change_nothing() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let (token, ca_hash) = region.enrollment_token("10m").await?;
    let dir = region.dir.path().join("agent");

    // A CA hash that is not the coordinator's: the agent refuses before sending the token.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (ok, out) = region.enroll(&dir, "127.0.0.2", "az1", &token, &wrong)?;
    assert!(!ok && out.contains("refusing to trust"), "{out}");

    // An unknown cluster: 400 naming the field; the token stays unused.
    let (ok, out) = region.enroll(&dir, "127.0.0.2", "nope", &token, &ca_hash)?;
    assert!(!ok && out.contains("cluster nope does not exist"), "{out}");

    // A made-up token.
    let (status, body) = enroll_with_bad_csr(&region, "enr-000000000000.deadbeef").await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_enrollment_token")),
        "{body}"
    );

    let (_, list) = region.get("/v1/hosts").await?;
    assert_eq!(list["total"], 0);
    // The same token still works once everything is right.
    let (ok, out) = region.enroll(&dir, "127.0.0.2", "az1", &token, &ca_hash)?;
    assert!(ok, "{out}");
    Ok(())
}
