//! Host devices: USB passthrough, GPUs and their vGPU slices. The functions here are their
//! operations (the API in api.rs parses a request and calls one). The store takes an
//! assignment before the agent attaches (so two callers never both get a device) and gives it
//! back when the agent fails; the host's inventory is read again from the agent after every
//! change, and every change is audited.

pub mod api;
mod error;
pub mod store;

pub use error::DeviceError;

use crate::agents::AgentEndpoint;
use crate::agents::{AgentError, UsbVerb};
use crate::devices::store::AssignRefused;
use crate::state::AppState;
use plinth_common::api::{DeviceInventory, Gpu, GpuKind, SliceGpu, UsbDevice, Vgpu};
use plinth_common::ids::{HostId, InstanceId};
use plinth_common::timefmt::now_ms;

/// The host's devices as its agent last reported them, with who holds each.
pub async fn inventory(st: &AppState, host: &HostId) -> Result<DeviceInventory, DeviceError> {
    existing_host(st, host).await?;
    Ok(st.store.host_devices(host).await?)
}

async fn existing_host(st: &AppState, id: &HostId) -> Result<(), DeviceError> {
    match st.store.get_host(id, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(DeviceError::HostNotFound(id.to_string())),
    }
}

async fn endpoint(st: &AppState, id: &HostId) -> Result<AgentEndpoint, DeviceError> {
    st.store
        .agent_endpoint(id, now_ms())
        .await?
        .ok_or_else(|| DeviceError::HostNotFound(id.to_string()))
}

/// The agent's codes for a device or instance it does not have (agent/src/api/error.rs).
fn is_absent(code: &str) -> bool {
    matches!(code, "device_not_found" | "instance_not_found")
}

/// The agent's code for what its hypervisor cannot do at all (libvirt's test driver
/// hot-plugs nothing): a conflict with the host, not a failure to retry.
const UNSUPPORTED: &str = "hypervisor_unsupported";

/// The agent's codes for a device that cannot be had as asked: held, or too few vGPUs left.
fn is_held(code: &str) -> bool {
    matches!(code, "device_in_use" | "not_enough_vgpus")
}

/// An agent failure that is not the caller's: the agent is down, or failed itself.
fn agent_failed(host: &str, err: &AgentError) -> DeviceError {
    tracing::warn!(host = %host, error = %err.explain(), "Agent device call failed.");
    DeviceError::AgentFailed {
        host: host.to_string(),
        reason: err.explain(),
    }
}

/// Reads the host's devices from its agent and keeps them (after a change).
async fn refresh(st: &AppState, host: &str, ep: &AgentEndpoint) {
    match st.agents.devices(ep).await {
        Ok(inventory) => {
            if let Err(e) = st.store.record_devices(host, &inventory, now_ms()).await {
                tracing::error!(host = %host, error = ?e, "Could not keep the device inventory.");
            }
        }
        Err(e) => {
            tracing::warn!(host = %host, error = %e.explain(), "Could not read the devices back; the next heartbeat brings them.")
        }
    }
}

async fn usb_device(st: &AppState, host: &str, device: &str) -> Result<UsbDevice, DeviceError> {
    st.store
        .host_devices(host)
        .await?
        .usb
        .into_iter()
        .find(|u| u.id == device)
        .ok_or_else(|| DeviceError::UsbNotFound(device.to_string()))
}

async fn gpu(st: &AppState, host: &str, address: &str) -> Result<Gpu, DeviceError> {
    st.store
        .host_devices(host)
        .await?
        .gpus
        .into_iter()
        .find(|g| g.address == address)
        .ok_or_else(|| DeviceError::GpuNotFound(address.to_string()))
}

