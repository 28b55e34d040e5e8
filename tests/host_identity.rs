//! A host's identity end to end: enrollment never takes over an enrolled host, re-enrollment
//! revokes the old certificate, a removed host's agent is refused at its next heartbeat and
//! renewal, a renewed certificate is refused after its grace, and the coordinator's own
//! certificates rotate without a restart while agents refuse the old ones.

use plinth_common::tls::client_config;
use plinth_e2e::instances as inst;
use plinth_e2e::{Region, RegionOptions, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

/// A client presenting `cert` and trusting the region CA.
fn client(region: &Region, cert: (&str, &str)) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&region.ca_pem, Some(cert))?)
        .timeout(Duration::from_secs(10))
        .build()?)
}

fn heartbeat_body() -> Value {
    json!({
        "facts": {"hostname": "h", "cpu_model": "m", "total_cores": 1, "total_memory_bytes": 1,
                  "libvirt_uri": "test:///default", "hypervisor": "TEST", "agent_version": "0"},
        "domains": [], "api_port": 1, "interval_ms": 1000
    })
}

/// An answer's status and its error code (empty on success).
async fn status_and_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or_default();
    (status, code.to_string())
}

/// `POST path` to the coordinator as the holder of `cert`: the status and error code.
async fn post_as(
    region: &Region,
    cert: &(String, String),
    path: &str,
    body: Value,
) -> anyhow::Result<(u16, String)> {
    let c = client(region, (&cert.0, &cert.1))?;
    let resp = c
        .post(format!("{}{path}", region.url))
        .json(&body)
        .send()
        .await?;
    Ok(status_and_code(resp).await)
}

/// A heartbeat for `host` sent with `cert`.
async fn beat_with(
    region: &Region,
    host: &str,
    cert: &(String, String),
) -> anyhow::Result<(u16, String)> {
    let path = format!("/v1/agent/hosts/{host}/heartbeat");
    post_as(region, cert, &path, heartbeat_body()).await
}

/// A renewal for `host` sent with `cert`.
async fn renew_with(
    region: &Region,
    host: &str,
    cert: &(String, String),
) -> anyhow::Result<(u16, String)> {
    let (_, csr) = plinth_common::tls::new_key_and_csr(host)?;
    let path = format!("/v1/agent/hosts/{host}/renew");
    post_as(region, cert, &path, json!({ "csr_pem": csr })).await
}

async fn certs(region: &Region, host: &str) -> anyhow::Result<Vec<Value>> {
    let (ok, out, err) = region.cli(&["--json", "hosts", "certs", host])?;
    anyhow::ensure!(ok, "plinth hosts certs: {err}");
    Ok(serde_json::from_str::<Value>(&out)?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test]
async fn an_enrollment_never_takes_over_an_enrolled_host() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.161", "az1").await?;
    region.wait_agent(&a.host_id, "online").await?;

    // A fresh token and the enrolled host's address: refused, naming the host.
    let (token, ca_hash) = region.enrollment_token("10m").await?;
    let impostor = region.dir.path().join("impostor");
    let (ok, out) = region.enroll(&impostor, "127.0.0.161", "az1", &token, &ca_hash)?;
    assert!(!ok, "an impostor enrolled: {out}");
    assert!(
        out.contains(&format!("belongs to host {}", a.host_id)),
        "{out}"
    );
    assert!(!impostor.join("agent.pem").exists());
    let (_, list) = region.get("/v1/hosts").await?;
    assert_eq!(list["total"], 1, "{list}");
    // The real agent is untouched, and the token was not used up by the refusal.
    assert_eq!(
        beat_with(&region, &a.host_id, &a.credentials()?).await?.0,
        200
    );
    let other = region.dir.path().join("other");
    let (ok, out) = region.enroll(&other, "127.0.0.162", "az1", &token, &ca_hash)?;
    assert!(ok, "{out}");
    let (_, list) = region.get("/v1/hosts").await?;
    assert_eq!(list["total"], 2, "{list}");
    Ok(())
}

