//! Shared storage: a directory every host of a cluster mounts at the same path. Its id, kept
//! in a file at its root, tells the coordinator which hosts see the same disks (a live
//! migration between them leaves the disks where they are).

use anyhow::Context;
use std::io::ErrorKind;
use std::path::Path;

const ID_FILE: &str = "plinth-storage-id";

/// The storage's id: read from its root, or made by the first host to mount it.
pub fn shared_id(root: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let path = root.join(ID_FILE);
    let made = format!("shared-{}", plinth_common::ids::random_hex(16));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => {
            use std::io::Write;
            let mut file = file;
            file.write_all(made.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(made)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let id = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let id = id.trim();
            anyhow::ensure!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{} holds no storage id",
                path.display()
            );
            Ok(id.to_string())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_host_makes_the_id_and_the_others_read_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("shared");
        let first = shared_id(&root).expect("made");
        assert!(first.starts_with("shared-"), "{first}");
        assert_eq!(shared_id(&root).expect("read"), first);
        std::fs::write(root.join(ID_FILE), "../etc\n").expect("write");
        assert!(shared_id(&root).is_err(), "a bad id is refused");
    }
}