/// Attaches USB device `device` of host `id` to `instance` (on the same host), for `actor`.
pub async fn assign_usb(
    st: &AppState,
    actor: &str,
    id: &HostId,
    device: &str,
    instance: &InstanceId,
) -> Result<UsbDevice, DeviceError> {
    existing_host(st, id).await?;
    usb_device(st, id, device).await?;
    let key = format!("usb:{device}");
    let taken = st.store.assign_device(id, &key, instance, now_ms()).await?;
    taken.map_err(|refused| match refused {
        AssignRefused::NoInstance => DeviceError::InstanceNotFound(instance.to_string()),
        AssignRefused::OtherHost(other) => DeviceError::InstanceOnOtherHost {
            instance: instance.to_string(),
            host: id.to_string(),
            other,
        },
        AssignRefused::Taken(holder) => DeviceError::UsbTaken {
            device: device.to_string(),
            host: id.to_string(),
            holder,
        },
    })?;
    let ep = endpoint(st, id).await?;
    if let Err(err) = st.agents.usb(&ep, device, UsbVerb::Attach, instance).await {
        st.store
            .unassign_device(id, &key, instance, now_ms())
            .await?;
        return Err(match err {
            AgentError::Refused { code, message, .. } if is_absent(&code) => DeviceError::Refused {
                code: "attach_failed",
                message,
            },
            AgentError::Refused { code, message, .. } if is_held(&code) => DeviceError::Refused {
                code: "device_in_use",
                message,
            },
            AgentError::Refused { code, message, .. } if code == UNSUPPORTED => {
                DeviceError::Refused {
                    code: UNSUPPORTED,
                    message: format!(
                        "the hypervisor of host {id} cannot attach USB devices to instances ({message})"
                    ),
                }
            }
            other => agent_failed(id, &other),
        });
    }
    refresh(st, id, &ep).await;
    let detail = format!("{device} to {instance}");
    st.store
        .audit(actor, "assign usb device", id, &detail)
        .await?;
    tracing::info!(host = %id, device = %device, instance = %instance, "USB device assigned.");
    usb_device(st, id, device).await
}

/// Detaches USB device `device` of host `id` from the instance holding it, for `actor`; a
/// free device is released already.
pub async fn release_usb(
    st: &AppState,
    actor: &str,
    id: &HostId,
    device: &str,
) -> Result<UsbDevice, DeviceError> {
    existing_host(st, id).await?;
    let key = format!("usb:{device}");
    let Some(instance) = st.store.device_holder(id, &key).await? else {
        return usb_device(st, id, device).await;
    };
    let before = st
        .store
        .host_devices(id)
        .await?
        .usb
        .into_iter()
        .find(|u| u.id == device);
    let ep = endpoint(st, id).await?;
    match st.agents.usb(&ep, device, UsbVerb::Detach, &instance).await {
        Ok(_) => {}
        // Unplugged meanwhile: libvirt lets go of it with the domain's next change.
        Err(AgentError::Refused { code, .. }) if is_absent(&code) || is_held(&code) => {}
        Err(other) => return Err(agent_failed(id, &other)),
    }
    st.store
        .unassign_device(id, &key, &instance, now_ms())
        .await?;
    refresh(st, id, &ep).await;
    let detail = format!("{device} from {instance}");
    st.store
        .audit(actor, "release usb device", id, &detail)
        .await?;
    tracing::info!(host = %id, device = %device, instance = %instance, "USB device released.");
    match (usb_device(st, id, device).await, before) {
        (Ok(now), _) => Ok(now),
        // Unplugged while assigned: released all the same; shown as it was last seen.
        (Err(_), Some(last)) => Ok(UsbDevice {
            state: plinth_common::api::DeviceState::Free,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
            ..last
        }),
        (Err(e), None) => Err(e),
    }
}

