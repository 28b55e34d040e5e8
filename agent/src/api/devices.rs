//! `/v1/devices`: the host's USB devices, GPUs and vGPUs read now; USB devices attached to and
//! detached from instances; GPUs sliced and restored. Changes run in their own task, so a
//! coordinator that hangs up still gets a change that finished. The one mapping of device
//! errors to HTTP statuses is here.

use super::error;
use super::instances::{Body, bad_body};
use crate::devices::DeviceError;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_common::api::{AgentUsbAttach, SliceGpu};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;

pub async fn inventory(State(agent): State<Arc<Agent>>) -> Response {
    match agent.devices.inventory().await {
        Ok(inventory) => Json(inventory).into_response(),
        Err(err) => failure(err),
    }
}

pub async fn attach_usb(
    State(agent): State<Arc<Agent>>,
    Path(device): Path<String>,
    body: Body<AgentUsbAttach>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    detached(async move { agent.devices.attach_usb(&device, &req.instance_id).await }).await
}

pub async fn detach_usb(
    State(agent): State<Arc<Agent>>,
    Path(device): Path<String>,
    body: Body<AgentUsbAttach>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    detached(async move { agent.devices.detach_usb(&device, &req.instance_id).await }).await
}

pub async fn slice(
    State(agent): State<Arc<Agent>>,
    Path(address): Path<String>,
    body: Body<SliceGpu>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return bad_body(rejection),
    };
    detached(async move {
        agent
            .devices
            .slice(&address, &req.vgpu_type, req.count)
            .await
    })
    .await
}

pub async fn restore(State(agent): State<Arc<Agent>>, Path(address): Path<String>) -> Response {
    detached(async move {
        agent.devices.restore(&address).await?;
        agent.devices.inventory().await
    })
    .await
}

async fn detached<T: Serialize + Send + 'static>(
    work: impl Future<Output = Result<T, DeviceError>> + Send + 'static,
) -> Response {
    match tokio::spawn(work).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(err)) => failure(err),
        Err(join) => {
            tracing::error!(error = %join, "Device worker failed.");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the device worker failed".into(),
            )
        }
    }
}

fn failure(err: DeviceError) -> Response {
    let (status, code) = match &err {
        DeviceError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        DeviceError::NotFound { kind, .. } if *kind == "instance" => {
            (StatusCode::NOT_FOUND, "instance_not_found")
        }
        DeviceError::NotFound { .. } => (StatusCode::NOT_FOUND, "device_not_found"),
        DeviceError::Conflict(_) => (StatusCode::CONFLICT, "device_in_use"),
        DeviceError::NotEnough { .. } => (StatusCode::CONFLICT, "not_enough_vgpus"),
        DeviceError::Libvirt { source, .. } if source.is_deadline() => {
            (StatusCode::GATEWAY_TIMEOUT, "libvirt_timeout")
        }
        DeviceError::Libvirt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "libvirt_failed"),
        DeviceError::Io { .. } | DeviceError::Kernel(_) | DeviceError::Deadline(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "sysfs_failed")
        }
    };
    let message = chain(&err);
    if status.is_server_error() {
        tracing::warn!(code, error = %message, "Device call failed.");
    }
    error(status, code, message)
}

/// Every cause, outermost first.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}
