//! vGPUs and whole GPUs given to a new instance's domain: each device the coordinator chose is
//! checked against sysfs (an mdev that exists, a VF with a vGPU type, a passthrough GPU that
//! is not sliced), recorded as the instance's, and turned into its `<hostdev>`. The records
//! make restore refuse while the instance holds a vGPU; deleting the instance frees them.

use super::hostdev::{self, pci_parts};
use super::records::Attachment;
use super::{DeviceError, Devices, gpu};
use plinth_common::api::GpuKind;

impl Devices {
    /// The `<hostdev>` of each of `devices` (`vgpu:<id>`, `gpu:<address>`) for `instance`,
    /// recorded as held by it. Asking again for the same instance answers the same.
    pub async fn hostdevs_for(
        &self,
        instance: &str,
        devices: &[String],
    ) -> Result<Vec<String>, DeviceError> {
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let mut out = Vec::new();
        for key in devices {
            if let Some(a) = records.attached_to(key) {
                if a.instance_id != instance {
                    return Err(DeviceError::Conflict(format!(
                        "{key} is held by instance {}",
                        a.instance_id
                    )));
                }
                out.push(a.xml.clone());
                continue;
            }
            let xml = self.hostdev_of(key)?;
            records.attachments.push(Attachment {
                device: key.clone(),
                instance_id: instance.to_string(),
                xml: xml.clone(),
            });
            out.push(xml);
        }
        self.save(&records)?;
        Ok(out)
    }

    fn hostdev_of(&self, key: &str) -> Result<String, DeviceError> {
        let missing = |kind: &'static str, id: &str| DeviceError::NotFound {
            kind,
            id: id.to_string(),
        };
        if let Some(id) = key.strip_prefix("vgpu:") {
            if pci_parts(id).is_some() {
                let vf = self.sysfs.pci(id);
                if gpu::current_type(&vf).is_none() {
                    return Err(missing("vGPU", id));
                }
                return hostdev::pci(id).ok_or_else(|| missing("vGPU", id));
            }
            let uuid_ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if !uuid_ok || !self.sysfs.path("bus/mdev/devices").join(id).exists() {
                return Err(missing("vGPU", id));
            }
            return Ok(hostdev::mdev(id));
        }
        if let Some(address) = key.strip_prefix("gpu:") {
            let found = gpu::inventory(&self.sysfs)
                .into_iter()
                .find(|g| g.gpu.address == address)
                .ok_or_else(|| missing("GPU", address))?;
            if found.gpu.console {
                return Err(DeviceError::Conflict(format!(
                    "GPU {address} is the host's console (boot_vga); it is not handed to guests"
                )));
            }
            if found.gpu.kind != GpuKind::Passthrough {
                return Err(DeviceError::Conflict(format!(
                    "GPU {address} is {}: it is handed out as vGPUs, not whole",
                    found.gpu.kind.as_str()
                )));
            }
            return hostdev::pci(address).ok_or_else(|| missing("GPU", address));
        }
        Err(DeviceError::Invalid(format!(
            "device '{key}' is neither vgpu:<id> nor gpu:<address>"
        )))
    }
}
