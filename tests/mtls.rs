//! mTLS refusals, each its own test: the agent API takes only the coordinator's certificate,
//! and the coordinator's agent endpoints take only an agent's certificate, for its own host.

use plinth_common::tls::{Ca, LeafSpec, Role, client_config};
use plinth_e2e::{Agent, Region};
use serde_json::json;
use std::time::Duration;

struct Setup {
    region: Region,
    agent: Agent,
    /// `https://127.0.0.2:PORT` of the agent API.
    agent_api: String,
}

async fn setup() -> anyhow::Result<Setup> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.2", "az1").await?;
    let host = region.wait_agent(&agent.host_id, "online").await?;
    let agent_api = host["agent_api"].as_str().unwrap_or_default().to_string();
    anyhow::ensure!(agent_api.starts_with("https://127.0.0.2:"), "{host}");
    Ok(Setup {
        region,
        agent,
        agent_api,
    })
}

fn read(region: &Region, file: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(region.data_dir().join(file))?)
}

/// A client trusting `ca_pem` and presenting `cert` (if any).
fn client(ca_pem: &str, cert: Option<(&str, &str)>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca_pem, cert)?)
        .timeout(Duration::from_secs(10))
        .build()?)
}

async fn facts_status(
    client: &reqwest::Client,
    s: &Setup,
) -> anyhow::Result<Result<u16, reqwest::Error>> {
    Ok(client
        .get(format!("{}/v1/facts", s.agent_api))
        .send()
        .await
        .map(|r| r.status().as_u16()))
}

#[tokio::test]
async fn agent_api_accepts_the_coordinator_certificate() -> anyhow::Result<()> {
    let s = setup().await?;
    let (cert, key) = (
        read(&s.region, "client.pem")?,
        read(&s.region, "client.key")?,
    );
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    assert_eq!(facts_status(&c, &s).await?.ok(), Some(200));
    Ok(())
}

#[tokio::test]
async fn agent_api_refuses_a_client_without_certificate() -> anyhow::Result<()> {
    let s = setup().await?;
    let c = client(&s.region.ca_pem, None)?;
    let res = facts_status(&c, &s).await?;
    assert!(
        res.is_err(),
        "the TLS handshake must fail without a client certificate: {res:?}"
    );
    Ok(())
}

#[tokio::test]
async fn agent_api_refuses_a_certificate_from_another_ca() -> anyhow::Result<()> {
    let s = setup().await?;
    let (other_ca, _) = Ca::generate("some other CA")?;
    let mut spec = LeafSpec::new(
        "plinth-coordinator",
        Role::Coordinator,
        Duration::from_secs(3600),
    );
    spec.client = true;
    let (cert, key) = other_ca.issue_with_new_key(&spec)?;
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    let res = facts_status(&c, &s).await?;
    assert!(
        res.is_err(),
        "a foreign CA's certificate must fail the handshake: {res:?}"
    );
    Ok(())
}

#[tokio::test]
async fn agent_api_refuses_an_agent_certificate() -> anyhow::Result<()> {
    let s = setup().await?;
    let (cert, key) = s.agent.credentials()?;
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    let resp = c.get(format!("{}/v1/facts", s.agent_api)).send().await?;
    assert_eq!(resp.status().as_u16(), 403);
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "forbidden");
    Ok(())
}

#[tokio::test]
async fn agent_api_refuses_an_expired_coordinator_certificate() -> anyhow::Result<()> {
    let s = setup().await?;
    let ca = Ca::load(&s.region.ca_pem, &read(&s.region, "ca.key")?)?;
    let mut spec = LeafSpec::new(
        "plinth-coordinator",
        Role::Coordinator,
        Duration::from_secs(3600),
    );
    spec.client = true;
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let (cert, key) = ca.issue_with_new_key(&spec)?;
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    let res = facts_status(&c, &s).await?;
    assert!(
        res.is_err(),
        "an expired certificate must fail the handshake: {res:?}"
    );
    Ok(())
}

fn heartbeat_body() -> serde_json::Value {
    json!({
        "facts": {"hostname": "h", "cpu_model": "m", "total_cores": 1, "total_memory_bytes": 1,
                  "libvirt_uri": "test:///default", "hypervisor": "TEST", "agent_version": "0"},
        "domains": [], "api_port": 1, "interval_ms": 1000
    })
}

#[tokio::test]
async fn an_agent_cannot_heartbeat_for_another_host() -> anyhow::Result<()> {
    let s = setup().await?;
    let other = s.region.start_agent("127.0.0.3", "az1").await?;
    let (cert, key) = s.agent.credentials()?;
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    let url = |id: &str| format!("{}/v1/agent/hosts/{id}/heartbeat", s.region.url);

    let resp = c
        .post(url(&other.host_id))
        .json(&heartbeat_body())
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 403);
    let other_host = s.region.host(&other.host_id).await?;
    assert_ne!(
        other_host["cpu_model"], "m",
        "the refused heartbeat changed nothing"
    );

    // Control: the same certificate may beat for its own host.
    let resp = c
        .post(url(&s.agent.host_id))
        .json(&heartbeat_body())
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    Ok(())
}

#[tokio::test]
async fn agent_endpoints_refuse_admins_and_the_coordinator_certificate() -> anyhow::Result<()> {
    let s = setup().await?;
    let path = format!("/v1/agent/hosts/{}/heartbeat", s.agent.host_id);
    let (status, body) = s
        .region
        .call(
            reqwest::Method::POST,
            &path,
            Some(&s.region.admin_token),
            Some(heartbeat_body()),
        )
        .await?;
    assert_eq!(
        status, 401,
        "an admin token is no agent certificate: {body}"
    );

    let (cert, key) = (
        read(&s.region, "client.pem")?,
        read(&s.region, "client.key")?,
    );
    let c = client(&s.region.ca_pem, Some((&cert, &key)))?;
    let resp = c
        .post(format!("{}{path}", s.region.url))
        .json(&heartbeat_body())
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 403);
    Ok(())
}
