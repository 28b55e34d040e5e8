//! The host's devices: USB devices, GPUs and vGPUs read from sysfs under a configurable root
//! (usb.rs, gpu.rs, vgpu.rs), vGPU slicing and restore (slicing.rs), and USB devices handed
//! to instances (usb_assign.rs). What the agent made or attached is recorded (records.rs), so
//! slices come back after a reboot and the inventory names the instance holding a device.
//! Changes take turns; reads of sysfs run on the blocking pool under a deadline.

#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;
pub mod gpu;
mod gpu_assign;
pub mod hostdev;
mod models;
mod records;
mod slicing;
pub mod sysfs;
mod usb;
mod usb_assign;
mod vgpu;

#[cfg(test)]
mod tests;

use crate::libvirt::{Libvirt, LibvirtError};
use plinth_common::api::{DeviceInventory, DeviceState, GpuState};
use records::{RecordFile, Records};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysfs::Sysfs;

/// How long reading the whole inventory may take.
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// How long the kernel gets to show a device made or removed (it is synchronous; a driver
/// binding a new VF may take a moment).
const KERNEL_DEADLINE: Duration = Duration::from_secs(10);
const LIBVIRT_CALL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no {kind} {id} on this host")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("GPU {gpu} has {available} vGPUs of type {vgpu_type} available; {asked} asked")]
    NotEnough {
        gpu: String,
        vgpu_type: String,
        asked: u32,
        available: u32,
    },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Kernel(String),
    #[error("{step}")]
    Libvirt {
        step: String,
        #[source]
        source: LibvirtError,
    },
    #[error("reading sysfs took longer than {0:?}")]
    Deadline(Duration),
}

impl DeviceError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DeviceError {
        let path = path.to_path_buf();
        move |source| DeviceError::Io { what, path, source }
    }

    fn libvirt(step: impl Into<String>) -> impl FnOnce(LibvirtError) -> DeviceError {
        let step = step.into();
        move |source| DeviceError::Libvirt { step, source }
    }
}

pub struct Devices {
    sysfs: Sysfs,
    records: RecordFile,
    libvirt: Libvirt,
    /// One change at a time (slicing, restoring, attaching, detaching).
    turn: tokio::sync::Mutex<()>,
    /// What the coordinator last took with a heartbeat.
    last_reported: std::sync::Mutex<Option<DeviceInventory>>,
}

impl Devices {
    pub fn new(sysfs_root: &Path, data_dir: &Path, libvirt: Libvirt) -> Devices {
        Devices {
            sysfs: Sysfs::new(sysfs_root),
            records: RecordFile::new(data_dir),
            libvirt,
            turn: tokio::sync::Mutex::new(()),
            last_reported: std::sync::Mutex::new(None),
        }
    }

    /// `inventory` when the coordinator has not taken it yet (it changed, or none was sent).
    pub fn unreported(&self, inventory: DeviceInventory) -> Option<DeviceInventory> {
        let last = self.last_reported.lock().unwrap_or_else(|p| p.into_inner());
        (last.as_ref() != Some(&inventory)).then_some(inventory)
    }

    /// The coordinator took `inventory`.
    pub fn reported(&self, inventory: DeviceInventory) {
        *self.last_reported.lock().unwrap_or_else(|p| p.into_inner()) = Some(inventory);
    }

    pub fn sysfs_root(&self) -> &Path {
        self.sysfs.root()
    }

    fn load(&self) -> Result<Records, DeviceError> {
        self.records.load().map_err(DeviceError::io(
            "reading the device records",
            Path::new("devices.json"),
        ))
    }

    fn save(&self, records: &Records) -> Result<(), DeviceError> {
        self.records.save(records).map_err(DeviceError::io(
            "saving the device records",
            Path::new("devices.json"),
        ))
    }

    /// Everything sysfs shows now, with what this agent attached marked as assigned; waits
    /// for a change under way, so a half-made one (an attach libvirt may still refuse) is
    /// never shown.
    pub async fn inventory(&self) -> Result<DeviceInventory, DeviceError> {
        let _turn = tokio::time::timeout(READ_DEADLINE, self.turn.lock())
            .await
            .map_err(|_| DeviceError::Deadline(READ_DEADLINE))?;
        self.read_inventory().await
    }

    /// [`Devices::inventory`], or `None` while a change is under way: heartbeats never wait.
    pub async fn settled_inventory(&self) -> Result<Option<DeviceInventory>, DeviceError> {
        let Ok(_turn) = self.turn.try_lock() else {
            return Ok(None);
        };
        self.read_inventory().await.map(Some)
    }

    /// The inventory, for a caller that holds the turn.
    async fn read_inventory(&self) -> Result<DeviceInventory, DeviceError> {
        let records = self.load()?;
        let sysfs = self.sysfs.clone();
        let work = tokio::task::spawn_blocking(move || read(&sysfs, &records));
        match tokio::time::timeout(READ_DEADLINE, work).await {
            Ok(Ok(inventory)) => Ok(inventory),
            Ok(Err(join)) => Err(DeviceError::Kernel(format!("reading sysfs failed: {join}"))),
            Err(_) => Err(DeviceError::Deadline(READ_DEADLINE)),
        }
    }
}

/// The inventory as sysfs and the records tell it.
fn read(sysfs: &Sysfs, records: &Records) -> DeviceInventory {
    let found = gpu::inventory(sysfs);
    let names: Vec<(String, String)> = records
        .slices
        .iter()
        .map(|s| (s.type_id.clone(), s.type_name.clone()))
        .collect();
    let mut vgpus = vgpu::inventory(sysfs, &found, &names);
    for v in &mut vgpus {
        if let Some(a) = records.attached_to(&format!("vgpu:{}", v.id)) {
            v.state = DeviceState::Assigned;
            v.instance_id = Some(a.instance_id.clone());
        }
    }
    let mut gpus: Vec<_> = found.into_iter().map(|f| f.gpu).collect();
    for g in &mut gpus {
        if let Some(a) = records.attached_to(&format!("gpu:{}", g.address)) {
            g.state = GpuState::Assigned;
            g.instance_id = Some(a.instance_id.clone());
        } else if vgpus.iter().any(|v| v.parent == g.address) {
            g.state = GpuState::Sliced;
        }
    }
    let mut usb = usb::inventory(sysfs);
    for u in &mut usb {
        if let Some(a) = records.attached_to(&format!("usb:{}", u.id)) {
            u.state = DeviceState::Assigned;
            u.instance_id = Some(a.instance_id.clone());
        }
    }
    DeviceInventory { usb, gpus, vgpus }
}

/// A random (version 4) UUID, as mdev devices are named.
pub fn new_uuid() -> String {
    let mut bytes = [0u8; 16];
    let hex = plinth_common::ids::random_hex(16);
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Polls `done` every 20 ms until it holds or `deadline` passes.
async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
