//! Live migration on shared storage: two real libvirtd + QEMU (TCG) hosts whose agents keep
//! instance disks on one directory both mount. The storage is a FUSE mount (bindfs) typed
//! `fuse.glusterfs`, which libvirt recognises as a shared filesystem: libvirt refuses a
//! migration that copies no disk from a local filesystem ("Migration without shared storage
//! is unsafe"), so a moved guest here is proof the disks stayed where they were.

use plinth_e2e::drain::{Guests, SETTLE, hosts_with, idle_image};
use plinth_e2e::instances as inst;
use plinth_e2e::process::Daemon;
use plinth_e2e::{Region, wait_for};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A FUSE view of `src` at `mnt` that libvirt takes for GlusterFS; unmounted when dropped.
struct SharedMount {
    daemon: Daemon,
    mnt: std::path::PathBuf,
}

impl SharedMount {
    /// `None` where bindfs or FUSE is missing (the test then says so and skips).
    async fn start(src: &Path, mnt: &Path, log: &Path) -> anyhow::Result<Option<SharedMount>> {
        let bindfs = Path::new("/usr/bin/bindfs");
        if !bindfs.exists() || !Path::new("/dev/fuse").exists() {
            eprintln!("SKIPPED: shared storage needs bindfs and /dev/fuse");
            return Ok(None);
        }
        std::fs::create_dir_all(src)?;
        std::fs::create_dir_all(mnt)?;
        let mut cmd = Command::new(bindfs);
        cmd.args(["-f", "-o", "subtype=glusterfs,fsname=plinth-shared"])
            .arg(src)
            .arg(mnt);
        let mount = SharedMount {
            daemon: Daemon::spawn(cmd, log)?,
            mnt: mnt.to_path_buf(),
        };
        let want = format!(" {} fuse.glusterfs ", mnt.display());
        wait_for("the shared mount", Duration::from_secs(10), || async {
            let mounts = std::fs::read_to_string("/proc/self/mounts")?;
            Ok(mounts.contains(&want).then_some(()))
        })
        .await?;
        Ok(Some(mount))
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        self.daemon.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_on_shared_storage_moves_without_its_disk() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path();
    let mnt = root.join("shared");
    let Some(mount) =
        SharedMount::start(&root.join("shared-src"), &mnt, &root.join("bindfs.log")).await?
    else {
        return Ok(());
    };
    let args = [
        "--shared-storage-dir".to_string(),
        mnt.display().to_string(),
    ];
    let Some(hvs) = hosts_with(&region, &["hvS", "hvT"], 76, &args).await? else {
        return Ok(());
    };
    let b = hvs[1].agent.host_id.clone();
    let tenant = inst::tenant(&region, "ops@example.com").await?;
    let image = idle_image(&region, &tenant.id).await?;
    let guests = Guests {
        token: tenant.token.clone(),
        image: image["id"].as_str().unwrap_or_default().to_string(),
        vcpus: 1,
    };
    let id = guests.on(&region, &hvs, 0, &["on-shared"]).await?[0].clone();
    let disk = mnt.join("instances").join(&id).join("disk.qcow2");
    let inode = std::fs::metadata(&disk)?.ino();
    let xml = hvs[0].conn()?.lookup_domain_by_name(&id)?.xml_desc(0)?;
    assert!(
        xml.contains(&format!("file='{}'", disk.display())) && xml.contains("cache='none'"),
        "{xml}"
    );

    let moved = inst::migrate(&region, &id, &b, SETTLE).await?;
    eprintln!("moved: {moved}");
    let (_, migration) = region.get(&format!("/v1/instances/{id}/migration")).await?;
    assert_eq!(migration["status"], "moved", "{migration}");

    // B runs it from the very same file, which nobody made anew; A has nothing left.
    let xml = hvs[1].conn()?.lookup_domain_by_name(&id)?.xml_desc(0)?;
    assert!(xml.contains(&format!("file='{}'", disk.display())), "{xml}");
    assert_eq!(std::fs::metadata(&disk)?.ino(), inode, "the same disk file");
    assert!(hvs[1].running(&id)?.is_some(), "runs on B");
    assert!(
        hvs[0].conn()?.lookup_domain_by_name(&id).is_err(),
        "gone from A"
    );

    // Deleted where it runs, its files go.
    inst::delete(&region, &id, SETTLE).await?;
    assert!(!disk.exists(), "the disk went with the instance");
    drop(hvs);
    drop(mount);
    Ok(())
}
