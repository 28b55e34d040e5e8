//! The agent API's device calls: the inventory read now, USB attach and detach, GPU slicing
//! and restore.

use crate::agents::{AgentClient, AgentError};
use crate::store::hosts::AgentEndpoint;
use plinth_common::api::{AgentUsbAttach, DeviceInventory, SliceGpu, UsbDevice, Vgpu};
use std::time::Duration;

/// Slicing writes to sysfs and waits for the kernel and libvirt for each vGPU.
const SLICE_CALL: Duration = Duration::from_secs(300);
/// Attaching waits for libvirt (and QEMU when the guest runs).
const ATTACH_CALL: Duration = Duration::from_secs(90);

impl AgentClient {
    pub async fn devices(&self, ep: &AgentEndpoint) -> Result<DeviceInventory, AgentError> {
        let resp = self
            .http()
            .get(Self::url(ep, "/v1/devices")?)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// `attach` or `detach` USB device `device` to or from `instance`.
    pub async fn usb(
        &self,
        ep: &AgentEndpoint,
        device: &str,
        verb: &str,
        instance: &str,
    ) -> Result<UsbDevice, AgentError> {
        let url = Self::url(ep, &format!("/v1/devices/usb/{device}/{verb}"))?;
        let body = AgentUsbAttach {
            instance_id: instance.to_string(),
        };
        let resp = self
            .http()
            .post(url)
            .timeout(ATTACH_CALL)
            .json(&body)
            .send()
            .await?;
        Self::answer(resp).await
    }

    pub async fn slice_gpu(
        &self,
        ep: &AgentEndpoint,
        address: &str,
        req: &SliceGpu,
    ) -> Result<Vec<Vgpu>, AgentError> {
        let url = Self::url(ep, &format!("/v1/devices/gpus/{address}/slice"))?;
        let resp = self
            .http()
            .post(url)
            .timeout(SLICE_CALL)
            .json(req)
            .send()
            .await?;
        Self::answer(resp).await
    }

    /// Removes every vGPU of the GPU; answers the inventory after.
    pub async fn restore_gpu(
        &self,
        ep: &AgentEndpoint,
        address: &str,
    ) -> Result<DeviceInventory, AgentError> {
        let url = Self::url(ep, &format!("/v1/devices/gpus/{address}/restore"))?;
        let resp = self.http().post(url).timeout(SLICE_CALL).send().await?;
        Self::answer(resp).await
    }
}
