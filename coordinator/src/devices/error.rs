//! Why a device operation was refused; [`From`] turns each into the one `ApiError` (status
//! and code).

use crate::db::StoreError;
use crate::http::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("host {0} does not exist")]
    HostNotFound(String),
    #[error("usb_device {0} does not exist")]
    UsbNotFound(String),
    #[error("gpu {0} does not exist")]
    GpuNotFound(String),
    #[error("instance {0} does not exist")]
    InstanceNotFound(String),
    /// A field of the request is wrong; the message names what to change.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The instance is on another host (`other`), or on none.
    #[error(
        "instance {instance} is on {}, not host {host}: a USB device goes only to an instance on its host",
        .other.as_ref().map_or("no host".to_string(), |h| format!("host {h}"))
    )]
    InstanceOnOtherHost {
        instance: String,
        host: String,
        other: Option<String>,
    },
    #[error(
        "USB device {device} of host {host} is assigned to instance {holder}; release it first"
    )]
    UsbTaken {
        device: String,
        host: String,
        holder: String,
    },
    #[error("GPU {address} ({name}) offers no vGPU types: it can only be passed through whole")]
    NotSliceable { address: String, name: String },
    #[error("GPU {address} is passed through to instance {holder}")]
    PassedThrough { address: String, holder: String },
    #[error("GPU {address} has {available} vGPUs of type {vgpu_type} available; {asked} asked")]
    NotEnoughVgpus {
        address: String,
        vgpu_type: String,
        available: u32,
        asked: u32,
    },
    #[error(
        "GPU {address} has vGPUs attached to instances {}; delete them or move them off first",
        .holders.join(", ")
    )]
    VgpusAttached {
        address: String,
        holders: Vec<String>,
    },
    /// The agent refused for a reason of the device's (held, absent); `message` is its own.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The agent is down or failed itself; `reason` is the short explanation.
    #[error("the agent of host {host} could not do it: {reason}")]
    AgentFailed { host: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DeviceError> for ApiError {
    fn from(err: DeviceError) -> ApiError {
        let message = err.to_string();
        let code = match err {
            DeviceError::HostNotFound(id) => return ApiError::not_found("host", &id),
            DeviceError::UsbNotFound(id) => return ApiError::not_found("usb_device", &id),
            DeviceError::GpuNotFound(address) => return ApiError::not_found("gpu", &address),
            DeviceError::InstanceNotFound(id) => return ApiError::not_found("instance", &id),
            DeviceError::Invalid { field, message } => return ApiError::field(field, message),
            DeviceError::AgentFailed { .. } => {
                return ApiError::Unavailable {
                    code: "agent_call_failed",
                    message,
                };
            }
            DeviceError::Store(e) => return e.into(),
            DeviceError::InstanceOnOtherHost { .. } => "instance_on_other_host",
            DeviceError::UsbTaken { .. } => "device_in_use",
            DeviceError::NotSliceable { .. } => "gpu_not_sliceable",
            DeviceError::PassedThrough { .. } | DeviceError::VgpusAttached { .. } => "gpu_in_use",
            DeviceError::NotEnoughVgpus { .. } => "not_enough_vgpus",
            DeviceError::Refused { code, .. } => code,
        };
        ApiError::Conflict { code, message }
    }
}
