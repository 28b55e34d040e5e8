//! vGPUs as they exist now: mediated devices under `/sys/bus/mdev/devices` (their parent is the
//! directory they sit in, their type the `mdev_type` link), and SR-IOV virtual functions of
//! the GPUs that have a vGPU type set.

use super::gpu::{self, FoundGpu};
use super::sysfs::{Sysfs, attr, link_name, names};
use plinth_common::api::{DeviceState, GpuKind, Vgpu, VgpuKind};

pub fn inventory(sysfs: &Sysfs, gpus: &[FoundGpu], type_names: &[(String, String)]) -> Vec<Vgpu> {
    let mut out = mdevs(sysfs);
    for found in gpus.iter().filter(|g| g.gpu.kind == GpuKind::SriovVgpu) {
        for (address, vf) in gpu::vfs(&found.dir) {
            let Some(type_id) = gpu::current_type(&vf) else {
                continue;
            };
            let type_name = found
                .gpu
                .vgpu_types
                .iter()
                .find(|t| t.id == type_id)
                .map(|t| t.name.clone())
                .or_else(|| {
                    type_names
                        .iter()
                        .find(|(id, _)| *id == type_id)
                        .map(|(_, n)| n.clone())
                })
                .unwrap_or_else(|| format!("vGPU type {type_id}"));
            out.push(vgpu(
                address,
                VgpuKind::SriovVf,
                type_id,
                type_name,
                &found.gpu.address,
            ));
        }
    }
    out
}

fn mdevs(sysfs: &Sysfs) -> Vec<Vgpu> {
    let base = sysfs.path("bus/mdev/devices");
    let mut out = Vec::new();
    for uuid in names(&base) {
        let dir = base.join(&uuid);
        // The device sits in its parent's directory: .../0000:41:00.0/<uuid>.
        let parent = std::fs::canonicalize(&dir).ok().and_then(|p| {
            p.parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        });
        let (Some(parent), Some(type_id)) = (parent, link_name(&dir, "mdev_type")) else {
            continue;
        };
        let type_name = attr(&dir.join("mdev_type"), "name").unwrap_or_else(|| type_id.clone());
        out.push(vgpu(uuid, VgpuKind::Mdev, type_id, type_name, &parent));
    }
    out
}

fn vgpu(id: String, kind: VgpuKind, type_id: String, type_name: String, parent: &str) -> Vgpu {
    Vgpu {
        id,
        kind,
        type_id,
        type_name,
        parent: parent.to_string(),
        state: DeviceState::Free,
        instance_id: None,
        tenant_id: None,
        tenant_email: None,
    }
}
