//! Instance disks through qemu-img: a qcow2 overlay on a cached image, an empty qcow2 for an
//! ISO install, what a disk's header says, and a flattened copy for export. The only place in
//! the agent that runs qemu-img.

use super::tool::{self, ToolError};
use serde::Deserialize;
use std::ffi::OsStr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("qemu-img info printed what is not its JSON")]
    Info(#[from] serde_json::Error),
}

/// What `qemu-img info` says of a disk (what the agent uses of it).
#[derive(Debug, Clone, Deserialize)]
pub struct DiskInfo {
    #[serde(rename = "full-backing-filename")]
    pub full_backing_filename: Option<String>,
    #[serde(rename = "backing-filename")]
    pub backing_filename: Option<String>,
    #[serde(rename = "virtual-size", default)]
    pub virtual_size: u64,
}

impl DiskInfo {
    pub fn backing_file(&self) -> Option<&str> {
        self.full_backing_filename
            .as_deref()
            .or(self.backing_filename.as_deref())
    }
}

/// A qcow2 of `size` bytes whose unwritten blocks read from `backing` (a qcow2).
pub async fn create_overlay(backing: &Path, disk: &Path, size: u64) -> Result<(), DiskError> {
    let size = size.to_string();
    let args: [&OsStr; 9] = [
        "create".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-b".as_ref(),
        backing.as_os_str(),
        "-F".as_ref(),
        "qcow2".as_ref(),
        disk.as_os_str(),
        size.as_ref(),
    ];
    tool::run("qemu-img", &args, None).await?;
    Ok(())
}

/// An empty qcow2 of `size` bytes.
pub async fn create_blank(disk: &Path, size: u64) -> Result<(), DiskError> {
    let size = size.to_string();
    let args: [&OsStr; 5] = [
        "create".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        disk.as_os_str(),
        size.as_ref(),
    ];
    tool::run("qemu-img", &args, None).await?;
    Ok(())
}

/// Reads the header without taking qemu's image lock, so it works while the domain runs.
pub async fn info(disk: &Path) -> Result<DiskInfo, DiskError> {
    let args: [&OsStr; 4] = [
        "info".as_ref(),
        "-U".as_ref(),
        "--output=json".as_ref(),
        disk.as_os_str(),
    ];
    let out = tool::run("qemu-img", &args, None).await?;
    Ok(serde_json::from_slice(&out)?)
}

/// Copies `disk` with its backing chain folded in to a standalone qcow2 at `out`. `shared`
/// reads a disk a running domain holds (`-U`): the copy is then only as consistent as the
/// guest's disk is at that moment.
pub async fn flatten(disk: &Path, out: &Path, shared: bool) -> Result<(), DiskError> {
    let mut args: Vec<&OsStr> = vec!["convert".as_ref()];
    if shared {
        args.push("-U".as_ref());
    }
    args.extend::<[&OsStr; 4]>([
        "-O".as_ref(),
        "qcow2".as_ref(),
        disk.as_os_str(),
        out.as_os_str(),
    ]);
    tool::run("qemu-img", &args, None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (format, virtual size, backing file) as qemu-img reports them.
    async fn header(disk: &Path) -> (String, u64, Option<String>) {
        let args: [&OsStr; 3] = ["info".as_ref(), "--output=json".as_ref(), disk.as_os_str()];
        let out = tool::run("qemu-img", &args, None)
            .await
            .expect("qemu-img info");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        let backing = info(disk).await.expect("info");
        (
            v["format"].as_str().unwrap_or_default().to_string(),
            v["virtual-size"].as_u64().unwrap_or_default(),
            backing.backing_file().map(str::to_string),
        )
    }

    #[tokio::test]
    async fn overlay_on_a_base_then_flatten() -> Result<(), DiskError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base.qcow2");
        let disk = dir.path().join("disk.qcow2");
        create_blank(&base, 1 << 20).await?;
        create_overlay(&base, &disk, 64 << 20).await?;

        let base_name = base.to_string_lossy().into_owned();
        assert_eq!(
            header(&disk).await,
            ("qcow2".into(), 64 << 20, Some(base_name))
        );

        let flat = dir.path().join("flat.qcow2");
        flatten(&disk, &flat, false).await?;
        assert_eq!(header(&flat).await, ("qcow2".into(), 64 << 20, None));

        let blank = dir.path().join("blank.qcow2");
        create_blank(&blank, 8 << 20).await?;
        assert_eq!(header(&blank).await, ("qcow2".into(), 8 << 20, None));
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_backing_file_fails_with_qemu_img_saying_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = create_overlay(
            &dir.path().join("nope.qcow2"),
            &dir.path().join("disk.qcow2"),
            1 << 20,
        )
        .await
        .expect_err("no backing file");
        let text = err.to_string();
        assert!(text.contains("qemu-img failed"), "{text}");
        assert!(text.contains("nope.qcow2"), "stderr is carried: {text}");
    }
}
