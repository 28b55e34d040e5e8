//! `/v1/hosts/{id}/usb|gpus|vgpus` (SPEC §2 "USB", "GPU and vGPU"): a host's devices as its
//! agent last reported them, with the instance and tenant holding each; USB devices assigned
//! to and released from instances of that host; GPUs sliced into vGPUs and restored. The
//! store takes an assignment before the agent attaches (so two callers never both get a
//! device) and gives it back when the agent fails; the host's inventory is read again from
//! the agent after every change.

use crate::agents::{AgentError, UsbVerb};
use crate::devices::store::AssignRefused;
use crate::hosts::api::check_host_id;
use crate::hosts::store::AgentEndpoint;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use plinth_common::api::{
    AssignUsb, ErrorBody, Gpu, GpuKind, GpuList, SliceGpu, UsbDevice, UsbDeviceList, VgpuList,
};
use plinth_common::timefmt::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hosts/{id}/usb", get(usb))
        .route("/v1/hosts/{id}/gpus", get(gpus))
        .route("/v1/hosts/{id}/vgpus", get(vgpus))
        .route("/v1/hosts/{id}/usb/{device}/assign", post(assign_usb))
        .route("/v1/hosts/{id}/usb/{device}/release", post(release_usb))
        .route("/v1/hosts/{id}/gpus/{address}/slice", post(slice))
        .route("/v1/hosts/{id}/gpus/{address}/restore", post(restore))
}

/// The most vGPUs one slice request makes.
const MAX_SLICES: u32 = 64;

async fn existing_host(st: &AppState, id: &str) -> ApiResult<()> {
    check_host_id(id)?;
    match st.store.get_host(id, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("host", id)),
    }
}

async fn endpoint(st: &AppState, id: &str) -> ApiResult<AgentEndpoint> {
    st.store
        .agent_endpoint(id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("host", id))
}

/// The agent's codes for a device or instance it does not have (agent/src/api/error.rs).
fn is_absent(code: &str) -> bool {
    matches!(code, "device_not_found" | "instance_not_found")
}

/// The agent's codes for a device that cannot be had as asked: held, or too few vGPUs left.
fn is_held(code: &str) -> bool {
    matches!(code, "device_in_use" | "not_enough_vgpus")
}

