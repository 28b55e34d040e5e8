//! The coordinator's only use of `qemu-img`: `info --output=json` on staged content. Imported
//! files are untrusted, so it runs with a deadline and its JSON is read field by field.

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: String,
    pub virtual_size: u64,
    /// A qcow2 with a backing file reads another file on the host: never accepted.
    pub backing_file: Option<String>,
    /// Likewise an external data file.
    pub data_file: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(rename = "format-specific")]
    format_specific: Option<FormatSpecific>,
}

#[derive(Debug, Deserialize)]
struct FormatSpecific {
    data: Option<FormatData>,
}

#[derive(Debug, Deserialize)]
struct FormatData {
    #[serde(rename = "data-file")]
    data_file: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuImgError {
    #[error("qemu-img could not be run: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("qemu-img did not finish within {0:?}")]
    Deadline(Duration),
    #[error("qemu-img could not read the file: {0}")]
    Failed(String),
    #[error("qemu-img printed unexpected output: {0}")]
    Output(String),
}

pub async fn info(path: &Path) -> Result<ImageInfo, QemuImgError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json", "-U"])
        .arg(path)
        .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .map_err(|_| QemuImgError::Deadline(DEADLINE))?
        .map_err(QemuImgError::Spawn)?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return Err(QemuImgError::Failed(
            text.trim().chars().take(300).collect(),
        ));
    }
    parse(&out.stdout)
}

fn parse(json: &[u8]) -> Result<ImageInfo, QemuImgError> {
    let raw: Raw = serde_json::from_slice(json).map_err(|e| QemuImgError::Output(e.to_string()))?;
    Ok(ImageInfo {
        format: raw.format,
        virtual_size: raw.virtual_size,
        backing_file: raw.backing_filename,
        data_file: raw
            .format_specific
            .and_then(|f| f.data)
            .and_then(|d| d.data_file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_real_qcow2() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("disk.qcow2");
        let status = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg("1G")
            .status()?;
        assert!(status.success());
        let got = info(&path).await?;
        assert_eq!(got.format, "qcow2");
        assert_eq!(got.virtual_size, 1 << 30);
        assert_eq!(got.backing_file, None);

        let overlay = dir.path().join("overlay.qcow2");
        let status = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&path)
            .arg(&overlay)
            .status()?;
        assert!(status.success());
        assert!(info(&overlay).await?.backing_file.is_some());
        Ok(())
    }

    #[test]
    fn parses_data_file() -> Result<(), QemuImgError> {
        let json = br#"{"format":"qcow2","virtual-size":5,"format-specific":{"type":"qcow2","data":{"data-file":"/etc/x"}}}"#;
        assert_eq!(parse(json)?.data_file.as_deref(), Some("/etc/x"));
        Ok(())
    }
}
