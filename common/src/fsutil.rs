//! Files that must never be half-written (certificates, keys, state), and the modes of what
//! plinth makes: its own unless said otherwise, whoever started it and with whatever umask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What plinth makes is private to its user unless a mode is given: each binary calls this
/// first (systemd's `UMask=0077` does the same for the services; a hand start has a shell's
/// 022). Every file that others must read has its mode set explicitly.
pub fn private_umask() {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
}

/// Sets `path`'s permission bits to `mode`.
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a file atomically (temp file, fsync, rename) with the given mode.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // The mode given, not the umask's share of it, and also on a temp file a crash left.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates `dir` (and parents) and makes it private to its owner: it holds keys.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
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
    fn write_file_sets_the_mode_whatever_was_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        // A temp file a crash left, readable by all: the mode given still wins.
        std::fs::write(path.with_extension("tmp"), b"old").expect("write");
        set_mode(&path.with_extension("tmp"), 0o666).expect("chmod");
        write_file(&path, b"secret", 0o600).expect("write_file");
        assert_eq!(mode(&path), 0o600);
        write_file(&path, b"public", 0o644).expect("write_file");
        assert_eq!(
            mode(&path),
            0o644,
            "a mode wider than 0600 is kept when asked for"
        );
        let private = dir.path().join("a/b");
        create_private_dir(&private).expect("dir");
        assert_eq!(mode(&private), 0o700);
    }
}
