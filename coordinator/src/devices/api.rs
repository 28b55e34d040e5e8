//! `/v1/hosts/{id}/usb|gpus|vgpus` (SPEC §2 "USB", "GPU and vGPU"): a host's devices as its
//! agent last reported them, with the instance and tenant holding each; USB devices assigned
//! to and released from instances of that host; GPUs sliced into vGPUs and restored. The
//! operations are in the folder's mod.rs.

use crate::devices;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use plinth_common::api::{
    AssignUsb, ErrorBody, Gpu, GpuList, SliceGpu, UsbDevice, UsbDeviceList, VgpuList,
};
use plinth_common::ids::{HostId, InstanceId};

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

/// The host's USB devices (hubs excluded): name, id, state, vendor, type, serial, instance,
/// USB version, tenant.
#[utoipa::path(get, path = "/v1/hosts/{id}/usb", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = UsbDeviceList), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usb(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<UsbDeviceList>> {
    let items = devices::inventory(&st, &id).await?.usb;
    Ok(ApiJson(UsbDeviceList { items }))
}

/// The host's physical GPUs: name, spec, PCI address, type, state, the vGPU types offered.
#[utoipa::path(get, path = "/v1/hosts/{id}/gpus", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = GpuList), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn gpus(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<GpuList>> {
    let items = devices::inventory(&st, &id).await?.gpus;
    Ok(ApiJson(GpuList { items }))
}

/// The host's vGPUs: name (type), parent GPU, instance, tenant, state.
#[utoipa::path(get, path = "/v1/hosts/{id}/vgpus", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = VgpuList), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn vgpus(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<HostId>,
) -> ApiResult<ApiJson<VgpuList>> {
    let items = devices::inventory(&st, &id).await?.vgpus;
    Ok(ApiJson(VgpuList { items }))
}

/// Attach a USB device to an instance on the same host (live when it runs, and in its
/// definition). A device goes to one instance at a time.
#[utoipa::path(post, path = "/v1/hosts/{id}/usb/{device}/assign", params(("id" = String, Path, description = "host id"), ("device" = String, Path, description = "USB device id (bus-port)")), tag = "hosts", security(("bearer" = [])),
    request_body = AssignUsb,
    responses((status = 200, body = UsbDevice), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn assign_usb(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, device)): ApiPath<(HostId, String)>,
    ApiJson(req): ApiJson<AssignUsb>,
) -> ApiResult<ApiJson<UsbDevice>> {
    let instance = InstanceId::parse(&req.instance_id).ok_or_else(|| {
        ApiError::field(
            "instance_id",
            format!("'{}' is not an instance id", req.instance_id),
        )
    })?;
    let assigned = devices::assign_usb(&st, &admin.0.actor(), &id, &device, &instance).await?;
    Ok(ApiJson(assigned))
}

/// Detach a USB device from the instance holding it. A free device is released already.
#[utoipa::path(post, path = "/v1/hosts/{id}/usb/{device}/release", params(("id" = String, Path, description = "host id"), ("device" = String, Path, description = "USB device id (bus-port)")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = UsbDevice), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn release_usb(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, device)): ApiPath<(HostId, String)>,
) -> ApiResult<ApiJson<UsbDevice>> {
    let released = devices::release_usb(&st, &admin.0.actor(), &id, &device).await?;
    Ok(ApiJson(released))
}

/// Checks a slice request: a count in range and a plausible type, trimmed.
fn slice_request(req: &SliceGpu) -> ApiResult<SliceGpu> {
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
    Ok(SliceGpu {
        vgpu_type: wanted.to_string(),
        count: req.count,
    })
}

/// Slice a GPU into `count` vGPUs of a type it offers (mdev, or NVIDIA SR-IOV VFs). More than
/// the GPU has available is refused with the number available.
#[utoipa::path(post, path = "/v1/hosts/{id}/gpus/{address}/slice", params(("id" = String, Path, description = "host id"), ("address" = String, Path, description = "PCI address of the GPU")), tag = "hosts", security(("bearer" = [])),
    request_body = SliceGpu,
    responses((status = 200, body = VgpuList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn slice(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, address)): ApiPath<(HostId, String)>,
    ApiJson(req): ApiJson<SliceGpu>,
) -> ApiResult<ApiJson<VgpuList>> {
    let req = slice_request(&req)?;
    let items = devices::slice(&st, &admin.0.actor(), &id, &address, &req).await?;
    Ok(ApiJson(VgpuList { items }))
}

/// Remove every vGPU of a GPU; refused while any is attached to an instance (409 naming them).
#[utoipa::path(post, operation_id = "restore_gpu", path = "/v1/hosts/{id}/gpus/{address}/restore", params(("id" = String, Path, description = "host id"), ("address" = String, Path, description = "PCI address of the GPU")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Gpu), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn restore(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath((id, address)): ApiPath<(HostId, String)>,
) -> ApiResult<ApiJson<Gpu>> {
    let gpu = devices::restore(&st, &admin.0.actor(), &id, &address).await?;
    Ok(ApiJson(gpu))
}
