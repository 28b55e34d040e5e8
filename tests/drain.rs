//! Maintenance drains on real libvirt: three private libvirtd + QEMU (TCG) "hosts", three
//! agents and a coordinator, all started here. A drain live-migrates the running guests to
//! the other hosts (libvirt runs them there with the same UUID), releases the stopped one,
//! leaves one with a USB device, and survives a coordinator killed mid-drain; a target agent
//! that dies mid-migration leaves the guest running on its source.

use plinth_e2e::drain::{
    self as drain, DRAIN, Guests, SETTLE, attach_usb, drain_ended, drain_plan, drain_report,
    host_action, hosts, instances_on, item,
};
use plinth_e2e::instances::{self as inst, MIB};
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
    let plan = drain_plan(&region, &a).await?;
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
    drain::migration_started(&region, &a).await?;
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
        let on = drain::moved_off(&region, &hvs, id, &a).await?;
        assert_eq!(
            hvs[on].running(id)?.as_deref(),
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

/// Two hosts, A full, B with room for one more guest: the plan says the cluster cannot take
/// all of A, the drain moves what fits and leaves the other running on A; a guest whose
/// migration cannot converge (it rewrites its disk faster than the 1 MiB/s allowed) stays
/// running on A when B's agent is killed mid-migration, and the report says why; then, B
/// back, a manual migration from the CLI moves a quiet guest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_moves_what_fits_and_leaves_the_rest_running_on_the_source() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        extra_args: [
            "--cpu-overcommit",
            "2",
            "--migration-bandwidth-mib-s",
            "1",
            "--migration-attempts",
            "1",
            "--migration-timeout",
            "120s",
        ]
        .map(String::from)
        .to_vec(),
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let Some(mut hvs) = hosts(&region, &["hvD", "hvE"], 74).await? else {
        return Ok(());
    };
    let (a, b) = (hvs[0].agent.host_id.clone(), hvs[1].agent.host_id.clone());
    // With as many vCPUs as the host has cores (overcommitted 2:1), a host takes two guests.
    let cores = region.host(&a).await?["total_cores"].as_u64().unwrap_or(1);
    let tenant = inst::tenant(&region, "ops@example.com").await?;
    let guests = |image: &str| Guests {
        token: tenant.token.clone(),
        image: image.to_string(),
        vcpus: cores,
    };
    let idle = drain::idle_image(&region, &tenant.id).await?;
    let idle = guests(idle["id"].as_str().unwrap_or_default());
    let filler = idle.on(&region, &hvs, 1, &["filler"]).await?;
    let small = idle.on(&region, &hvs, 0, &["small-1", "small-2"]).await?;

    // A cluster without room: the plan says so, the drain moves one and leaves one.
    assert_eq!(host_action(&region, &a, "lock").await?.0, 200);
    let plan = drain_plan(&region, &a).await?;
    assert_eq!(
        (&plan["to_migrate"], &plan["fits"]),
        (&json!(2), &json!(false)),
        "{plan}"
    );
    let (status, body) = host_action(&region, &a, "maintenance/enter").await?;
    assert_eq!(status, 202, "{body}");
    let report = drain_ended(&region, &a).await?;
    assert_eq!(
        (&report["host_state"], &report["moved"], &report["stayed"]),
        (&json!("locked"), &json!(1), &json!(1)),
        "{report}"
    );
    let stayed = small
        .iter()
        .find(|id| item(&report, id)["status"] == "stayed")
        .cloned()
        .unwrap_or_default();
    let moved = small
        .iter()
        .find(|id| **id != stayed)
        .cloned()
        .unwrap_or_default();
    assert!(
        item(&report, &stayed)["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no host")),
        "{report}"
    );
    assert!(hvs[0].running(&stayed)?.is_some(), "it still runs on A");
    assert!(hvs[1].running(&moved)?.is_some(), "the other runs on B");
    // The drain is an operation: a step per move started, moved or left behind (naming the
    // instance and the target), and the moves ended of all as its item progress.
    let op = report["operation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, op) = region.get(&format!("/v1/operations/{op}")).await?;
    assert_eq!(
        (status, op["kind"].as_str(), op["status"].as_str()),
        (200, Some("host_drain"), Some("failed")),
        "{op}"
    );
    assert_eq!(
        (op["items_done"].as_u64(), op["items_total"].as_u64()),
        (Some(2), Some(2)),
        "{op}"
    );
    let steps: Vec<&str> = op["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["message"].as_str()).collect())
        .unwrap_or_default();
    let has = |id: &str, what: &str| steps.iter().any(|s| s.contains(id) && s.contains(what));
    assert!(
        has(&moved, &format!("live migration to {b} started")),
        "{op}"
    );
    assert!(has(&moved, &format!("moved to {b}")), "{op}");
    assert!(has(&stayed, "left on its host"), "{op}");
    let (_, listed) = region
        .get(&format!("/v1/operations?kind=host_drain&resource={a}"))
        .await?;
    assert_eq!(listed["total"], 1, "{listed}");

    // Room on B again; a guest that cannot converge on A.
    for id in [&filler[0], &moved, &stayed] {
        inst::delete(&region, id, SETTLE).await?;
    }
    assert_eq!(host_action(&region, &a, "unlock").await?.0, 200);
    let busy = drain::busy_image(&region, &tenant.id).await?;
    let busy = guests(busy["id"].as_str().unwrap_or_default());
    let busy = busy.on(&region, &hvs, 0, &["busy"]).await?[0].clone();
    let uuid = hvs[0].running(&busy)?.unwrap_or_default();
    // Its disk holds 12 MiB of writes before the drain: at 1 MiB/s, their copy alone takes
    // longer than killing B's agent and noticing it.
    let disk = hvs[0]
        .agent
        .dir
        .join("instances")
        .join(&busy)
        .join("disk.qcow2");
    wait_for("the busy guest's writes", DRAIN, || async {
        let size = inst::qemu_img_info(&disk)?["actual-size"].as_u64();
        Ok((size >= Some(12 * MIB)).then_some(()))
    })
    .await?;

    // Kill B's agent once the transfer is under way.
    assert_eq!(host_action(&region, &a, "lock").await?.0, 200);
    let (status, body) = host_action(&region, &a, "maintenance/enter").await?;
    assert_eq!(status, 202, "{body}");
    wait_for("the transfer", DRAIN, || async {
        let d = drain_report(&region, &a).await?;
        let i = item(&d, &busy);
        Ok(
            (i["status"] == "migrating" && i["progress"]["elapsed_ms"].as_u64() > Some(1000))
                .then_some(()),
        )
    })
    .await?;
    hvs[1].agent.kill();
    let report = drain_ended(&region, &a).await?;
    eprintln!("drain report: {report:#}");
    assert_eq!(report["host_state"], "locked", "{report}");
    assert_eq!(item(&report, &busy)["status"], "stayed", "{report}");
    assert!(
        item(&report, &busy)["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&b) && r.contains("stopped answering")),
        "{report}"
    );
    assert_eq!(
        hvs[0].running(&busy)?.as_deref(),
        Some(uuid.as_str()),
        "runs on A"
    );
    assert!(hvs[1].running(&busy)?.is_none(), "not on B");
    let on_a = inst::expect_state(&region, &busy, "running", SETTLE).await?;
    assert_eq!(on_a["host_id"], a.as_str(), "{on_a}");
    assert_eq!(
        inst::allocation(&region, &b).await?.0,
        0,
        "B's claim given back"
    );

    // B back: a manual migration from the CLI moves a quiet guest.
    hvs[1].agent.run()?;
    region.wait_agent(&b, "online").await?;
    inst::delete(&region, &busy, SETTLE).await?;
    assert_eq!(host_action(&region, &a, "unlock").await?.0, 200);
    let calm = idle.on(&region, &hvs, 0, &["calm"]).await?[0].clone();
    let (ok, out, err) = region.cli(&["instances", "migrate", &calm, "--to", &b, "--wait"])?;
    assert!(ok, "{out}{err}");
    assert!(out.contains("moved to") && out.contains(&b), "{out}");
    assert!(hvs[1].running(&calm)?.is_some(), "runs on B");
    assert!(hvs[0].running(&calm)?.is_none(), "not on A");
    drop(hvs);
    Ok(())
}