/// Checks that GPU `g` can give `count` vGPUs of type `wanted` (an id or a name).
fn check_sliceable(g: &Gpu, wanted: &str, count: u32) -> Result<(), DeviceError> {
    let address = &g.address;
    if g.kind == GpuKind::Passthrough {
        return Err(DeviceError::NotSliceable {
            address: address.clone(),
            name: g.name.clone(),
        });
    }
    if let Some(holder) = &g.instance_id {
        return Err(DeviceError::PassedThrough {
            address: address.clone(),
            holder: holder.clone(),
        });
    }
    match g
        .vgpu_types
        .iter()
        .find(|t| t.id == wanted || t.name == wanted)
    {
        Some(t) if count > t.available => Err(DeviceError::NotEnoughVgpus {
            address: address.clone(),
            vgpu_type: t.id.clone(),
            available: t.available,
            asked: count,
        }),
        Some(_) => Ok(()),
        // An SR-IOV GPU whose VFs are not enabled lists no types yet: the agent enables them.
        None if g.kind == GpuKind::SriovVgpu && g.vgpu_types.is_empty() => Ok(()),
        None => {
            let offered: Vec<String> = g
                .vgpu_types
                .iter()
                .map(|t| format!("{} ({}, {} available)", t.id, t.name, t.available))
                .collect();
            Err(DeviceError::Invalid {
                field: "type",
                message: format!(
                    "GPU {address} offers no type '{wanted}'; it offers {}",
                    offered.join(", ")
                ),
            })
        }
    }
}

/// Slices GPU `address` of host `id` into `req.count` vGPUs of `req.vgpu_type`, for `actor`:
/// the vGPUs made, as the store shows them.
pub async fn slice(
    st: &AppState,
    actor: &str,
    id: &HostId,
    address: &str,
    req: &SliceGpu,
) -> Result<Vec<Vgpu>, DeviceError> {
    existing_host(st, id).await?;
    check_sliceable(&gpu(st, id, address).await?, &req.vgpu_type, req.count)?;
    let ep = endpoint(st, id).await?;
    let made = st
        .agents
        .slice_gpu(&ep, address, req)
        .await
        .map_err(|err| match err {
            AgentError::Refused { code, message, .. } if is_held(&code) => DeviceError::Refused {
                code: "not_enough_vgpus",
                message,
            },
            AgentError::Refused { code, message, .. } if code == "invalid_request" => {
                DeviceError::Invalid {
                    field: "type",
                    message,
                }
            }
            AgentError::Refused { code, .. } if is_absent(&code) => {
                DeviceError::GpuNotFound(address.to_string())
            }
            other => agent_failed(id, &other),
        })?;
    refresh(st, id, &ep).await;
    let detail = format!("{address}: {} x {}", req.count, req.vgpu_type);
    st.store.audit(actor, "slice gpu", id, &detail).await?;
    tracing::info!(host = %id, gpu = %address, vgpu_type = %req.vgpu_type, count = req.count, "GPU sliced.");
    let shown = st.store.host_devices(id).await?.vgpus;
    Ok(made
        .iter()
        .filter_map(|m| shown.iter().find(|v| v.id == m.id).cloned())
        .collect())
}

/// Removes every vGPU of GPU `address` of host `id`, for `actor`; refused while any is
/// attached to an instance.
pub async fn restore(
    st: &AppState,
    actor: &str,
    id: &HostId,
    address: &str,
) -> Result<Gpu, DeviceError> {
    existing_host(st, id).await?;
    gpu(st, id, address).await?;
    let mut holders: Vec<String> = st
        .store
        .host_devices(id)
        .await?
        .vgpus
        .into_iter()
        .filter(|v| v.parent == address)
        .filter_map(|v| v.instance_id)
        .collect();
    holders.sort();
    holders.dedup();
    if !holders.is_empty() {
        return Err(DeviceError::VgpusAttached {
            address: address.to_string(),
            holders,
        });
    }
    let ep = endpoint(st, id).await?;
    let inventory = st
        .agents
        .restore_gpu(&ep, address)
        .await
        .map_err(|err| match err {
            AgentError::Refused { code, message, .. } if is_held(&code) => DeviceError::Refused {
                code: "gpu_in_use",
                message,
            },
            AgentError::Refused { code, .. } if is_absent(&code) => {
                DeviceError::GpuNotFound(address.to_string())
            }
            other => agent_failed(id, &other),
        })?;
    st.store.record_devices(id, &inventory, now_ms()).await?;
    st.store.audit(actor, "restore gpu", id, address).await?;
    tracing::info!(host = %id, gpu = %address, "GPU restored.");
    gpu(st, id, address).await
}
