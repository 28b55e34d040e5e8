//! Maintenance drains on real libvirt: three private libvirtd + QEMU (TCG) "hosts", three
//! agents and a coordinator, all started here. A drain live-migrates the running guests to
//! the other hosts (libvirt runs them there with the same UUID), releases the stopped one,
//! leaves one with a USB device, and survives a coordinator killed mid-drain; a target agent
//! that dies mid-migration leaves the guest running on its source.

use plinth_e2e::drain::{
    DRAIN, SETTLE, attach_usb, drain_ended, drain_report, host_action, hosts, instances_on, item,
};
use plinth_e2e::instances as inst;
use plinth_e2e::{Region, RegionOptions, wait_for};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_moves_running_guests_live_and_survives_a_coordinator_crash() -> anyhow::Result<()>
{
    // A migration stuck before its copy starts is aborted well inside the test's wait.
    let mut region = Region::start_with(RegionOptions {
        extra_args: vec!["--migration-timeout".into(), "45s".into()],
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let Some(hvs) = hosts(&region, &["hvA", "hvB", "hvC"], 71).await? else {
        return Ok(());
    };
    let a = hvs[0].agent.host_id.clone();
    let ids = instances_on(
        &region,
        &hvs,
        0,
        &["web-1", "web-2", "web-3", "web-4", "db-1", "usb-1"],
    )
    .await?;
    let (running, stopped, usb) = (&ids[..4], &ids[4], &ids[5]);
    inst::act(&region, stopped, "stop").await?;
    inst::expect_state(&region, stopped, "stopped", SETTLE).await?;
    attach_usb(&region, usb)?;
    let uuids: Vec<String> = running
        .iter()
        .map(|id| hvs[0].running(id).map(Option::unwrap_or_default))
        .collect::<anyhow::Result<_>>()?;

    // Entering needs a locked host.
    let (status, body) = host_action(&region, &a, "maintenance/enter").await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(host_action(&region, &a, "lock").await?.0, 200);

    // The plan: four to migrate, one to release, one blocked; the cluster has room.
    let (status, plan) = region
        .get(&format!("/v1/hosts/{a}/maintenance/plan"))
        .await?;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        (
            &plan["to_migrate"],
            &plan["to_release"],
            &plan["blocked"],
            &plan["fits"]
        ),
        (&json!(4), &json!(1), &json!(1), &json!(true)),
        "{plan}"
    );

    // Enter, and kill the coordinator as soon as the first migration is under way.
    let (status, started) = region
        .post(
            &format!("/v1/hosts/{a}/maintenance/enter"),
            json!({"parallelism": 2}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    wait_for("a migration to start", DRAIN, || async {
        let d = drain_report(&region, &a).await?;
        Ok(d["items"]
            .as_array()
            .is_some_and(|i| {
                i.iter()
                    .any(|i| i["status"] == "migrating" || i["status"] == "moved")
            })
            .then_some(()))
    })
    .await?;
    region.kill();
    region.restart().await?;

    let report = drain_ended(&region, &a).await?;
    eprintln!("drain report: {report:#}");
    // The USB instance stayed, so the host is back to locked with the report naming it.
    assert_eq!(report["host_state"], "locked", "{report}");
    assert_eq!(item(&report, usb)["status"], "stayed", "{report}");
    assert!(
        item(&report, usb)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("usb-1-2")),
        "{report}"
    );
    assert_eq!(item(&report, stopped)["status"], "released", "{report}");
    assert_eq!(
        (&report["moved"], &report["released"], &report["stayed"]),
        (&json!(4), &json!(1), &json!(1))
    );

    // Every running guest runs on another host, with the same UUID, once.
    for (id, uuid) in running.iter().zip(&uuids) {
        let i = inst::expect_state(&region, id, "running", SETTLE).await?;
        let host = i["host_id"].as_str().unwrap_or_default();
        assert_ne!(host, a, "{i}");
        let on: Vec<usize> = (0..3)
            .filter(|n| hvs[*n].running(id).ok().flatten().is_some())
            .collect();
        assert_eq!(on.len(), 1, "{id} runs on hosts {on:?}");
        assert_eq!(hvs[on[0]].agent.host_id, host, "{id}");
        assert_eq!(
            hvs[on[0]].running(id)?.as_deref(),
            Some(uuid.as_str()),
            "{id}: same UUID"
        );
        assert!(
            item(&report, id)["libvirt_ms"].as_u64().is_some(),
            "{report}"
        );
    }
    let released = inst::expect_state(&region, stopped, "stopped", SETTLE).await?;
    assert_eq!(released["host_id"], Value::Null, "{released}");
    // Allocations follow: A holds only the USB instance; B and C hold what moved.
    let (cores_a, _) = inst::allocation(&region, &a).await?;
    assert_eq!(cores_a, 1, "one vCPU left on A");
    let mut total = 0;
    for hv in &hvs[1..] {
        total += inst::allocation(&region, &hv.agent.host_id).await?.0;
    }
    assert_eq!(total, 4, "four vCPUs moved to B and C");

    // Delete the USB instance, enter again: nothing is left, the host is in maintenance.
    inst::delete(&region, usb, SETTLE).await?;
    let (status, body) = host_action(&region, &a, "maintenance/enter").await?;
    assert_eq!(status, 202, "{body}");
    let report = drain_ended(&region, &a).await?;
    assert_eq!(report["host_state"], "maintenance", "{report}");
    let (status, host) = host_action(&region, &a, "maintenance/exit").await?;
    assert_eq!((status, &host["state"]), (200, &json!("locked")), "{host}");
    drop(hvs);
    Ok(())
}
