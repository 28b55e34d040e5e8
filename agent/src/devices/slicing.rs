//! Slicing GPUs into vGPUs and restoring them, the way the kernel takes it:
//! - mdev: a new UUID written to `mdev_supported_types/<type>/create` makes the device;
//!   `1` written to `/sys/bus/mdev/devices/<uuid>/remove` removes it. Each is also defined in
//!   libvirt as a persistent node device that starts at boot (mdevctl underneath).
//! - NVIDIA SR-IOV (vGPU 17+): VFs enabled through `sriov_numvfs` (all of them, as NVIDIA's
//!   `sriov-manage -e` does), then the type id written to each VF's
//!   `nvidia/current_vgpu_type`; `0` clears it.
//!
//! Every slice is recorded before the next is made, and recorded slices missing at start (a
//! reboot took them) are made again.

use super::gpu::{self, FoundGpu};
use super::hostdev::{is_type_id, pci_libvirt_address, pci_parts};
use super::records::{Records, SliceRecord};
use super::sysfs::{self, number};
use super::{DeviceError, Devices, KERNEL_DEADLINE, LIBVIRT_CALL, new_uuid, wait_until};
use plinth_common::api::{GpuKind, Vgpu, VgpuKind, VgpuType};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The most vGPUs one request makes.
pub const MAX_SLICES: u32 = 64;

async fn write_attr(path: PathBuf, value: String) -> Result<(), DeviceError> {
    let shown = path.clone();
    let what = "writing";
    tokio::task::spawn_blocking(move || sysfs::write(&path, &value))
        .await
        .map_err(|e| DeviceError::Kernel(format!("writing {}: {e}", shown.display())))?
        .map_err(DeviceError::io(what, &shown))
}

impl Devices {
    fn find_gpu(&self, address: &str) -> Result<FoundGpu, DeviceError> {
        if pci_parts(address).is_none() {
            return Err(DeviceError::Invalid(format!(
                "'{address}' is not a PCI address (dddd:bb:ss.f)"
            )));
        }
        gpu::inventory(&self.sysfs)
            .into_iter()
            .find(|g| g.gpu.address == address)
            .ok_or_else(|| DeviceError::NotFound {
                kind: "GPU",
                id: address.to_string(),
            })
    }

    /// Makes `count` vGPUs of `wanted` (a type id or name the GPU lists) on the GPU at
    /// `address`; answers them.
    pub async fn slice(
        &self,
        address: &str,
        wanted: &str,
        count: u32,
    ) -> Result<Vec<Vgpu>, DeviceError> {
        if !(1..=MAX_SLICES).contains(&count) {
            return Err(DeviceError::Invalid(format!(
                "count must be 1 to {MAX_SLICES}"
            )));
        }
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let mut found = self.find_gpu(address)?;
        if let Some(a) = records.attached_to(&format!("gpu:{address}")) {
            return Err(DeviceError::Conflict(format!(
                "GPU {address} is passed through to instance {}; it cannot be sliced",
                a.instance_id
            )));
        }
        let made = match found.gpu.kind {
            GpuKind::Passthrough => {
                return Err(DeviceError::Conflict(format!(
                    "GPU {address} ({}) offers no vGPU types: it can only be passed through whole",
                    found.gpu.name
                )));
            }
            GpuKind::Mdev => {
                let t = pick_type(&found, wanted)?;
                enough(address, &t, count)?;
                self.slice_mdev(&found, &t, count, &mut records).await?
            }
            GpuKind::SriovVgpu => {
                if gpu::vfs(&found.dir).is_empty() {
                    self.enable_vfs(&found, &mut records).await?;
                    found = self.find_gpu(address)?;
                }
                let t = pick_type(&found, wanted)?;
                enough(address, &t, count)?;
                self.slice_sriov(&found, &t, count, &mut records).await?
            }
        };
        let vgpus = self.read_inventory().await?.vgpus;
        Ok(made
            .iter()
            .filter_map(|id| vgpus.iter().find(|v| v.id == *id).cloned())
            .collect())
    }

