//! The agent API's one error type and its one mapping to an HTTP status and the
//! `{"error":{"code","message"}}` body every plinth API answers.
//!
//! The coordinator matches on the codes, never on the statuses. Those it relies on, and so
//! must stay as they are:
//! - `instance_not_found`: the instance has no domain or files here (a read of it is "absent");
//! - `device_not_found`, `device_in_use`, `not_enough_vgpus`, `invalid_request`: USB and
//!   GPU changes, mapped to the coordinator's own refusals;
//! - `bmc_*` (every [`IpmiError::code`]): the agent reached, or tried, the BMC and says why
//!   not; final for a bare-metal operation, unlike a failure to reach the agent.

use crate::devices::DeviceError;
use crate::instances::InstanceError;
use crate::ipmi::IpmiError;
use crate::libvirt::LibvirtError;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_common::api::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong: a field, a query or the path.
    #[error("{0}")]
    Invalid(String),
    /// The body is not the JSON the route takes.
    #[error("{}", .0.body_text())]
    Body(JsonRejection),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Ipmi(#[from] IpmiError),
    #[error("this agent is configured with ipmi = false")]
    IpmiDisabled,
    #[error(transparent)]
    LibvirtUnavailable(LibvirtError),
    /// The task running the call panicked or was cancelled.
    #[error("the {0} failed")]
    Worker(&'static str),
    #[error("no such route")]
    RouteNotFound,
    #[error("this coordinator certificate was rotated out; the coordinator presents its new one")]
    CertificateRevoked,
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "this call comes from term {got} of the coordinators' job lease, which ended: term {seen} has called since"
    )]
    StaleEpoch { got: i64, seen: i64 },
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::Body(rejection)
    }
}

impl ApiError {
    /// The status and the code: the one table of them in the agent.
    fn status_code(&self) -> (StatusCode, &'static str) {
        use InstanceError as I;
        match self {
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Body(rejection) => (rejection.status(), "invalid_request"),
            ApiError::Instance(err) => match err {
                I::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
                I::NotFound(_) => (StatusCode::NOT_FOUND, "instance_not_found"),
                I::BadState { .. } => (StatusCode::CONFLICT, "instance_bad_state"),
                I::Migrating(_) => (StatusCode::CONFLICT, "instance_migrating"),
                I::Exists(_) => (StatusCode::CONFLICT, "instance_exists"),
                I::NotMigratable { .. } => (StatusCode::CONFLICT, "instance_not_migratable"),
                I::Fetch { source, .. } if source.is_local() => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "image_cache_failed")
                }
                I::Fetch { .. } => (StatusCode::BAD_GATEWAY, "image_fetch_failed"),
                I::Disk(_) => (StatusCode::INTERNAL_SERVER_ERROR, "disk_failed"),
                I::Seed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "seed_failed"),
                I::Network(crate::network::host::NetworkError::NoNic(_))
                | I::Network(crate::network::host::NetworkError::HostNic(_)) => {
                    (StatusCode::CONFLICT, "nic_unavailable")
                }
                I::Network(_) => (StatusCode::INTERNAL_SERVER_ERROR, "network_failed"),
                I::Libvirt { source, .. } if source.is_deadline() => {
                    (StatusCode::GATEWAY_TIMEOUT, "libvirt_timeout")
                }
                I::Libvirt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "libvirt_failed"),
                I::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io_failed"),
                I::Export(source) if source.is_upload() => {
                    (StatusCode::BAD_GATEWAY, "export_upload_failed")
                }
                I::Export(_) => (StatusCode::INTERNAL_SERVER_ERROR, "export_failed"),
                I::Devices(DeviceError::Conflict(_)) => (StatusCode::CONFLICT, "device_in_use"),
                I::Devices(DeviceError::NotFound { .. }) => {
                    (StatusCode::NOT_FOUND, "device_not_found")
                }
                I::Devices(_) => (StatusCode::INTERNAL_SERVER_ERROR, "devices_failed"),
            },
            ApiError::Device(err) => match err {
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
                DeviceError::Libvirt { source, .. } if source.is_unsupported() => {
                    (StatusCode::CONFLICT, "hypervisor_unsupported")
                }
                DeviceError::Libvirt { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "libvirt_failed")
                }
                DeviceError::Io { .. } | DeviceError::Kernel(_) | DeviceError::Deadline(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "sysfs_failed")
                }
            },
            ApiError::Ipmi(err) => (StatusCode::BAD_GATEWAY, err.code()),
            ApiError::IpmiDisabled => (StatusCode::SERVICE_UNAVAILABLE, "ipmi_disabled"),
            ApiError::LibvirtUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "libvirt_unavailable")
            }
            ApiError::Worker(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            ApiError::CertificateRevoked => (StatusCode::FORBIDDEN, "certificate_revoked"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::StaleEpoch { .. } => (StatusCode::CONFLICT, "stale_epoch"),
        }
    }

    /// What the coordinator reads: instance and device failures with every cause (the
    /// operator acts on the innermost), the others in their own words.
    fn message(&self) -> String {
        match self {
            ApiError::Instance(err) => chain(err),
            ApiError::Device(err) => chain(err),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let message = self.message();
        if status.is_server_error() {
            tracing::warn!(code, error = %message, "Agent call failed.");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                field: None,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

/// "making the disk: qemu-img failed (exit status: 1): ..." — every cause, outermost first.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let said = e.to_string();
        // Some errors quote their cause in their own message already.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(err: ApiError) -> (u16, serde_json::Value) {
        let resp = err.into_response();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    /// The codes the coordinator matches on, with their statuses, as the agent answers them.
    #[tokio::test]
    async fn codes_the_coordinator_relies_on() {
        let cases = [
            (
                "instance absent",
                ApiError::Instance(InstanceError::NotFound("i-1".into())),
                404,
                "instance_not_found",
            ),
            (
                "device absent",
                ApiError::Device(DeviceError::NotFound {
                    kind: "USB device",
                    id: "1-2".into(),
                }),
                404,
                "device_not_found",
            ),
            (
                "device's instance absent",
                ApiError::Device(DeviceError::NotFound {
                    kind: "instance",
                    id: "i-1".into(),
                }),
                404,
                "instance_not_found",
            ),
            (
                "device held",
                ApiError::Device(DeviceError::Conflict("held".into())),
                409,
                "device_in_use",
            ),
            (
                "bad field",
                ApiError::Invalid("count must be positive".into()),
                400,
                "invalid_request",
            ),
            (
                "bmc",
                ApiError::Ipmi(IpmiError::BadCredentials("no".into())),
                502,
                "bmc_bad_credentials",
            ),
            ("ipmi off", ApiError::IpmiDisabled, 503, "ipmi_disabled"),
            ("no route", ApiError::RouteNotFound, 404, "route_not_found"),
        ];
        for (label, err, status, code) in cases {
            let message = err.message();
            let (got_status, body) = answer(err).await;
            assert_eq!(got_status, status, "{label}");
            assert_eq!(body["error"]["code"], code, "{label}");
            assert_eq!(body["error"]["message"], message.as_str(), "{label}");
        }
    }
}
