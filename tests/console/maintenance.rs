//! The maintenance screen's workflows in a real browser (see main.rs): a host's drain plan,
//! entering maintenance, the live board of the drain and exiting, all through the UI, on two
//! hosts that are each a real libvirtd + QEMU (the guest live-migrates to the other host).
//! A second instance holds a USB device, so the first drain leaves it and ends with the host
//! locked; it is deleted and the drain retried from the board. Where real libvirt is not
//! allowed (`PLINTH_SKIP_REAL_LIBVIRT=1`), two test-driver hosts and stopped instances: the
//! drain releases the first instead.

use super::BrowserEnv;
use plinth_e2e::drain::{self, Guests, SETTLE, attach_usb, host_action};
use plinth_e2e::instances::{self as inst, MIB};
use plinth_e2e::{Agent, Region};
use serde_json::json;

/// The agents' addresses (this test's own range of loopback addresses).
const BASE: u8 = 205;
/// The instance the drain moves, and the one with a USB device that stays.
const NAMES: [&str; 2] = ["web-1", "usb-1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintenance_plan_drain_and_exit_in_a_real_browser() -> anyhow::Result<()> {
    super::node_modules()?;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let tenant = inst::tenant(&region, "maint@example.com").await?;
    // A beat a second (the harness's default is 300 ms, offline after 900 ms): the browser
    // tests run at once, and a host must not look offline to the plan while the machine is
    // busy with them.
    let beat = ["--heartbeat-interval".to_string(), "1s".to_string()];
    let hvs = drain::hosts_with(&region, &["hvM1", "hvM2"], BASE, &beat).await?;
    let (hosts, ids, outcome, _agents) = match &hvs {
        Some(hvs) => {
            // A guest that boots and halts: its live migration is quick and costs no CPU.
            let image = drain::idle_image(&region, &tenant.id).await?;
            let guests = Guests {
                token: tenant.token.clone(),
                image: image["id"].as_str().unwrap_or_default().to_string(),
                vcpus: 1,
            };
            let ids = guests.on(&region, hvs, 0, &NAMES).await?;
            let hosts = [hvs[0].agent.host_id.clone(), hvs[1].agent.host_id.clone()];
            (hosts, ids, "moved", Vec::new())
        }
        None => {
            let (agents, ids) = test_driver_hosts(&region, &tenant).await?;
            let hosts = [agents[0].host_id.clone(), agents[1].host_id.clone()];
            (hosts, ids, "released", agents)
        }
    };
    let (instance, usb) = (&ids[0], &ids[1]);
    attach_usb(&region, usb)?;

    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_HOST_ID", &hosts[0])
        .set("CONSOLE_OTHER_HOST_ID", &hosts[1])
        .set("CONSOLE_INSTANCE_ID", instance)
        .set("CONSOLE_USB_INSTANCE_ID", usb)
        .set("CONSOLE_MAINT_OUTCOME", outcome);
    env.run(&["tests/maintenance.mjs"]).await?;

    // What the UI did, once more from here: the host is back to locked, the instance left it.
    let host = region.host(&hosts[0]).await?;
    assert_eq!(host["state"], "locked", "{host}");
    let moved = inst::expect_state(
        &region,
        instance,
        if hvs.is_some() { "running" } else { "stopped" },
        SETTLE,
    )
    .await?;
    let want = if hvs.is_some() {
        json!(hosts[1])
    } else {
        json!(null)
    };
    assert_eq!(moved["host_id"], want, "{moved}");
    if let Some(hvs) = &hvs {
        assert!(hvs[1].running(instance)?.is_some(), "libvirt runs it on B");
        assert!(hvs[0].running(instance)?.is_none(), "and no more on A");
    }
    drop(hvs);
    Ok(())
}

/// Two test-driver hosts in az1, and on the first [`NAMES`] of `tenant`, stopped (a drain
/// releases them: the test driver cannot live-migrate).
async fn test_driver_hosts(
    region: &Region,
    tenant: &inst::Tenant,
) -> anyhow::Result<(Vec<Agent>, Vec<String>)> {
    let mut agents = Vec::new();
    for i in 0..2 {
        let agent = region
            .start_agent(&format!("127.0.0.{}", BASE + 2 + i), "az1")
            .await?;
        region.wait_agent(&agent.host_id, "online").await?;
        agents.push(agent);
    }
    host_action(region, &agents[1].host_id, "lock").await?;
    let image = inst::qcow2_image(region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default();
    let mut ids = Vec::new();
    for name in NAMES {
        let (status, body) =
            inst::create(region, &tenant.token, name, image, 128 * MIB, json!({})).await?;
        anyhow::ensure!(status == 202, "create {name}: {status} {body}");
        let id = body["id"].as_str().unwrap_or_default().to_string();
        inst::expect_state(region, &id, "running", SETTLE).await?;
        inst::act(region, &id, "stop").await?;
        inst::expect_state(region, &id, "stopped", SETTLE).await?;
        ids.push(id);
    }
    host_action(region, &agents[1].host_id, "unlock").await?;
    Ok((agents, ids))
}