    async fn slice_mdev(
        &self,
        found: &FoundGpu,
        t: &VgpuType,
        count: u32,
        records: &mut Records,
    ) -> Result<Vec<String>, DeviceError> {
        let address = &found.gpu.address;
        let mut made = Vec::new();
        for _ in 0..count {
            let uuid = new_uuid();
            self.create_mdev(address, &t.id, &uuid).await?;
            records.slices.push(SliceRecord {
                parent: address.clone(),
                kind: VgpuKind::Mdev,
                type_id: t.id.clone(),
                type_name: t.name.clone(),
                id: uuid.clone(),
            });
            self.save(records)?;
            match self
                .libvirt
                .define_mdev(address, &t.id, &uuid, LIBVIRT_CALL)
                .await
            {
                Ok(name) => {
                    info!(gpu = %address, mdev = %uuid, node_device = %name, "vGPU defined in libvirt; it starts at boot.")
                }
                Err(e) => {
                    warn!(gpu = %address, mdev = %uuid, error = %e, "libvirt could not define the vGPU; the agent makes it again at start.")
                }
            }
            made.push(uuid);
        }
        info!(gpu = %address, vgpu_type = %t.id, count, "GPU sliced (mdev).");
        Ok(made)
    }

    /// Writes `uuid` to the type's `create` and waits for the device.
    async fn create_mdev(
        &self,
        parent: &str,
        type_id: &str,
        uuid: &str,
    ) -> Result<(), DeviceError> {
        let create = self
            .sysfs
            .pci(parent)
            .join("mdev_supported_types")
            .join(type_id)
            .join("create");
        write_attr(create, uuid.to_string()).await?;
        let device = self.sysfs.path("bus/mdev/devices").join(uuid);
        if !wait_until(KERNEL_DEADLINE, || device.exists()).await {
            return Err(DeviceError::Kernel(format!(
                "the kernel did not show mdev {uuid} of type {type_id} on {parent} within {KERNEL_DEADLINE:?}"
            )));
        }
        Ok(())
    }

    /// Enables every VF the GPU has, as NVIDIA's `sriov-manage -e` does.
    async fn enable_vfs(&self, found: &FoundGpu, records: &mut Records) -> Result<(), DeviceError> {
        let address = &found.gpu.address;
        let total = number(&found.dir, "sriov_totalvfs").unwrap_or(0);
        if total == 0 {
            return Err(DeviceError::Conflict(format!(
                "GPU {address} has no SR-IOV virtual functions to enable"
            )));
        }
        write_attr(found.dir.join("sriov_numvfs"), total.to_string()).await?;
        let dir = found.dir.clone();
        let ready = wait_until(KERNEL_DEADLINE, || {
            let vfs = gpu::vfs(&dir);
            vfs.len() as u32 == total
                && vfs
                    .iter()
                    .all(|(_, vf)| vf.join("nvidia/current_vgpu_type").exists())
        })
        .await;
        if !ready {
            return Err(DeviceError::Kernel(format!(
                "GPU {address}: {total} VFs enabled, but the NVIDIA driver did not show them ready within {KERNEL_DEADLINE:?}"
            )));
        }
        if !records.enabled_vfs.contains(address) {
            records.enabled_vfs.push(address.clone());
        }
        self.save(records)?;
        info!(gpu = %address, vfs = total, "SR-IOV VFs enabled.");
        Ok(())
    }