#[tokio::test]
async fn reenrollment_gives_the_host_a_new_key_and_revokes_the_old() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let mut a = region.start_agent("127.0.0.163", "az1").await?;
    region.wait_agent(&a.host_id, "online").await?;
    let old = a.credentials()?;

    let (ok, out, err) =
        region.cli(&["--json", "hosts", "reenroll", &a.host_id, "--ttl", "10m"])?;
    assert!(ok, "{err}");
    let issued: Value = serde_json::from_str(&out)?;
    assert_eq!(issued["host_id"], a.host_id.as_str(), "{issued}");
    let token = issued["token"].as_str().unwrap_or_default().to_string();
    let ca_hash = issued["ca_hash"].as_str().unwrap_or_default().to_string();

    // The token is the host's, at its address: another machine cannot take it.
    let elsewhere = region.dir.path().join("elsewhere");
    let (ok, out) = region.enroll(&elsewhere, "127.0.0.164", "az1", &token, &ca_hash)?;
    assert!(!ok && out.contains("keeps a host's address"), "{out}");

    a.stop();
    let (ok, out) = region.enroll(&a.dir, "127.0.0.163", "az1", &token, &ca_hash)?;
    assert!(ok, "{out}");
    let enrollment = std::fs::read_to_string(a.dir.join("agent.toml"))?;
    assert!(
        enrollment.contains(&a.host_id),
        "the host keeps its id: {enrollment}"
    );
    a.run()?;
    region.wait_agent(&a.host_id, "online").await?;
    assert_ne!(a.credentials()?.0, old.0);

    assert_eq!(
        beat_with(&region, &a.host_id, &old).await?,
        (401, "certificate_revoked".to_string()),
        "the certificate re-enrollment replaced"
    );
    let listed = certs(&region, &a.host_id).await?;
    let status: Vec<(&str, &str)> = listed
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        status,
        vec![("current", "-"), ("revoked", "re-enrolled")],
        "{listed:?}"
    );

    // Once used, the token is spent.
    let again = region.dir.path().join("again");
    let (ok, out) = region.enroll(&again, "127.0.0.163", "az1", &token, &ca_hash)?;
    assert!(!ok && out.contains("already used"), "{out}");
    Ok(())
}

#[tokio::test]
async fn a_removed_host_is_refused_at_its_next_heartbeat_and_renewal() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.165", "az1").await?;
    region.wait_agent(&a.host_id, "online").await?;
    let creds = a.credentials()?;

    let (ok, out, err) = region.cli(&["hosts", "delete", &a.host_id])?;
    assert!(ok, "{err}");
    assert!(out.contains("removed"), "{out}");
    let (status, _) = region.get(&format!("/v1/hosts/{}", a.host_id)).await?;
    assert_eq!(status, 404);

    // The agent's next heartbeat is refused, and it says so in its log.
    let log = region.dir.path().join("agent-127.0.0.165.log");
    wait_for(
        "the agent to log its refusal",
        Duration::from_secs(15),
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Ok(text
                .contains("refuses this agent's certificate")
                .then_some(()))
        },
    )
    .await?;
    let refused = [
        "certificate_revoked".to_string(),
        "host_removed".to_string(),
    ];
    let (status, code) = beat_with(&region, &a.host_id, &creds).await?;
    assert!(status == 401 && refused.contains(&code), "{status} {code}");
    let (status, code) = renew_with(&region, &a.host_id, &creds).await?;
    assert!(status == 401 && refused.contains(&code), "{status} {code}");
    let (_, list) = region.get("/v1/hosts").await?;
    assert_eq!(list["total"], 0, "no heartbeat brings it back: {list}");

    // The address is free for a new host, with a new id.
    let (token, ca_hash) = region.enrollment_token("10m").await?;
    let fresh = region.dir.path().join("fresh");
    let (ok, out) = region.enroll(&fresh, "127.0.0.165", "az1", &token, &ca_hash)?;
    assert!(ok, "{out}");
    let enrollment = std::fs::read_to_string(fresh.join("agent.toml"))?;
    assert!(!enrollment.contains(&a.host_id), "{enrollment}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_with_instances_is_removed_only_when_forced() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.166", "az1").await?;
    region.wait_agent(&a.host_id, "online").await?;
    let tenant = inst::tenant(&region, "t@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default().to_string();
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "web-1",
        &image,
        128 * inst::MIB,
        json!({}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let iid = created["id"].as_str().unwrap_or_default().to_string();
    inst::expect_state(&region, &iid, "running", Duration::from_secs(60)).await?;

    let path = format!("/v1/hosts/{}", a.host_id);
    let (status, body) = region
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&region.admin_token),
            None,
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("host_has_instances")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&iid),
        "{body}"
    );
    // --force needs a reason.
    let (status, body) = region
        .call(
            reqwest::Method::DELETE,
            &format!("{path}?force=true"),
            Some(&region.admin_token),
            None,
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field")),
        "{body}"
    );
    assert_eq!(
        region.host(&a.host_id).await?["state"],
        "available",
        "nothing changed"
    );

    let (ok, out, err) = region.cli(&[
        "hosts",
        "delete",
        &a.host_id,
        "--force",
        "--reason",
        "mainboard died",
    ])?;
    assert!(ok, "{err}");
    assert!(out.contains(&iid), "{out}");
    let (status, instance) = region.get(&format!("/v1/instances/{iid}")).await?;
    assert_eq!(status, 200, "{instance}");
    assert_eq!(instance["state"], "error", "{instance}");
    assert!(
        instance["state_reason"]
            .as_str()
            .unwrap_or("")
            .contains("mainboard died"),
        "{instance}"
    );
    let (_, audit) = region.get("/v1/audit?limit=50").await?;
    assert!(audit.to_string().contains("mainboard died"), "{audit}");
    // The tenant can still delete the orphan.
    inst::delete(&region, &iid, Duration::from_secs(30)).await?;
    Ok(())
}

