//! Host devices (SPEC §2 "USB", "GPU and vGPU"): what an agent finds in its host's sysfs, as it
//! reports it with the heartbeat, and as the coordinator's API serves it with the instance and
//! tenant each device is assigned to. The agent API's device calls are here too.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a USB device or a vGPU is held by an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Free,
    Assigned,
}

/// A USB device that can be handed to a guest (hubs and root hubs are not listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsbDevice {
    /// `bus-port` as the kernel names it (`1-2`, `3-1.4`): the id assignments use.
    pub id: String,
    /// `vendor:product` in hex (`0781:5567`).
    pub usb_id: String,
    /// Manufacturer and product strings, or the ids when the device gives none.
    pub name: String,
    pub vendor: String,
    pub product: String,
    /// The device class as a name (`mass storage`, `HID`, ...): the seed's "type".
    #[serde(rename = "type")]
    pub class: String,
    pub serial: Option<String>,
    /// `2.00`, `3.20`, ...
    pub usb_version: String,
    pub bus: u32,
    /// The device number on its bus now (it changes when the device is plugged again).
    pub devnum: u32,
    pub state: DeviceState,
    /// The instance it is attached to, as the agent's libvirt sees it.
    pub instance_id: Option<String>,
    /// The instance's tenant (filled in by the coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_email: Option<String>,
}

/// How a GPU is handed to guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GpuKind {
    /// Whole, as a PCI hostdev.
    Passthrough,
    /// Sliced into mediated devices (`mdev_supported_types`).
    Mdev,
    /// Sliced into SR-IOV virtual functions, each given a vGPU type
    /// (`nvidia/current_vgpu_type`): NVIDIA Ada, Hopper, Blackwell with vGPU 17+.
    SriovVgpu,
}

impl GpuKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GpuKind::Passthrough => "passthrough",
            GpuKind::Mdev => "mdev",
            GpuKind::SriovVgpu => "sriov-vgpu",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpuState {
    /// Nothing made of it, nothing attached.
    Free,
    /// Passed through whole to an instance.
    Assigned,
    /// It has vGPUs.
    Sliced,
}

/// A vGPU type a GPU offers, and how many more of it can be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VgpuType {
    /// mdev: the type directory (`nvidia-35`); SR-IOV: NVIDIA's numeric type id (`1144`).
    pub id: String,
    /// `GRID P40-1Q`, `NVIDIA L4-1Q`.
    pub name: String,
    pub available: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A physical GPU (PCI display class 0x03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Gpu {
    /// PCI address, `0000:41:00.0`.
    pub address: String,
    /// The model from the built-in table, or `GPU 10de:20b5` for ids it does not know.
    pub name: String,
    /// `vendor:device` in hex.
    pub pci_id: String,
    pub vendor: String,
    /// Memory of the model, where the built-in table knows it (sysfs does not say).
    pub memory_bytes: Option<u64>,
    #[serde(rename = "type")]
    pub kind: GpuKind,
    pub state: GpuState,
    /// The types it can be sliced into (empty for passthrough).
    pub vgpu_types: Vec<VgpuType>,
    /// The kernel driver bound to it, when any.
    pub driver: Option<String>,
    /// The host's boot console (`boot_vga`): listed, never handed to a guest.
    #[serde(default)]
    pub console: bool,
    /// The instance it is passed through to.
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_email: Option<String>,
}

/// How a vGPU exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VgpuKind {
    Mdev,
    SriovVf,
}

/// A slice of a GPU: a mediated device, or an SR-IOV virtual function with a vGPU type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Vgpu {
    /// mdev: its UUID; SR-IOV: the VF's PCI address.
    pub id: String,
    pub kind: VgpuKind,
    /// The type's id (`nvidia-35`, `1144`).
    pub type_id: String,
    /// The type's name (`GRID P40-1Q`): the seed's vGPU "name" and "spec".
    pub type_name: String,
    /// The parent GPU's PCI address.
    pub parent: String,
    pub state: DeviceState,
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_email: Option<String>,
}

/// Everything an agent found; sent with a heartbeat when it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceInventory {
    pub usb: Vec<UsbDevice>,
    pub gpus: Vec<Gpu>,
    pub vgpus: Vec<Vgpu>,
}

/// `GET /v1/hosts/{id}/usb`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsbDeviceList {
    pub items: Vec<UsbDevice>,
}

/// `GET /v1/hosts/{id}/gpus`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GpuList {
    pub items: Vec<Gpu>,
}

/// `GET /v1/hosts/{id}/vgpus`, and the vGPUs a slice made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VgpuList {
    pub items: Vec<Vgpu>,
}

/// `POST /v1/hosts/{id}/usb/{device}/assign`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignUsb {
    pub instance_id: String,
}

/// `POST /v1/hosts/{id}/gpus/{address}/slice`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SliceGpu {
    /// A type id or name the GPU lists in `vgpu_types`.
    #[serde(rename = "type")]
    pub vgpu_type: String,
    pub count: u32,
}

// ---- agent API -------------------------------------------------------------------------------

/// Agent API `POST /v1/devices/usb/{device}/attach` and `.../detach`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentUsbAttach {
    pub instance_id: String,
}
