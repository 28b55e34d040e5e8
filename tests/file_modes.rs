//! File modes plinth sets itself (issue 16, point 6), whatever umask it was started with
//! (this test's is the shell's): data directories 0700, keys and the database 0600, image
//! blobs, instance disks and seeds 0600, cached images 0640 for QEMU's group where that group
//! exists (else 0600), and the directories QEMU passes through 0710 for that group (else 0711).

#![allow(clippy::unwrap_used)]

use plinth_e2e::Region;
use plinth_e2e::instances::{self as inst, MIB};
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect()
}

/// QEMU's group as the agent looks for it, when this test can give files to it (root).
fn qemu_group() -> Option<u32> {
    if nix::unistd::geteuid().as_raw() != 0 {
        return None;
    }
    ["libvirt-qemu", "qemu"]
        .iter()
        .find_map(|n| nix::unistd::Group::from_name(n).ok().flatten())
        .map(|g| g.gid.as_raw())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_sets_the_modes_of_what_it_makes() -> anyhow::Result<()> {
    // The daemons must not inherit this: they set their own umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.41", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let tenant = inst::tenant(&region, "m@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "modes-1",
        image["id"].as_str().unwrap(),
        128 * MIB,
        json!({}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    inst::expect_state(&region, &id, "running", Duration::from_secs(60)).await?;

    // The coordinator.
    let data = region.data_dir();
    let mut checks: Vec<(String, PathBuf, u32)> = vec![
        ("data directory".into(), data.clone(), 0o700),
        ("database".into(), data.join("plinth.db"), 0o600),
        ("CA key".into(), data.join("ca.key"), 0o600),
        ("server key".into(), data.join("server.key"), 0o600),
        ("client key".into(), data.join("client.key"), 0o600),
        ("master key".into(), data.join("master.key"), 0o600),
        ("image store".into(), data.join("images"), 0o700),
        ("blob directory".into(), data.join("images/blobs"), 0o700),
        (
            "staging directory".into(),
            data.join("images/staging"),
            0o700,
        ),
    ];
    for side in ["plinth.db-wal", "plinth.db-shm"] {
        if data.join(side).exists() {
            checks.push((side.into(), data.join(side), 0o600));
        }
    }
    let blobs = files_in(&data.join("images/blobs"));
    assert!(!blobs.is_empty(), "the uploaded image is a blob");
    for blob in blobs {
        checks.push(("image blob".into(), blob, 0o600));
    }

    // The agent.
    let group = qemu_group();
    let (pass_mode, cache_mode) = if group.is_some() {
        (0o710, 0o640)
    } else {
        (0o711, 0o600)
    };
    let instance_dir = agent.dir.join("instances").join(&id);
    checks.extend([
        (
            "agent credentials".into(),
            agent.dir.join("agent.pem"),
            0o600,
        ),
        ("agent data directory".into(), agent.dir.clone(), pass_mode),
        (
            "instances directory".into(),
            agent.dir.join("instances"),
            pass_mode,
        ),
        (
            "image cache directory".into(),
            agent.dir.join("images"),
            pass_mode,
        ),
        ("instance directory".into(), instance_dir.clone(), pass_mode),
        (
            "instance disk".into(),
            instance_dir.join("disk.qcow2"),
            0o600,
        ),
        (
            "cloud-init seed".into(),
            instance_dir.join("seed.iso"),
            0o600,
        ),
    ]);
    let cached = files_in(&agent.dir.join("images"));
    assert!(!cached.is_empty(), "the image is cached on the host");
    for file in &cached {
        checks.push(("cached image".into(), file.clone(), cache_mode));
        if let Some(gid) = group {
            assert_eq!(std::fs::metadata(file)?.gid(), gid, "{}", file.display());
        }
    }
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, path, want)| mode(path) != *want)
        .map(|(what, path, want)| {
            format!(
                "{what} {} is {:o}, not {want:o}",
                path.display(),
                mode(path)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}
