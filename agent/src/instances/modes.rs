//! Who may read an instance's files. The agent's umask is 0077, so what it makes is its own;
//! QEMU under `qemu:///system` runs as its own user and must still reach the disks, seeds and
//! cached images: libvirt (dynamic ownership) hands it each domain's disks, backing chain
//! included, and the directories on the way are opened to QEMU's group only where it exists.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// The groups QEMU runs under, by distribution: Debian and Ubuntu, then Fedora and RHEL.
const QEMU_GROUPS: [&str; 2] = ["libvirt-qemu", "qemu"];

fn qemu_group() -> Option<nix::unistd::Gid> {
    static GROUP: OnceLock<Option<nix::unistd::Gid>> = OnceLock::new();
    *GROUP.get_or_init(|| {
        QEMU_GROUPS
            .iter()
            .find_map(|name| nix::unistd::Group::from_name(name).ok().flatten())
            .map(|g| g.gid)
    })
}

fn set(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Gives `path` to QEMU's group with `group_mode`; `None` when there is no such group or it
/// cannot be given (not root, a filesystem that refuses it).
fn to_qemu_group(path: &Path, group_mode: u32) -> Option<()> {
    let gid = qemu_group()?;
    match nix::unistd::chown(path, None, Some(gid)) {
        Ok(()) => set(path, group_mode).ok(),
        Err(err) => {
            tracing::debug!(path = %path.display(), error = %err, "Could not give a file to QEMU's group.");
            None
        }
    }
}

/// A directory QEMU passes through to reach disks or cached images: 0710 for QEMU's group;
/// without one, 0711 (anyone may pass, no one else may list).
pub fn traversable_dir(dir: &Path) -> std::io::Result<()> {
    match to_qemu_group(dir, 0o710) {
        Some(()) => Ok(()),
        None => set(dir, 0o711),
    }
}

/// A cached image (a backing file many domains share, or an installer ISO): 0640 for QEMU's
/// group; without one, 0600 (libvirt's dynamic ownership labels it for each domain).
pub fn cached_image(file: &Path) -> std::io::Result<()> {
    match to_qemu_group(file, 0o640) {
        Some(()) => Ok(()),
        None => set(file, 0o600),
    }
}

/// A file only this domain uses (its disk, its seed): 0600, libvirt hands it to QEMU.
pub fn private_file(file: &Path) -> std::io::Result<()> {
    set(file, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn modes_follow_whether_qemu_has_a_group() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("instances");
        std::fs::create_dir(&sub).expect("dir");
        let image = dir.path().join("image.qcow2");
        std::fs::write(&image, b"x").expect("write");
        let disk = dir.path().join("disk.qcow2");
        std::fs::write(&disk, b"x").expect("write");
        traversable_dir(&sub).expect("dir mode");
        cached_image(&image).expect("image mode");
        private_file(&disk).expect("disk mode");
        assert_eq!(mode(&disk), 0o600);
        let root = nix::unistd::geteuid().is_root();
        match qemu_group() {
            Some(gid) if root => {
                assert_eq!(mode(&sub), 0o710);
                assert_eq!(mode(&image), 0o640);
                let meta = std::fs::metadata(&image).expect("metadata");
                assert_eq!(meta.gid(), gid.as_raw());
            }
            _ => {
                assert!(matches!(mode(&sub), 0o711 | 0o710), "{:o}", mode(&sub));
                assert!(matches!(mode(&image), 0o600 | 0o640), "{:o}", mode(&image));
            }
        }
    }
}
