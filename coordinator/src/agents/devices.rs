//! The agent API's device calls: the inventory read now, USB attach and detach, GPU slicing
//! and restore.

use super::{AgentClient, AgentError, CALL, NO_BODY};
use crate::agents::AgentEndpoint;
use plinth_common::api::agent_routes as routes;
use plinth_common::api::{AgentUsbAttach, DeviceInventory, SliceGpu, UsbDevice, Vgpu};
use reqwest::Method;
use std::time::Duration;

/// Slicing writes to sysfs and waits for the kernel and libvirt for each vGPU.
const SLICE_CALL: Duration = Duration::from_secs(300);
/// Attaching waits for libvirt (and QEMU when the guest runs).
const ATTACH_CALL: Duration = Duration::from_secs(90);

/// What [`AgentClient::usb`] does with the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsbVerb {
    Attach,
    Detach,
}

impl AgentClient {
    pub async fn devices(&self, ep: &AgentEndpoint) -> Result<DeviceInventory, AgentError> {
        self.call(ep, Method::GET, routes::DEVICES, &[], NO_BODY, CALL)
            .await
    }

    /// Attaches or detaches USB device `device` to or from `instance`.
    pub async fn usb(
        &self,
        ep: &AgentEndpoint,
        device: &str,
        verb: UsbVerb,
        instance: &str,
    ) -> Result<UsbDevice, AgentError> {
        let path = match verb {
            UsbVerb::Attach => routes::usb_attach(device),
            UsbVerb::Detach => routes::usb_detach(device),
        };
        let body = AgentUsbAttach {
            instance_id: instance.to_string(),
        };
        self.call(ep, Method::POST, &path, &[], Some(&body), ATTACH_CALL)
            .await
    }

    pub async fn slice_gpu(
        &self,
        ep: &AgentEndpoint,
        address: &str,
        req: &SliceGpu,
    ) -> Result<Vec<Vgpu>, AgentError> {
        let path = routes::gpu_slice(address);
        self.call(ep, Method::POST, &path, &[], Some(req), SLICE_CALL)
            .await
    }

    /// Removes every vGPU of the GPU; answers the inventory after.
    pub async fn restore_gpu(
        &self,
        ep: &AgentEndpoint,
        address: &str,
    ) -> Result<DeviceInventory, AgentError> {
        let path = routes::gpu_restore(address);
        self.call(ep, Method::POST, &path, &[], NO_BODY, SLICE_CALL)
            .await
    }
}