/// An agent failure that is not the caller's: the agent is down, or failed itself.
fn agent_failed(host: &str, err: &AgentError) -> ApiError {
    tracing::warn!(host = %host, error = %err.explain(), "Agent device call failed.");
    ApiError::Unavailable {
        code: "agent_call_failed",
        message: format!(
            "the agent of host {host} could not do it: {}",
            err.explain()
        ),
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

/// The host's USB devices (hubs excluded): name, id, state, vendor, type, serial, instance,
/// USB version, tenant.
#[utoipa::path(get, path = "/v1/hosts/{id}/usb", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = UsbDeviceList), (status = 404, body = ErrorBody)))]
pub async fn usb(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<UsbDeviceList>> {
    existing_host(&st, &id).await?;
    let items = st.store.host_devices(&id).await?.usb;
    Ok(ApiJson(UsbDeviceList { items }))
}

/// The host's physical GPUs: name, spec, PCI address, type, state, the vGPU types offered.
#[utoipa::path(get, path = "/v1/hosts/{id}/gpus", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = GpuList), (status = 404, body = ErrorBody)))]
pub async fn gpus(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<GpuList>> {
    existing_host(&st, &id).await?;
    let items = st.store.host_devices(&id).await?.gpus;
    Ok(ApiJson(GpuList { items }))
}

/// The host's vGPUs: name (type), parent GPU, instance, tenant, state.
#[utoipa::path(get, path = "/v1/hosts/{id}/vgpus", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = VgpuList), (status = 404, body = ErrorBody)))]
pub async fn vgpus(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<VgpuList>> {
    existing_host(&st, &id).await?;
    let items = st.store.host_devices(&id).await?.vgpus;
    Ok(ApiJson(VgpuList { items }))
}

async fn usb_device(st: &AppState, host: &str, device: &str) -> ApiResult<UsbDevice> {
    st.store
        .host_devices(host)
        .await?
        .usb
        .into_iter()
        .find(|u| u.id == device)
        .ok_or_else(|| ApiError::not_found("usb_device", device))
}

/// Attach a USB device to an instance on the same host (live when it runs, and in its
/// definition). A device goes to one instance at a time.
#[utoipa::path(post, path = "/v1/hosts/{id}/usb/{device}/assign", params(("id" = String, Path, description = "host id"), ("device" = String, Path, description = "USB device id (bus-port)")), tag = "hosts", security(("bearer" = [])),
    request_body = AssignUsb,
    responses((status = 200, body = UsbDevice), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn assign_usb(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, device)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AssignUsb>,
) -> ApiResult<ApiJson<UsbDevice>> {
    existing_host(&st, &id).await?;
    if !plinth_common::ids::is_id("inst", &req.instance_id) {
        return Err(ApiError::field(
            "instance_id",
            format!("'{}' is not an instance id", req.instance_id),
        ));
    }
    usb_device(&st, &id, &device).await?;
    let key = format!("usb:{device}");
    let instance = &req.instance_id;
    match st
        .store
        .assign_device(&id, &key, instance, now_ms())
        .await?
    {
        Ok(()) => {}
        Err(AssignRefused::NoInstance) => return Err(ApiError::not_found("instance", instance)),
        Err(AssignRefused::OtherHost(other)) => {
            return Err(ApiError::Conflict {
                code: "instance_on_other_host",
                message: format!(
                    "instance {instance} is on {}, not host {id}: a USB device goes only to an instance on its host",
                    other.map_or("no host".to_string(), |h| format!("host {h}"))
                ),
            });
        }
        Err(AssignRefused::Taken(holder)) => {
            return Err(ApiError::Conflict {
                code: "device_in_use",
                message: format!(
                    "USB device {device} of host {id} is assigned to instance {holder}; release it first"
                ),
            });
        }
    }
    let ep = endpoint(&st, &id).await?;
    if let Err(err) = st.agents.usb(&ep, &device, UsbVerb::Attach, instance).await {
        st.store
            .unassign_device(&id, &key, instance, now_ms())
            .await?;
        return Err(match err {
            AgentError::Refused { code, message, .. } if is_absent(&code) => ApiError::Conflict {
                code: "attach_failed",
                message,
            },
            AgentError::Refused { code, message, .. } if is_held(&code) => ApiError::Conflict {
                code: "device_in_use",
                message,
            },
            other => agent_failed(&id, &other),
        });
    }
    refresh(&st, &id, &ep).await;
    st.store
        .audit(
            &admin.0.actor(),
            "assign usb device",
            &id,
            &format!("{device} to {instance}"),
        )
        .await?;
    tracing::info!(host = %id, device = %device, instance = %instance, "USB device assigned.");
    Ok(ApiJson(usb_device(&st, &id, &device).await?))
}

/// Detach a USB device from the instance holding it. A free device is released already.
#[utoipa::path(post, path = "/v1/hosts/{id}/usb/{device}/release", params(("id" = String, Path, description = "host id"), ("device" = String, Path, description = "USB device id (bus-port)")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = UsbDevice), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn release_usb(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, device)): ApiPath<(String, String)>,
) -> ApiResult<ApiJson<UsbDevice>> {
    existing_host(&st, &id).await?;
    let key = format!("usb:{device}");
    let Some(instance) = st.store.device_holder(&id, &key).await? else {
        return Ok(ApiJson(usb_device(&st, &id, &device).await?));
    };
    let before = st
        .store
        .host_devices(&id)
        .await?
        .usb
        .into_iter()
        .find(|u| u.id == device);
    let ep = endpoint(&st, &id).await?;
    match st
        .agents
        .usb(&ep, &device, UsbVerb::Detach, &instance)
        .await
    {
        Ok(_) => {}
        // Unplugged meanwhile: libvirt lets go of it with the domain's next change.
        Err(AgentError::Refused { code, .. }) if is_absent(&code) || is_held(&code) => {}
        Err(other) => return Err(agent_failed(&id, &other)),
    }
    st.store
        .unassign_device(&id, &key, &instance, now_ms())
        .await?;
    refresh(&st, &id, &ep).await;
    st.store
        .audit(
            &admin.0.actor(),
            "release usb device",
            &id,
            &format!("{device} from {instance}"),
        )
        .await?;
    tracing::info!(host = %id, device = %device, instance = %instance, "USB device released.");
    match (usb_device(&st, &id, &device).await, before) {
        (Ok(now), _) => Ok(ApiJson(now)),
        // Unplugged while assigned: released all the same; shown as it was last seen.
        (Err(_), Some(last)) => Ok(ApiJson(UsbDevice {
            state: plinth_common::api::DeviceState::Free,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
            ..last
        })),
        (Err(e), None) => Err(e),
    }
}

async fn gpu(st: &AppState, host: &str, address: &str) -> ApiResult<Gpu> {
    st.store
        .host_devices(host)
        .await?
        .gpus
        .into_iter()
        .find(|g| g.address == address)
        .ok_or_else(|| ApiError::not_found("gpu", address))
}

/// Slice a GPU into `count` vGPUs of a type it offers (mdev, or NVIDIA SR-IOV VFs). More than
/// the GPU has available is refused with the number available.
#[utoipa::path(post, path = "/v1/hosts/{id}/gpus/{address}/slice", params(("id" = String, Path, description = "host id"), ("address" = String, Path, description = "PCI address of the GPU")), tag = "hosts", security(("bearer" = [])),
    request_body = SliceGpu,
    responses((status = 200, body = VgpuList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn slice(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, address)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SliceGpu>,
) -> ApiResult<ApiJson<VgpuList>> {
    existing_host(&st, &id).await?;
    if !(1..=MAX_SLICES).contains(&req.count) {
        return Err(ApiError::field(
            "count",
            format!("must be 1 to {MAX_SLICES}"),
        ));
    }
    let wanted = req.vgpu_type.trim();
    if wanted.is_empty() || wanted.len() > 128 || wanted.chars().any(char::is_control) {
        return Err(ApiError::field(
            "type",
            "must be a vGPU type id or name the GPU offers",
        ));
    }
    let g = gpu(&st, &id, &address).await?;
    if g.kind == GpuKind::Passthrough {
        return Err(ApiError::Conflict {
            code: "gpu_not_sliceable",
            message: format!(
                "GPU {address} ({}) offers no vGPU types: it can only be passed through whole",
                g.name
            ),
        });
    }
    if let Some(holder) = &g.instance_id {
        return Err(ApiError::Conflict {
            code: "gpu_in_use",
            message: format!("GPU {address} is passed through to instance {holder}"),
        });
    }
    match g
        .vgpu_types
        .iter()
        .find(|t| t.id == wanted || t.name == wanted)
    {
        Some(t) if req.count > t.available => {
            return Err(not_enough(&address, &t.id, t.available, req.count));
        }
        Some(_) => {}
        // An SR-IOV GPU whose VFs are not enabled lists no types yet: the agent enables them.
        None if g.kind == GpuKind::SriovVgpu && g.vgpu_types.is_empty() => {}
        None => {
            let offered: Vec<String> = g
                .vgpu_types
                .iter()
                .map(|t| format!("{} ({}, {} available)", t.id, t.name, t.available))
                .collect();
            return Err(ApiError::field(
                "type",
                format!(
                    "GPU {address} offers no type '{wanted}'; it offers {}",
                    offered.join(", ")
                ),
            ));
        }
    }
    let ep = endpoint(&st, &id).await?;
    let body = SliceGpu {
        vgpu_type: wanted.to_string(),
        count: req.count,
    };
    let made = st
        .agents
        .slice_gpu(&ep, &address, &body)
        .await
        .map_err(|err| match err {
            AgentError::Refused { code, message, .. } if is_held(&code) => ApiError::Conflict {
                code: "not_enough_vgpus",
                message,
            },
            AgentError::Refused { code, message, .. } if code == "invalid_request" => {
                ApiError::field("type", message)
            }
            AgentError::Refused { code, .. } if is_absent(&code) => {
                ApiError::not_found("gpu", &address)
            }
            other => agent_failed(&id, &other),
        })?;
    refresh(&st, &id, &ep).await;
    st.store
        .audit(
            &admin.0.actor(),
            "slice gpu",
            &id,
            &format!("{address}: {} x {wanted}", req.count),
        )
        .await?;
    tracing::info!(host = %id, gpu = %address, vgpu_type = %wanted, count = req.count, "GPU sliced.");
    let shown = st.store.host_devices(&id).await?.vgpus;
    let items = made
        .iter()
        .filter_map(|m| shown.iter().find(|v| v.id == m.id).cloned())
        .collect();
    Ok(ApiJson(VgpuList { items }))
}

fn not_enough(address: &str, vgpu_type: &str, available: u32, asked: u32) -> ApiError {
    ApiError::Conflict {
        code: "not_enough_vgpus",
        message: format!(
            "GPU {address} has {available} vGPUs of type {vgpu_type} available; {asked} asked"
        ),
    }
}

/// Remove every vGPU of a GPU; refused while any is attached to an instance (409 naming them).
#[utoipa::path(post, path = "/v1/hosts/{id}/gpus/{address}/restore", params(("id" = String, Path, description = "host id"), ("address" = String, Path, description = "PCI address of the GPU")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Gpu), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn restore(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, address)): ApiPath<(String, String)>,
) -> ApiResult<ApiJson<Gpu>> {
    existing_host(&st, &id).await?;
    gpu(&st, &id, &address).await?;
    let mut holders: Vec<String> = st
        .store
        .host_devices(&id)
        .await?
        .vgpus
        .into_iter()
        .filter(|v| v.parent == address)
        .filter_map(|v| v.instance_id)
        .collect();
    holders.sort();
    holders.dedup();
    if !holders.is_empty() {
        return Err(ApiError::Conflict {
            code: "gpu_in_use",
            message: format!(
                "GPU {address} has vGPUs attached to instances {}; delete them or move them off first",
                holders.join(", ")
            ),
        });
    }
    let ep = endpoint(&st, &id).await?;
    let inventory = st
        .agents
        .restore_gpu(&ep, &address)
        .await
        .map_err(|err| match err {
            AgentError::Refused { code, message, .. } if is_held(&code) => ApiError::Conflict {
                code: "gpu_in_use",
                message,
            },
            AgentError::Refused { code, .. } if is_absent(&code) => {
                ApiError::not_found("gpu", &address)
            }
            other => agent_failed(&id, &other),
        })?;
    st.store.record_devices(&id, &inventory, now_ms()).await?;
    st.store
        .audit(&admin.0.actor(), "restore gpu", &id, &address)
        .await?;
    tracing::info!(host = %id, gpu = %address, "GPU restored.");
    Ok(ApiJson(gpu(&st, &id, &address).await?))
}
