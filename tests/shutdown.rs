//! Graceful shutdown of `plinth-coordinator serve`: on SIGTERM it stops taking requests,
//! cancels its jobs, waits for them up to `shutdown_timeout`, and exits; a job cut off at the
//! deadline resumes from its store row at the next start and finishes once.

use plinth_e2e::servers;
use plinth_e2e::{Region, RegionOptions, wait_for};
use serde_json::json;
use std::time::Duration;

/// How long a test gives the coordinator to exit after SIGTERM: well past its deadline (and
/// the listener's own drain), short of the harness's SIGKILL.
const EXIT_WITHIN: Duration = Duration::from_secs(14);

#[tokio::test]
async fn an_idle_coordinator_stops_every_job_and_exits() -> anyhow::Result<()> {
    let mut region = Region::start().await?;
    region.create_cluster("c1").await?;
    let agent = region.start_agent("127.0.0.3", "c1").await?;
    region.wait_agent(&agent.host_id, "online").await?;

    // The presence watcher, certificate watcher, bare-metal sync, claim writer and API
    // server all watch the runner's token: none is left for the (default 30 s) deadline.
    let status = region.terminate(EXIT_WITHIN)?;
    assert!(status.success(), "exit status {status}");
    let log = region.coordinator_log();
    assert!(log.contains("Shutting down."), "{log}");
    assert!(log.contains("Every background job stopped."), "{log}");
    assert!(
        !log.contains("still running at the shutdown deadline"),
        "{log}"
    );
    assert!(log.contains("Shut down."), "{log}");
    Ok(())
}

#[tokio::test]
async fn an_import_cut_off_by_shutdown_resumes_and_finishes_once() -> anyhow::Result<()> {
    let mut region = Region::start_with(RegionOptions {
        extra_args: vec!["--shutdown-timeout".into(), "1s".into()],
        ..RegionOptions::default()
    })
    .await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "a@example.com", "name": "A"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{tenant}");
    let files = region.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &region.dir.path().join("http.log"))?;

    // About 8 MiB served at ~1.3 MB/s: the import cannot finish within the 1 s deadline.
    let sha = plinth_e2e::incompressible_qcow2(&files, "slow", 8)?;

    let (status, image) = region
        .post(
            "/v1/images/import",
            json!({"name": "cut-off", "tenant_id": tenant["id"], "os_type": "linux",
                   "architecture": "x86_64", "platform": "centos", "version": "7.9",
                   "target_size_gb": 20, "sha256": sha,
                   "url": format!("http://127.0.0.1:{}/slow/slow.qcow2", http.port)}),
        )
        .await?;
    assert_eq!(status, 202, "{image}");
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let op = image["operation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(
        "the import to make progress",
        Duration::from_secs(30),
        || async {
            let (_, op) = region.get(&format!("/v1/operations/{op}")).await?;
            Ok((op["progress_bytes"].as_u64().unwrap_or(0) > 0).then_some(()))
        },
    )
    .await?;

    let status = region.terminate(EXIT_WITHIN)?;
    assert!(status.success(), "exit status {status}");
    let log = region.coordinator_log();
    assert!(log.contains("Shutting down."), "{log}");
    let cut_off = log
        .lines()
        .find(|l| l.contains("still running at the shutdown deadline"))
        .unwrap_or_default();
    assert!(cut_off.contains("image import"), "{log}");
    assert!(log.contains("Shut down."), "{log}");
    assert!(!log.contains("Image imported."), "{log}");

    region.restart().await?;
    let image = wait_for(
        &format!("image {id} to settle"),
        Duration::from_secs(60),
        || async {
            let (_, image) = region.get(&format!("/v1/images/{id}")).await?;
            Ok((image["status"] != "importing").then_some(image))
        },
    )
    .await?;
    assert_eq!(image["status"], "available", "{image}");
    assert_eq!(image["sha256"], sha.as_str());
    let (_, op) = region.get(&format!("/v1/operations/{op}")).await?;
    assert_eq!(op["status"], "succeeded", "{op}");
    let log = region.coordinator_log();
    let count = |text: &str| {
        log.lines()
            .filter(|l| l.contains(text) && l.contains(id.as_str()))
            .count()
    };
    assert_eq!(count("Starting an unfinished import."), 1, "{log}");
    assert_eq!(count("Image imported."), 1, "{log}");
    Ok(())
}
