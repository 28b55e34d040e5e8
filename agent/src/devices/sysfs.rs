//! Reading and writing sysfs attributes under a configurable root, so that tests run on fixture
//! trees. An attribute that is missing or unreadable reads as `None`: devices come and go, and
//! drivers expose different subsets.

use std::path::{Path, PathBuf};

/// The sysfs of one host: `<root>/sys/...` (root `/` in production).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/sys/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    /// `/sys/bus/pci/devices/<address>`.
    pub fn pci(&self, address: &str) -> PathBuf {
        self.path("bus/pci/devices").join(address)
    }
}

/// The attribute's text without surrounding whitespace (`version` reads ` 2.00`).
pub fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A hex attribute (`0x030000`, `10de`, `09`).
pub fn hex(dir: &Path, name: &str) -> Option<u32> {
    let text = attr(dir, name)?;
    u32::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

/// A decimal attribute.
pub fn number(dir: &Path, name: &str) -> Option<u32> {
    attr(dir, name)?.parse().ok()
}

/// The names in `dir`, sorted; none when it cannot be read.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The last component of where the symlink `dir/name` points (`driver` -> `nvidia`).
pub fn link_name(dir: &Path, name: &str) -> Option<String> {
    let target = std::fs::read_link(dir.join(name)).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Writes `value` to an attribute as the kernel takes it: one write of the whole value to the
/// existing file, never created (opened as `echo value > file` does; sysfs ignores the
/// truncation).
pub fn write(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(value.as_bytes())
}