#[tokio::test]
async fn a_renewed_certificate_is_refused_after_its_grace() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        agent_cert_ttl: Some("12s".into()),
        extra_args: vec!["--renewed-cert-grace".into(), "1s".into()],
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.167", "az1").await?;
    region.wait_agent(&a.host_id, "online").await?;
    let first = a.credentials()?;
    wait_for(
        "the certificate to be renewed",
        Duration::from_secs(30),
        || async { Ok((a.credentials()?.0 != first.0).then_some(())) },
    )
    .await?;
    wait_for(
        "the replaced certificate to be refused",
        Duration::from_secs(15),
        || async {
            let (status, code) = beat_with(&region, &a.host_id, &first).await?;
            Ok((status == 401 && code == "certificate_revoked").then_some(()))
        },
    )
    .await?;
    let listed = certs(&region, &a.host_id).await?;
    assert!(
        listed
            .iter()
            .any(|c| c["status"] == "revoked" && c["reason"] == "renewed"),
        "{listed:?}"
    );
    // The agent itself carries on with its new certificate.
    assert_eq!(
        beat_with(&region, &a.host_id, &a.credentials()?).await?.0,
        200
    );
    Ok(())
}

#[tokio::test]
async fn rotated_coordinator_certificates_are_refused_by_agents_after_the_grace()
-> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let a = region.start_agent("127.0.0.168", "az1").await?;
    let host = region.wait_agent(&a.host_id, "online").await?;
    let agent_api = host["agent_api"].as_str().unwrap_or_default().to_string();
    let read = |f: &str| std::fs::read_to_string(region.data_dir().join(f));
    let old = (read("client.pem")?, read("client.key")?);
    let old_server = read("server.pem")?;
    let facts = |cert: &(String, String)| {
        let c = client(&region, (&cert.0, &cert.1));
        let url = format!("{agent_api}/v1/facts");
        async move {
            let resp = c?.get(url).send().await?;
            anyhow::Ok(status_and_code(resp).await)
        }
    };
    assert_eq!(
        facts(&old).await?.0,
        200,
        "control: the current certificate is accepted"
    );

    let out = std::process::Command::new(plinth_e2e::bin("plinth-coordinator"))
        .args(["rotate-certs", "--grace", "10s", "--data-dir"])
        .arg(region.data_dir())
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(read("server.pem")?, old_server);
    assert_ne!(read("client.pem")?, old.0);

    // After the grace the agents learn of it at their next heartbeat and refuse the old
    // certificate; the running coordinator already calls them with the new one, and the
    // agents reach it through its new server certificate.
    wait_for(
        "the agent to refuse the rotated-out certificate",
        Duration::from_secs(30),
        || async {
            let (status, code) = facts(&old).await?;
            Ok((status == 403 && code == "certificate_revoked").then_some(()))
        },
    )
    .await?;
    let new = (read("client.pem")?, read("client.key")?);
    assert_eq!(facts(&new).await?.0, 200);
    let (status, live) = region
        .get(&format!("/v1/hosts/{}/agent", a.host_id))
        .await?;
    assert_eq!(
        status, 200,
        "the coordinator calls the agent with its new certificate: {live}"
    );
    let before = region.host(&a.host_id).await?["last_seen"].clone();
    wait_for(
        "a heartbeat through the new server certificate",
        Duration::from_secs(15),
        || async {
            let host = region.host(&a.host_id).await?;
            Ok((host["last_seen"] != before && host["agent"] == "online").then_some(()))
        },
    )
    .await?;
    assert!(a.dir.join("revoked-coordinator.json").exists());
    Ok(())
}
