//! A highly available region's drain (issue 20), on its own so that its real libvirtd hosts
//! and QEMU guests do not share the machine with the other HA tests: the lease's holder is
//! killed while it drains, and the other coordinator finishes. PostgreSQL on 127.0.0.151,
//! coordinators on .152-.153, libvirtd hosts on .155-.157.

use plinth_e2e::ha::{shared_images, start_with};
use serde_json::json;
use std::path::Path;

use plinth_e2e::drain::{self as drain, SETTLE, drain_ended, host_action, hosts_with};
use plinth_e2e::instances as inst;

/// A drain of real libvirtd hosts (the drain test's harness) whose runner, the lease's holder,
/// is killed (SIGKILL) once the first migration is under way, and not restarted: the other
/// coordinator takes the lease and finishes the drain. Every guest runs on exactly one host,
/// each was started migrating once (one "Live migration started." per guest across the
/// agents), and the claims add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_whose_runner_is_killed_is_finished_by_another() -> anyhow::Result<()> {
    let shared = |dir: &Path| shared_images(dir, &["--migration-timeout", "45s"]);
    let mut ha = start_with(151, 2, shared).await?;
    let holder = ha.holder(&[0, 1]).await?;
    let api = 1 - holder;
    let ca = std::fs::read_to_string(ha.members[0].data.join("ca.pem"))?;
    let region = plinth_e2e::Region::attached(&ha.members[api].url, &ha.admin_token, &ca)?;
    region.create_cluster("az1").await?;
    let urls: Vec<String> = ha.members.iter().map(|m| m.url.clone()).collect();
    // A beat a second: a host busy with a migration (QEMU under TCG) still beats in time.
    let agent_args = vec![
        "--coordinator-urls".to_string(),
        urls.join(","),
        "--heartbeat-interval".to_string(),
        "1s".to_string(),
    ];
    let Some(mut hvs) = hosts_with(&region, &["haA", "haB", "haC"], 155, &agent_args).await? else {
        for m in &mut ha.members {
            m.daemon.stop();
        }
        return Ok(());
    };
    let a = hvs[0].agent.host_id.clone();
    let names = ["web-1", "web-2", "web-3", "web-4"];
    let ids = plinth_e2e::drain::instances_on(&region, &hvs, 0, &names).await?;
    assert_eq!(host_action(&region, &a, "lock").await?.0, 200);
    let (status, started) = region
        .post(
            &format!("/v1/hosts/{a}/maintenance/enter"),
            json!({"parallelism": 2}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    drain::migration_started(&region, &a).await?;
    ha.members[holder].daemon.kill();

    let report = drain_ended(&region, &a)
        .await
        .map_err(|e| e.context(ha.log(api)))?;
    eprintln!("drain report: {report:#}");
    if report["host_state"] != "maintenance" {
        let keep = std::path::Path::new("/tmp/hadrain");
        let _ = std::fs::create_dir_all(keep);
        for hv in &hvs {
            let _ = std::fs::write(
                keep.join(format!("{}.log", hv.agent.host_id)),
                hv.agent.log_text(),
            );
        }
        for (i, m) in ha.members.iter().enumerate() {
            let _ = std::fs::write(keep.join(format!("{}.log", m.name)), ha.log(i));
        }
    }
    assert_eq!(report["host_state"], "maintenance", "{report}");
    assert_eq!(report["moved"], json!(ids.len()), "{report}");
    assert_eq!(ha.holder(&[api]).await?, api);
    for id in &ids {
        let i = inst::expect_state(&region, id, "running", SETTLE).await?;
        let host = i["host_id"].as_str().unwrap_or_default();
        assert_ne!(host, a, "{i}");
        let on: Vec<usize> = (0..3)
            .filter(|n| hvs[*n].running(id).ok().flatten().is_some())
            .collect();
        assert_eq!(on.len(), 1, "{id} runs on hosts {on:?}");
        assert_eq!(hvs[on[0]].agent.host_id, host, "{id}");
        let started: usize = hvs
            .iter()
            .map(|hv| {
                hv.agent
                    .log_text()
                    .lines()
                    .filter(|l| l.contains("Live migration started.") && l.contains(id.as_str()))
                    .count()
            })
            .sum();
        assert_eq!(started, 1, "{id}: migrations started");
    }
    let (cores_a, _) = inst::allocation(&region, &a).await?;
    assert_eq!(cores_a, 0, "nothing left on A");
    let mut total = 0;
    for hv in &hvs[1..] {
        total += inst::allocation(&region, &hv.agent.host_id).await?.0;
    }
    assert_eq!(total, ids.len() as u64, "every vCPU moved to B and C");
    for hv in &mut hvs {
        hv.agent.stop();
    }
    drop(hvs);
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}
