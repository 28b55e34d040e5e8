//! Instances end to end on this host's real tools: libvirt's test driver (in-process), qemu-img,
//! genisoimage, and a local HTTP server standing in for the coordinator's image routes.

use super::testing::{err_chain, host, new_id, request, small_qcow2};
use super::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn create_stop_start_reboot_export_delete() {
    let base = small_qcow2().await;
    let h = host(HashMap::from([("img-base".to_string(), base.clone())])).await;
    let id = new_id();
    let req = request(&id, "img-base", &base, "qcow2");
    let sha = req.image.sha256.clone();

    let made = h
        .instances
        .create(req.clone(), &h.link)
        .await
        .expect("created");
    assert_eq!(made.state, "running");
    assert_eq!((made.vcpus, made.memory_bytes), (2, 256 << 20));
    let dir = h.data.path().join("instances").join(&id);
    assert_eq!(made.disk_path, dir.join("disk.qcow2").to_string_lossy());
    let cached = h.data.path().join(format!("images/{sha}.qcow2"));
    assert_eq!(made.backing_file.as_deref(), cached.to_str());
    assert!(dir.join("seed.iso").exists());

    // A repeat answers what exists; the image was fetched once.
    let again = h.instances.create(req, &h.link).await.expect("idempotent");
    assert_eq!(again.domain_uuid, made.domain_uuid);
    assert_eq!(h.coordinator.gets.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.instances.get(&id).await.expect("get").domain_uuid,
        made.domain_uuid
    );

    let stopped = h
        .instances
        .stop(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    assert_eq!(stopped.state, "shutoff");
    let stopped = h
        .instances
        .stop(&id, Duration::from_secs(10))
        .await
        .expect("stop again");
    assert_eq!(stopped.state, "shutoff");
    let err = h
        .instances
        .reboot(&id)
        .await
        .expect_err("reboot needs running");
    assert!(matches!(err, InstanceError::BadState { .. }), "{err}");

    assert_eq!(
        h.instances.start(&id).await.expect("start").state,
        "running"
    );
    assert_eq!(
        h.instances.start(&id).await.expect("start again").state,
        "running"
    );
    assert_eq!(
        h.instances.reboot(&id).await.expect("reboot").state,
        "running"
    );

    // Export while running: a flattened qcow2 reaches the coordinator; nothing stays behind.
    let exported = h
        .instances
        .export(&id, "img-export", &h.link)
        .await
        .expect("export");
    let uploaded = h.coordinator.uploads.lock().expect("uploads")["img-export"].clone();
    assert_eq!(exported.size_bytes, uploaded.len() as u64);
    assert_eq!(exported.sha256, hex::encode(Sha256::digest(&uploaded)));
    assert!(uploaded.starts_with(b"QFI\xfb"), "a qcow2");
    let err = h
        .instances
        .export(&id, "refuse-img", &h.link)
        .await
        .expect_err("the coordinator refuses");
    assert!(
        err_chain(&err).contains("uploaded once"),
        "{}",
        err_chain(&err)
    );
    let exports = h.data.path().join("exports");
    assert_eq!(std::fs::read_dir(&exports).expect("exports").count(), 0);

    h.instances.delete(&id).await.expect("delete");
    assert!(matches!(
        h.instances.get(&id).await,
        Err(InstanceError::NotFound(_))
    ));
    assert!(!dir.exists());
    assert!(cached.exists(), "the cache outlives its instances");
    h.instances
        .delete(&id)
        .await
        .expect("deleting again succeeds");
    assert!(matches!(
        h.instances.start(&id).await,
        Err(InstanceError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_iso_boots_in_front_of_an_empty_disk() {
    let iso = b"pretend installer".repeat(100);
    let h = host(HashMap::from([("img-iso".to_string(), iso.clone())])).await;
    let id = new_id();
    let made = h
        .instances
        .create(request(&id, "img-iso", &iso, "iso"), &h.link)
        .await
        .expect("created");
    assert_eq!(made.state, "running");
    assert_eq!(made.backing_file, None);
    h.instances.delete(&id).await.expect("delete");
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    let base = small_qcow2().await;
    let not_qcow2 = b"not a disk image".to_vec();
    let h = host(HashMap::from([
        ("img-base".to_string(), base.clone()),
        ("img-junk".to_string(), not_qcow2.clone()),
    ]))
    .await;
    type Edit = fn(&mut AgentCreateInstance);
    let cases: [(&str, &str, &[u8], Edit, &str); 4] = [
        (
            "unknown image",
            "img-none",
            &base,
            |_| {},
            "fetching image img-none",
        ),
        (
            "sha256 mismatch",
            "img-base",
            &base,
            |r| r.image.sha256 = "0".repeat(64),
            "SHA-256",
        ),
        (
            "not a qcow2",
            "img-junk",
            &not_qcow2,
            |_| {},
            "making the disk",
        ),
        (
            "libvirt refuses the definition",
            "img-base",
            &base,
            |r| r.vcpus = 0,
            "defining the domain",
        ),
    ];
    for (label, image_id, bytes, edit, step) in cases {
        let id = new_id();
        let mut req = request(&id, image_id, bytes, "qcow2");
        edit(&mut req);
        let err = h.instances.create(req, &h.link).await.expect_err(label);
        assert!(
            err_chain(&err).contains(step),
            "{label}: {}",
            err_chain(&err)
        );
        assert!(
            matches!(h.instances.get(&id).await, Err(InstanceError::NotFound(_))),
            "{label}: no domain"
        );
        assert!(
            !h.data.path().join("instances").join(&id).exists(),
            "{label}: no instance directory"
        );
        let partials = cache::leftovers(&h.data.path().join("images"));
        assert!(partials.is_empty(), "{label}: {partials:?}");
        let staged = std::fs::read_dir(h.data.path().join("instances"))
            .expect("instances")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect::<Vec<_>>();
        assert!(staged.is_empty(), "{label}: {staged:?}");
    }
}
