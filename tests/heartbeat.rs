//! Heartbeats and certificates over time: a stopped agent goes offline after three missed
//! beats and online when it returns; an agent renews its certificate before it expires.

use plinth_e2e::{Region, RegionOptions, wait_for};
use std::time::Duration;

#[tokio::test]
async fn a_stopped_agent_goes_offline_and_comes_back() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let mut agent = region.start_agent("127.0.0.2", "az1").await?;
    let online = region.wait_agent(&agent.host_id, "online").await?;
    let first_seen = online["last_seen"].as_str().unwrap_or_default().to_string();

    agent.stop();
    let offline = region.wait_agent(&agent.host_id, "offline").await?;
    assert_eq!(
        offline["state"], "available",
        "going offline does not change the host's state"
    );
    let (_, listed) = region.get("/v1/hosts?agent=offline").await?;
    assert_eq!(listed["total"], 1);

    // A beat the stopped agent sent just before it died may land after the window closed (a
    // loaded machine): the agent is back only once a beat newer than any before is recorded.
    let last_before = offline["last_seen"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    agent.run()?;
    let back = wait_for(
        "the restarted agent's first heartbeat",
        Duration::from_secs(30),
        || async {
            let host = region.host(&agent.host_id).await?;
            let newer = host["last_seen"].as_str().unwrap_or_default() > last_before.as_str();
            Ok((newer && host["agent"] == "online").then_some(host))
        },
    )
    .await?;
    assert!(
        back["last_seen"].as_str().unwrap_or_default() > first_seen.as_str(),
        "{back}"
    );
    let (_, listed) = region.get("/v1/hosts?agent=online").await?;
    assert_eq!(listed["total"], 1);

    // Each change of presence is in the audit log, newest first.
    let (_, audit) = region.get("/v1/audit").await?;
    let presence: Vec<&str> = audit["items"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["target"] == agent.host_id.as_str())
                .filter_map(|e| e["action"].as_str())
                .filter(|a| a.starts_with("agent "))
                .collect()
        })
        .unwrap_or_default();
    // Newest first: it ends online, began online, went offline at least once, and never
    // repeats itself (a late beat from the dying agent may add one more offline/online pair).
    assert_eq!(presence.first(), Some(&"agent online"), "{audit}");
    assert_eq!(presence.last(), Some(&"agent online"), "{audit}");
    assert!(presence.contains(&"agent offline"), "{audit}");
    assert!(presence.windows(2).all(|w| w[0] != w[1]), "{audit}");
    Ok(())
}

#[tokio::test]
async fn agents_renew_their_certificates_before_expiry() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        agent_cert_ttl: Some("12s".into()),
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.2", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let (first_cert, first_key) = agent.credentials()?;
    let (_, first_expiry) = plinth_common::tls::cert_not_after(&first_cert)?;

    // Renewal at two thirds of the lifetime: a new certificate for a new key.
    let (cert, key) = wait_for(
        "the certificate to be renewed",
        Duration::from_secs(30),
        || async {
            let (cert, key) = agent.credentials()?;
            Ok((cert != first_cert).then_some((cert, key)))
        },
    )
    .await?;
    assert_ne!(key, first_key, "renewal makes a new key");
    let (_, expiry) = plinth_common::tls::cert_not_after(&cert)?;
    assert!(expiry > first_expiry);

    // After the first certificate has expired, the agent still reaches the coordinator and
    // the coordinator still reaches the agent.
    let past_expiry = first_expiry + time::Duration::seconds(2);
    wait_for(
        "a heartbeat after the old certificate expired",
        Duration::from_secs(30),
        || async {
            let host = region.host(&agent.host_id).await?;
            let seen = host["last_seen"].as_str().unwrap_or_default();
            let seen =
                time::OffsetDateTime::parse(seen, &time::format_description::well_known::Rfc3339)?;
            Ok((seen > past_expiry && host["agent"] == "online").then_some(()))
        },
    )
    .await?;
    let (status, body) = region
        .get(&format!("/v1/hosts/{}/agent", agent.host_id))
        .await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}
