//! The instances screen's workflows in a real browser (see main.rs): a tenant creates an
//! instance from an image with an admin password (bad fields answered under the field), sees it
//! reach running live, stops and starts it, exports it as an image, binds and unbinds an EIP of
//! its own and deletes it; a second tenant sees none of it; an admin creates one for the tenant
//! from an `os` ISO and migrates the first to the other host with the target picker. Two agents
//! on libvirt's test driver in one cluster, each offering the test driver for migrations (which
//! it cannot do: the move is made, tried and recorded, and the instance stays where it was).

use super::BrowserEnv;
use plinth_e2e::Region;
use plinth_e2e::instances::{self as inst};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_screen_workflows() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let mut hosts = Vec::new();
    for ip in ["127.0.0.210", "127.0.0.211"] {
        let agent = region
            .start_migrating_agent(ip, "az1", "test:///default", "test:///default")
            .await?;
        region.wait_agent(&agent.host_id, "online").await?;
        hosts.push(agent);
    }
    let owner = inst::tenant(&region, "inst-owner@example.com").await?;
    let other = inst::tenant(&region, "inst-other@example.com").await?;
    let image = inst::qcow2_image(&region, &owner.id, "blank", "64M").await?;
    // ISOs of the owner: one to install an OS from (offered), one of tools (not offered).
    let iso = region.dir.path().join("cd.iso");
    let mut bytes = vec![0u8; 0x9000];
    bytes[0x8001..0x8006].copy_from_slice(b"CD001");
    std::fs::write(&iso, &bytes)?;
    let os_iso = inst::upload(
        &region,
        &owner.id,
        "install-os",
        &iso,
        json!({"type": "iso", "iso_purpose": "os"}),
    )
    .await?;
    let tool_iso = inst::upload(
        &region,
        &owner.id,
        "tools",
        &iso,
        json!({"type": "iso", "iso_purpose": "tool"}),
    )
    .await?;

    // An external segment (admin, through the API) and an EIP of the owner from it.
    let (status, seg) = region
        .post(
            "/v1/segments",
            json!({"name": "public-v4", "cidr": "203.0.113.0/28",
                "gateway": "203.0.113.1", "nic": "eth0"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "create segment: {status} {seg}");
    let (status, eip) = region
        .post(
            "/v1/eips",
            json!({"tenant_id": owner.id, "segment_id": seg["id"]}),
        )
        .await?;
    anyhow::ensure!(status == 201, "allocate EIP: {status} {eip}");

    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_TENANT_TOKEN", owner.token)
        .set("CONSOLE_TENANT_ID", owner.id)
        .set("CONSOLE_OTHER_TOKEN", other.token)
        .set("CONSOLE_IMAGE_ID", image["id"].as_str().unwrap_or_default())
        .set(
            "CONSOLE_OS_ISO_ID",
            os_iso["id"].as_str().unwrap_or_default(),
        )
        .set(
            "CONSOLE_TOOL_ISO_ID",
            tool_iso["id"].as_str().unwrap_or_default(),
        )
        .set("CONSOLE_EIP_ID", eip["id"].as_str().unwrap_or_default())
        .set(
            "CONSOLE_EIP_ADDRESS",
            eip["address"].as_str().unwrap_or_default(),
        )
        .set(
            "CONSOLE_HOSTS",
            hosts
                .iter()
                .map(|h| h.host_id.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    env.run(&["tests/instances.mjs"]).await?;
    Ok(())
}
