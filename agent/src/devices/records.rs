//! What the agent made of its host's devices, kept in `<data_dir>/devices.json` so that it
//! outlives the agent and the host: the vGPU slices it created (re-created at start when a
//! reboot took them away) and the devices it attached to domains (with the exact hostdev XML,
//! so a release detaches what was attached even after the device was plugged again).

use plinth_common::api::VgpuKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRecord {
    /// The GPU's PCI address.
    pub parent: String,
    pub kind: VgpuKind,
    pub type_id: String,
    pub type_name: String,
    /// mdev: the UUID; SR-IOV: the VF's address.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `usb:1-2`, `vgpu:<uuid or VF address>`, `gpu:<address>`.
    pub device: String,
    pub instance_id: String,
    /// The `<hostdev>` given to libvirt.
    pub xml: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    #[serde(default)]
    pub slices: Vec<SliceRecord>,
    /// SR-IOV GPUs whose VFs plinth enabled (restore disables them again).
    #[serde(default)]
    pub enabled_vfs: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    pub fn new(data_dir: &Path) -> RecordFile {
        RecordFile {
            path: data_dir.join("devices.json"),
        }
    }

    /// The records; none yet is empty. A file that cannot be read is an error, never
    /// silently empty: slices would be forgotten.
    pub fn load(&self) -> std::io::Result<Records> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, records: &Records) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        plinth_common::fsutil::write_file(&self.path, &bytes, 0o600)
    }
}

impl Records {
    pub fn attached_to(&self, device: &str) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.device == device)
    }
}
