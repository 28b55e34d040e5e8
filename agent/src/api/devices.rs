//! `/v1/devices`: the host's USB devices, GPUs and vGPUs read now; USB devices attached to and
//! detached from instances; GPUs sliced and restored. Changes run in their own task, so a
//! coordinator that hangs up still gets a change that finished.

use super::{ApiError, Body, detached};
use crate::runtime::Agent;
use axum::Json;
use axum::extract::{Path, State};
use plinth_common::api::{AgentUsbAttach, DeviceInventory, SliceGpu, UsbDevice, Vgpu};
use std::sync::Arc;

const WORKER: &str = "device worker";

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn inventory(State(agent): State<Arc<Agent>>) -> Answer<DeviceInventory> {
    Ok(Json(agent.devices.inventory().await?))
}

pub async fn attach_usb(
    State(agent): State<Arc<Agent>>,
    Path(device): Path<String>,
    body: Body<AgentUsbAttach>,
) -> Answer<UsbDevice> {
    let Json(req) = body?;
    detached(WORKER, async move {
        agent.devices.attach_usb(&device, &req.instance_id).await
    })
    .await
    .map(Json)
}

pub async fn detach_usb(
    State(agent): State<Arc<Agent>>,
    Path(device): Path<String>,
    body: Body<AgentUsbAttach>,
) -> Answer<UsbDevice> {
    let Json(req) = body?;
    detached(WORKER, async move {
        agent.devices.detach_usb(&device, &req.instance_id).await
    })
    .await
    .map(Json)
}

pub async fn slice(
    State(agent): State<Arc<Agent>>,
    Path(address): Path<String>,
    body: Body<SliceGpu>,
) -> Answer<Vec<Vgpu>> {
    let Json(req) = body?;
    detached(WORKER, async move {
        agent
            .devices
            .slice(&address, &req.vgpu_type, req.count)
            .await
    })
    .await
    .map(Json)
}

pub async fn restore(
    State(agent): State<Arc<Agent>>,
    Path(address): Path<String>,
) -> Answer<DeviceInventory> {
    detached(WORKER, async move {
        agent.devices.restore(&address).await?;
        agent.devices.inventory().await
    })
    .await
    .map(Json)
}