    async fn slice_sriov(
        &self,
        found: &FoundGpu,
        t: &VgpuType,
        count: u32,
        records: &mut Records,
    ) -> Result<Vec<String>, DeviceError> {
        let address = &found.gpu.address;
        let mut made = Vec::new();
        for _ in 0..count {
            // Each VF's list shrinks as the GPU is handed out: look again each time.
            let vf = gpu::vfs(&found.dir).into_iter().find(|(vf_address, vf)| {
                gpu::current_type(vf).is_none()
                    && records.attached_to(&format!("vgpu:{vf_address}")).is_none()
                    && lists(vf, &t.id)
            });
            let Some((vf_address, vf)) = vf else {
                return Err(DeviceError::Kernel(format!(
                    "GPU {address}: no free VF takes type {} any more after {} made",
                    t.id,
                    made.len()
                )));
            };
            self.set_vf_type(&vf, &t.id).await?;
            records.slices.push(SliceRecord {
                parent: address.clone(),
                kind: VgpuKind::SriovVf,
                type_id: t.id.clone(),
                type_name: t.name.clone(),
                id: vf_address.clone(),
            });
            self.save(records)?;
            made.push(vf_address);
        }
        info!(gpu = %address, vgpu_type = %t.id, count, "GPU sliced (SR-IOV).");
        Ok(made)
    }

    /// Writes a type id (`0` clears it) to the VF and waits to read it back.
    async fn set_vf_type(&self, vf: &Path, type_id: &str) -> Result<(), DeviceError> {
        write_attr(vf.join("nvidia/current_vgpu_type"), type_id.to_string()).await?;
        let want = (type_id != "0").then(|| type_id.to_string());
        let vf_dir = vf.to_path_buf();
        if !wait_until(KERNEL_DEADLINE, || gpu::current_type(&vf_dir) == want).await {
            return Err(DeviceError::Kernel(format!(
                "VF {} did not take vGPU type {type_id} within {KERNEL_DEADLINE:?}",
                vf.display()
            )));
        }
        Ok(())
    }

    /// Removes every vGPU of the GPU at `address`, unless one is attached to an instance.
    pub async fn restore(&self, address: &str) -> Result<(), DeviceError> {
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let found = self.find_gpu(address)?;
        let vgpus: Vec<Vgpu> = self
            .read_inventory()
            .await?
            .vgpus
            .into_iter()
            .filter(|v| v.parent == address)
            .collect();
        let mut holders: Vec<String> = vgpus
            .iter()
            .filter_map(|v| records.attached_to(&format!("vgpu:{}", v.id)))
            .map(|a| a.instance_id.clone())
            .collect();
        let needles: Vec<String> = vgpus
            .iter()
            .map(|v| match v.kind {
                VgpuKind::Mdev => v.id.clone(),
                VgpuKind::SriovVf => pci_libvirt_address(&v.id).unwrap_or_else(|| v.id.clone()),
            })
            .collect();
        if !needles.is_empty() {
            let named = self
                .libvirt
                .domains_naming(needles, LIBVIRT_CALL)
                .await
                .map_err(DeviceError::libvirt("looking for domains using the vGPUs"))?;
            holders.extend(named.into_iter().map(|(domain, _)| domain));
        }
        holders.sort();
        holders.dedup();
        if !holders.is_empty() {
            return Err(DeviceError::Conflict(format!(
                "GPU {address} has vGPUs attached to instances {}; detach them first",
                holders.join(", ")
            )));
        }
        for v in &vgpus {
            match v.kind {
                VgpuKind::Mdev => self.remove_mdev(&v.id).await?,
                VgpuKind::SriovVf => self.set_vf_type(&self.sysfs.pci(&v.id), "0").await?,
            }
            records.slices.retain(|s| s.id != v.id);
            self.save(&records)?;
        }
        if records.enabled_vfs.contains(&found.gpu.address) {
            write_attr(found.dir.join("sriov_numvfs"), "0".into()).await?;
            let dir = found.dir.clone();
            if !wait_until(KERNEL_DEADLINE, || gpu::vfs(&dir).is_empty()).await {
                return Err(DeviceError::Kernel(format!(
                    "GPU {address}: its VFs were still there {KERNEL_DEADLINE:?} after disabling them"
                )));
            }
            records.enabled_vfs.retain(|a| a != address);
        }
        records.slices.retain(|s| s.parent != address);
        self.save(&records)?;
        info!(gpu = %address, vgpus = vgpus.len(), "GPU restored.");
        Ok(())
    }

