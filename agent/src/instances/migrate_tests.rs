//! Both ends of a live migration on libvirt's test driver, which cannot migrate: the target's
//! prepared files, the source's refusals, a migration that fails and leaves the instance
//! where it was, and what other operations do while one runs. The real migration between two
//! libvirtd daemons is tests/agent_migration.rs.

use super::testing::{Host, host, new_id, request, small_qcow2};
use super::*;
use plinth_common::api::{AgentMigrate, AgentMigration, AgentMigrationState, AgentPrepared};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

fn migrate_to(prepared: AgentPrepared) -> AgentMigrate {
    AgentMigrate {
        dest_uri: "test:///default".into(),
        migrate_uri: None,
        prepared,
        timeout_s: 60,
        bandwidth_mib_s: None,
        shared_storage: false,
    }
}

/// Polls the source until its migration of `id` has ended.
async fn ended(h: &Host, id: &str) -> AgentMigration {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = h.instances.migration(id, None).await.expect("migration");
        if now.state != AgentMigrationState::Running {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn prepare_makes_what_create_would_without_a_domain() {
    let base = small_qcow2().await;
    let h = host(HashMap::from([("img-base".to_string(), base.clone())])).await;
    let id = new_id();
    let req = request(&id, "img-base", &base, "qcow2");

    let prepared = h
        .instances
        .prepare_migration(req.clone(), &h.link, None)
        .await
        .expect("prepared");
    let dir = h.data.path().join("instances").join(&id);
    assert_eq!(prepared.disk_path, dir.join("disk.qcow2").to_string_lossy());
    assert_eq!(prepared.seed_path, dir.join("seed.iso").to_string_lossy());
    assert_eq!(prepared.iso_path, None);
    let info = disk::info(&dir.join("disk.qcow2")).await.expect("info");
    let cached = h
        .data
        .path()
        .join(format!("images/{}.qcow2", req.image.sha256));
    assert_eq!(info.backing_file(), cached.to_str());
    assert_eq!(info.virtual_size, req.disk_bytes);
    assert!(matches!(
        h.instances.get(&id).await,
        Err(InstanceError::NotFound(_))
    ));

    // A repeat keeps the files; the image was fetched once.
    let made_at = std::fs::metadata(&prepared.disk_path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let again = h
        .instances
        .prepare_migration(req.clone(), &h.link, None)
        .await
        .expect("again");
    assert_eq!(again, prepared);
    let kept_at = std::fs::metadata(&prepared.disk_path)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(made_at, kept_at, "the disk was made anew");
    assert_eq!(h.coordinator.gets.load(Ordering::SeqCst), 1);

    // Files for another size are made anew.
    let mut bigger = req.clone();
    bigger.disk_bytes = 96 << 20;
    h.instances
        .prepare_migration(bigger, &h.link, None)
        .await
        .expect("bigger");
    let info = disk::info(&dir.join("disk.qcow2")).await.expect("info");
    assert_eq!(info.virtual_size, 96 << 20);

    // The coordinator's clean-up after a failed attempt: no domain, the files go.
    h.instances.delete(&id).await.expect("delete");
    assert!(!dir.exists());

    // Where the instance has a domain, there is nothing to prepare.
    h.instances
        .create(req.clone(), &h.link)
        .await
        .expect("create");
    let err = h
        .instances
        .prepare_migration(req, &h.link, None)
        .await
        .expect_err("exists");
    assert!(matches!(err, InstanceError::Exists(_)), "{err}");
    assert!(dir.join("disk.qcow2").exists(), "the instance's disk stays");
    h.instances.delete(&id).await.expect("delete");
}

#[tokio::test]
async fn prepare_for_an_iso_instance_names_the_cached_iso() {
    let iso = b"pretend installer".repeat(100);
    let h = host(HashMap::from([("img-iso".to_string(), iso.clone())])).await;
    let id = new_id();
    let req = request(&id, "img-iso", &iso, "iso");
    let prepared = h
        .instances
        .prepare_migration(req.clone(), &h.link, None)
        .await
        .expect("prepared");
    let cached = h
        .data
        .path()
        .join(format!("images/{}.iso", req.image.sha256));
    assert_eq!(prepared.iso_path.as_deref(), cached.to_str());
    let info = disk::info(Path::new(&prepared.disk_path))
        .await
        .expect("info");
    assert_eq!((info.backing_file(), info.virtual_size), (None, 64 << 20));
    h.instances.delete(&id).await.expect("delete");
    assert!(cached.exists(), "the cache outlives its instances");
}

#[tokio::test]
async fn a_failed_migration_leaves_the_instance_running_here() {
    let iso = b"pretend installer".repeat(100);
    let base = small_qcow2().await;
    let h = host(HashMap::from([
        ("img-base".to_string(), base.clone()),
        ("img-iso".to_string(), iso.clone()),
    ]))
    .await;
    let id = new_id();
    let made = h
        .instances
        .create(request(&id, "img-base", &base, "qcow2"), &h.link)
        .await
        .expect("create");
    assert_eq!(
        h.instances.migration(&id, None).await.expect("none").state,
        AgentMigrationState::None
    );
    let there = AgentPrepared {
        disk_path: "/elsewhere/disk.qcow2".into(),
        seed_path: "/elsewhere/seed.iso".into(),
        iso_path: None,
    };

    // The test driver cannot migrate: the job fails in the background.
    let started = h
        .instances
        .migrate(&id, migrate_to(there.clone()))
        .await
        .expect("started");
    assert_eq!(started.state, AgentMigrationState::Running);
    let failed = ended(&h, &id).await;
    assert_eq!(failed.state, AgentMigrationState::Failed, "{failed:?}");
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("libvirt")),
        "{failed:?}"
    );
    assert!(failed.libvirt_ms.is_some());
    let still = h.instances.get(&id).await.expect("still here");
    assert_eq!(
        (still.state.as_str(), still.domain_uuid),
        ("running", made.domain_uuid)
    );
    assert!(Path::new(&still.disk_path).exists());
    let after = h.instances.abort_migration(&id).await.expect("abort");
    assert_eq!(after, failed, "nothing runs: the last outcome");

    // Refusals, before anything starts.
    let err = h
        .instances
        .migrate("inst-nope", migrate_to(there.clone()))
        .await
        .expect_err("no such instance");
    assert!(matches!(err, InstanceError::NotFound(_)), "{err}");
    h.instances
        .stop(&id, Duration::from_secs(1))
        .await
        .expect("stop");
    let err = h
        .instances
        .migrate(&id, migrate_to(there.clone()))
        .await
        .expect_err("stopped");
    assert!(matches!(err, InstanceError::BadState { .. }), "{err}");
    h.instances.delete(&id).await.expect("delete");

    let iso_id = new_id();
    h.instances
        .create(request(&iso_id, "img-iso", &iso, "iso"), &h.link)
        .await
        .expect("create from an ISO");
    let err = h
        .instances
        .migrate(&iso_id, migrate_to(there))
        .await
        .expect_err("the target has no ISO");
    assert!(matches!(err, InstanceError::NotMigratable { .. }), "{err}");
    assert!(err.to_string().contains("iso_path"), "{err}");
    assert_eq!(
        h.instances
            .migration(&iso_id, None)
            .await
            .expect("none")
            .state,
        AgentMigrationState::None
    );
    h.instances.delete(&iso_id).await.expect("delete");
}

#[tokio::test]
async fn while_migrating_reads_answer_and_changes_wait_their_turn() {
    let base = small_qcow2().await;
    let h = host(HashMap::from([("img-base".to_string(), base.clone())])).await;
    let id = new_id();
    let req = request(&id, "img-base", &base, "qcow2");
    h.instances
        .create(req.clone(), &h.link)
        .await
        .expect("create");
    // As a migration in flight would (the test driver's fail at once).
    h.instances.migrations.begin(&id).expect("begin");

    assert_eq!(h.instances.get(&id).await.expect("get").state, "running");
    let now = h.instances.migration(&id, None).await.expect("migration");
    assert_eq!(now.state, AgentMigrationState::Running);
    let there = AgentPrepared {
        disk_path: "/b/disk.qcow2".into(),
        seed_path: "/b/seed.iso".into(),
        iso_path: None,
    };
    let refused = [
        (
            "migrate",
            h.instances.migrate(&id, migrate_to(there)).await.err(),
        ),
        (
            "stop",
            h.instances.stop(&id, Duration::from_secs(1)).await.err(),
        ),
        ("reboot", h.instances.reboot(&id).await.err()),
        ("delete", h.instances.delete(&id).await.err()),
        (
            "create",
            h.instances.create(req.clone(), &h.link).await.err(),
        ),
        (
            "prepare",
            h.instances
                .prepare_migration(req, &h.link, None)
                .await
                .err(),
        ),
    ];
    for (label, err) in refused {
        assert!(
            matches!(err, Some(InstanceError::Migrating(_))),
            "{label}: {err:?}"
        );
    }
    let aborting = h.instances.abort_migration(&id).await.expect("abort");
    assert_eq!(aborting.state, AgentMigrationState::Running);
    assert_eq!(
        aborting.error.as_deref(),
        Some("aborted on request; aborting")
    );

    h.instances
        .migrations
        .failed(&id, "operation aborted".into(), Duration::from_secs(1));
    h.instances.delete(&id).await.expect("delete once it ended");
}
