//! GPUs: PCI devices of display class (0x03xx) that are not themselves SR-IOV virtual
//! functions. A GPU is `mdev` when it has `mdev_supported_types`, `sriov-vgpu` when its VFs
//! carry NVIDIA's `nvidia/creatable_vgpu_types` (or, with VFs not yet enabled, when the
//! `nvidia` driver holds an SR-IOV capable part), `passthrough` otherwise.

use super::models;
use super::sysfs::{Sysfs, attr, hex, link_name, names, number};
use plinth_common::api::{Gpu, GpuKind, GpuState, VgpuType};
use std::path::{Path, PathBuf};

const DISPLAY_CLASS: u32 = 0x03;

/// A GPU as sysfs shows it, with where to find its parts.
#[derive(Debug, Clone)]
pub struct FoundGpu {
    pub gpu: Gpu,
    pub dir: PathBuf,
}

pub fn inventory(sysfs: &Sysfs) -> Vec<FoundGpu> {
    let base = sysfs.path("bus/pci/devices");
    let mut out = Vec::new();
    for address in names(&base) {
        let dir = base.join(&address);
        let Some(class) = hex(&dir, "class") else {
            continue;
        };
        if class >> 16 != DISPLAY_CLASS || dir.join("physfn").exists() {
            continue;
        }
        let vendor = hex(&dir, "vendor").unwrap_or(0);
        let device = hex(&dir, "device").unwrap_or(0);
        let (name, memory_bytes) = models::model(vendor, device);
        let driver = link_name(&dir, "driver");
        let (kind, vgpu_types) = if dir.join("mdev_supported_types").is_dir() {
            (GpuKind::Mdev, mdev_types(&dir))
        } else if is_sriov_vgpu(&dir, driver.as_deref()) {
            (GpuKind::SriovVgpu, sriov_types(&dir, memory_bytes))
        } else {
            (GpuKind::Passthrough, Vec::new())
        };
        out.push(FoundGpu {
            gpu: Gpu {
                address,
                name,
                pci_id: format!("{vendor:04x}:{device:04x}"),
                vendor: models::vendor_name(vendor),
                memory_bytes,
                kind,
                state: GpuState::Free,
                vgpu_types,
                console: number(&dir, "boot_vga") == Some(1),
                driver,
                instance_id: None,
                tenant_id: None,
                tenant_email: None,
            },
            dir,
        });
    }
    out
}

/// The types under `mdev_supported_types`, with the kernel's count of what can still be made.
fn mdev_types(dir: &Path) -> Vec<VgpuType> {
    let types = dir.join("mdev_supported_types");
    names(&types)
        .into_iter()
        .map(|id| {
            let t = types.join(&id);
            VgpuType {
                name: attr(&t, "name").unwrap_or_else(|| id.clone()),
                available: number(&t, "available_instances").unwrap_or(0),
                description: attr(&t, "description").unwrap_or_default(),
                id,
            }
        })
        .collect()
}

/// The VFs of a physical function, by address, in `virtfnN` order.
pub fn vfs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut links: Vec<(u32, String)> = names(dir)
        .into_iter()
        .filter_map(|n| {
            let index = n.strip_prefix("virtfn")?.parse().ok()?;
            Some((index, link_name(dir, &n)?))
        })
        .collect();
    links.sort();
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    links
        .into_iter()
        .map(|(_, address)| {
            let vf = parent.join(&address);
            (address, vf)
        })
        .collect()
}

fn is_sriov_vgpu(dir: &Path, driver: Option<&str>) -> bool {
    let vfs = vfs(dir);
    if !vfs.is_empty() {
        return vfs
            .iter()
            .any(|(_, vf)| vf.join("nvidia/creatable_vgpu_types").exists());
    }
    driver == Some("nvidia") && number(dir, "sriov_totalvfs").unwrap_or(0) > 0
}

/// NVIDIA's `creatable_vgpu_types`: a header line, then `ID : Name` per type.
pub fn parse_creatable(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (id, name) = line.split_once(':')?;
            let id = id.trim();
            (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (id.to_string(), name.trim().to_string()))
        })
        .collect()
}

/// A VF's vGPU type now: `None` when unset (`0`).
pub fn current_type(vf: &Path) -> Option<String> {
    attr(&vf.join("nvidia"), "current_vgpu_type").filter(|t| !t.is_empty() && t != "0")
}

/// Every type some free VF can take, counted over the free VFs that list it. The driver
/// shrinks each VF's list as the GPU's memory is handed out, but lists every type on every VF
/// while none is typed, so the count is also held to what the GPU's memory (when the model
/// table knows it) leaves for the type's framebuffer (`NVIDIA L4-6Q`: 6 GB). Before VFs are
/// enabled nothing can be counted; slicing enables them.
fn sriov_types(dir: &Path, memory_bytes: Option<u64>) -> Vec<VgpuType> {
    let mut types: Vec<VgpuType> = Vec::new();
    let mut typed: Vec<String> = Vec::new();
    for (_, vf) in vfs(dir) {
        typed.extend(current_type(&vf));
        let free = current_type(&vf).is_none();
        let listed = attr(&vf.join("nvidia"), "creatable_vgpu_types").unwrap_or_default();
        for (id, name) in parse_creatable(&listed) {
            match types.iter_mut().find(|t| t.id == id) {
                Some(t) => t.available += u32::from(free),
                None => types.push(VgpuType {
                    id,
                    name,
                    available: u32::from(free),
                    description: String::new(),
                }),
            }
        }
    }
    if let Some(memory) = memory_bytes {
        let gib = memory >> 30;
        for t in &mut types {
            if let Some(fb) = framebuffer_gib(&t.name).filter(|fb| *fb > 0) {
                let used = typed.iter().filter(|id| **id == t.id).count() as u64;
                let fits = (gib / fb).saturating_sub(used);
                t.available = t.available.min(u32::try_from(fits).unwrap_or(u32::MAX));
            }
        }
    }
    types
}

/// The framebuffer in GB an NVIDIA type name carries (`NVIDIA L4-6Q` -> 6, `GRID P40-24Q`).
fn framebuffer_gib(name: &str) -> Option<u64> {
    let (_, profile) = name.rsplit_once('-')?;
    let digits: String = profile.chars().take_while(char::is_ascii_digit).collect();
    let rest = &profile[digits.len()..];
    (rest.len() == 1 && rest.chars().all(|c| c.is_ascii_uppercase()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_creatable_types() {
        let text = "ID    : vGPU Name\n1144  : NVIDIA L4-1Q\n1145  : NVIDIA L4-2Q\n\n";
        assert_eq!(
            parse_creatable(text),
            [
                ("1144".to_string(), "NVIDIA L4-1Q".to_string()),
                ("1145".to_string(), "NVIDIA L4-2Q".to_string())
            ]
        );
        assert!(parse_creatable("").is_empty());
        assert_eq!(framebuffer_gib("NVIDIA L4-6Q"), Some(6));
        assert_eq!(framebuffer_gib("NVIDIA L40S-48Q"), Some(48));
        assert_eq!(framebuffer_gib("NVIDIA H100-1-10C"), Some(10));
    }
}