    async fn remove_mdev(&self, uuid: &str) -> Result<(), DeviceError> {
        let device = self.sysfs.path("bus/mdev/devices").join(uuid);
        write_attr(device.join("remove"), "1".into()).await?;
        if !wait_until(KERNEL_DEADLINE, || !device.exists()).await {
            return Err(DeviceError::Kernel(format!(
                "mdev {uuid} was still there {KERNEL_DEADLINE:?} after its removal"
            )));
        }
        if let Err(e) = self.libvirt.undefine_mdev(uuid, LIBVIRT_CALL).await {
            warn!(mdev = %uuid, error = %e, "libvirt could not forget the vGPU's definition.");
        }
        Ok(())
    }

    /// Makes again the recorded slices sysfs no longer shows (after a reboot); answers how
    /// many. Each failure is logged and the others still tried.
    pub async fn recreate(&self) -> usize {
        let _turn = self.turn.lock().await;
        let records = match self.load() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "Cannot read the device records; no vGPUs re-created.");
                return 0;
            }
        };
        let mut made = 0;
        for gpu in &records.enabled_vfs {
            let dir = self.sysfs.pci(gpu);
            if number(&dir, "sriov_numvfs") == Some(0) {
                let found = self.find_gpu(gpu);
                let mut scratch = records.clone();
                if let Err(e) = match found {
                    Ok(f) => self.enable_vfs(&f, &mut scratch).await,
                    Err(e) => Err(e),
                } {
                    warn!(gpu = %gpu, error = %e, "Could not enable the VFs again.");
                }
            }
        }
        for s in &records.slices {
            let outcome = match s.kind {
                VgpuKind::Mdev if !self.sysfs.path("bus/mdev/devices").join(&s.id).exists() => self
                    .create_mdev(&s.parent, &s.type_id, &s.id)
                    .await
                    .map(|()| true),
                VgpuKind::SriovVf => {
                    let vf = self.sysfs.pci(&s.id);
                    if gpu::current_type(&vf).as_deref() == Some(s.type_id.as_str()) {
                        Ok(false)
                    } else {
                        self.set_vf_type(&vf, &s.type_id).await.map(|()| true)
                    }
                }
                VgpuKind::Mdev => Ok(false),
            };
            match outcome {
                Ok(true) => {
                    info!(gpu = %s.parent, vgpu = %s.id, vgpu_type = %s.type_id, "vGPU made again.");
                    made += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(gpu = %s.parent, vgpu = %s.id, error = %e, "Could not make a recorded vGPU again.")
                }
            }
        }
        made
    }
}

/// The type the GPU lists by id or by name.
fn pick_type(found: &FoundGpu, wanted: &str) -> Result<VgpuType, DeviceError> {
    if !is_type_id(wanted) && !wanted.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(DeviceError::Invalid(format!(
            "type '{wanted}' is not a vGPU type"
        )));
    }
    found
        .gpu
        .vgpu_types
        .iter()
        .find(|t| t.id == wanted || t.name == wanted)
        .cloned()
        .ok_or_else(|| {
            let offered: Vec<String> = found
                .gpu
                .vgpu_types
                .iter()
                .map(|t| format!("{} ({})", t.id, t.name))
                .collect();
            DeviceError::Invalid(format!(
                "GPU {} offers no vGPU type '{wanted}'; it offers {}",
                found.gpu.address,
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ))
        })
}

fn enough(address: &str, t: &VgpuType, count: u32) -> Result<(), DeviceError> {
    if count > t.available {
        return Err(DeviceError::NotEnough {
            gpu: address.to_string(),
            vgpu_type: t.id.clone(),
            asked: count,
            available: t.available,
        });
    }
    Ok(())
}

/// Whether the VF lists `type_id` as creatable now.
fn lists(vf: &Path, type_id: &str) -> bool {
    let text = sysfs::attr(&vf.join("nvidia"), "creatable_vgpu_types").unwrap_or_default();
    gpu::parse_creatable(&text)
        .iter()
        .any(|(id, _)| id == type_id)
}
