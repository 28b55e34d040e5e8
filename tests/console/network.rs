//! The network screen's workflows in a real browser (see main.rs): a segment refused by the
//! form's own checks and by the API (each error under its field, nothing created), one
//! created and restricted to a tenant by email, and that tenant's EIP allocated, bound to its
//! instance, unbound and released, each checked against the API.

use super::{BrowserEnv, node};
use anyhow::Context;
use plinth_e2e::Region;
use plinth_e2e::instances::{self as inst, MIB};
use serde_json::json;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn network_segments_permissions_and_eips() -> anyhow::Result<()> {
    super::node_modules()?;
    node(&["tests/network_units.mjs"], &[]).await?;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.225", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let a = inst::tenant(&region, "net-a@example.com").await?;
    let _b = inst::tenant(&region, "net-b@example.com").await?;
    let image = inst::qcow2_image(&region, &a.id, "blank-net", "64M").await?;
    let image_id = image["id"].as_str().context("image id")?;
    let (status, vm) =
        inst::create(&region, &a.token, "web-1", image_id, 64 * MIB, json!({})).await?;
    anyhow::ensure!(status == 202, "create instance: {status} {vm}");
    let vm_id = vm["id"].as_str().context("instance id")?.to_string();
    inst::expect_state(&region, &vm_id, "running", SETTLE).await?;

    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_TENANT_TOKEN", a.token)
        .set("CONSOLE_TENANT_ID", a.id)
        .set("CONSOLE_TENANT_EMAIL", "net-a@example.com")
        .set("CONSOLE_INSTANCE_ID", vm_id);
    env.run(&["tests/network.mjs"]).await
}
