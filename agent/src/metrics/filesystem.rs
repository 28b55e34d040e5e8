//! `filesystem`: size and available bytes of each mounted real filesystem
//! (`node_filesystem_size_bytes`, `node_filesystem_avail_bytes`, labelled device, fstype and
//! mountpoint as node_exporter does). Mounts come from init's mounts table; pseudo and
//! in-memory filesystems and the mount points node_exporter skips are left out. Each mount is
//! asked on its own (statvfs on a dead NFS server blocks), so one stuck mount costs only its
//! own series (mod.rs).

/// Filesystem types that hold no user data (node_exporter's default exclusions plus the
/// in-memory ones: tmpfs and ramfs live in RAM, which memory usage already shows).
const PSEUDO_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "erofs",
    "fusectl",
    "fuse.lxcfs",
    "fuse.portal",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// node_exporter's default `--collector.filesystem.mount-points-exclude`.
const SKIPPED_MOUNT_ROOTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials",
    "/var/lib/docker",
    "/var/lib/containers/storage",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsStat {
    pub mount: Mount,
    pub size_bytes: u64,
    pub avail_bytes: u64,
}

/// The real filesystems in a mounts table (`device mountpoint fstype options 0 0`, with
/// octal escapes for blanks and backslashes), each mount point once (the last mount over a
/// path hides the earlier ones).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let mount = Mount {
            device: unescape(f[0]),
            mountpoint: unescape(f[1]),
            fstype: f[2].to_string(),
        };
        if !is_real(&mount) {
            continue;
        }
        out.retain(|m| m.mountpoint != mount.mountpoint);
        out.push(mount);
    }
    out
}

fn is_real(m: &Mount) -> bool {
    let skipped_root = SKIPPED_MOUNT_ROOTS.iter().any(|root| {
        m.mountpoint
            .strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    !skipped_root && !PSEUDO_TYPES.contains(&m.fstype.as_str())
}

/// `\040` (space), `\011` (tab), `\012` (newline), `\134` (backslash) as the kernel writes them.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// statvfs of one mount: size and the bytes an unprivileged user may still write.
pub fn stat(mount: &Mount) -> std::io::Result<FsStat> {
    let vfs = nix::sys::statvfs::statvfs(mount.mountpoint.as_str())?;
    let frsize = vfs.fragment_size() as u64;
    Ok(FsStat {
        mount: mount.clone(),
        size_bytes: (vfs.blocks() as u64).saturating_mul(frsize),
        avail_bytes: (vfs.blocks_available() as u64).saturating_mul(frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime 0 0
/dev/vda / ext4 rw,relatime,discard 0 0
tmpfs /run tmpfs rw 0 0
/dev/vdb1 /var/lib/plinth-agent xfs rw 0 0
/dev/vdc1 /mnt/with\\040space ext4 rw 0 0
/dev/vdd1 /var/lib/docker/overlay2/x ext4 rw 0 0
/dev/vdb1 /srv/bind xfs rw 0 0
10.0.0.9:/export /mnt/nfs nfs4 rw 0 0
overlay /var/lib/containers overlay rw 0 0
/dev/vde1 /devices ext4 rw 0 0
/dev/vdf1 /mnt/x ext4 rw 0 0
/dev/vdg1 /mnt/x btrfs rw 0 0
";

    #[test]
    fn keeps_real_filesystems() {
        let mounts = parse_mounts(FIXTURE);
        let points: Vec<&str> = mounts.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(
            points,
            [
                "/",
                "/var/lib/plinth-agent",
                "/mnt/with space",
                "/srv/bind",
                "/mnt/nfs",
                "/devices",
                "/mnt/x"
            ]
        );
        let x = mounts.last().expect("mounts");
        assert_eq!(
            (x.device.as_str(), x.fstype.as_str()),
            ("/dev/vdg1", "btrfs"),
            "the later mount over a path wins"
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/a\\040b\\134c\\011d"), "/a b\\c\td");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn stats_the_root_filesystem() {
        let root = Mount {
            device: "rootfs".into(),
            mountpoint: "/".into(),
            fstype: "ext4".into(),
        };
        let s = stat(&root).expect("statvfs /");
        assert!(s.size_bytes > 0 && s.avail_bytes <= s.size_bytes, "{s:?}");
    }
}
