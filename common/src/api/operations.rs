//! Operations (`GET /v1/operations`, `GET /v1/operations/{id}`): every long action — image
//! imports, uploads, copies and exports, instance create/start/stop/reboot/delete/migrate,
//! host drains, bare-metal preparation and power actions — is one, with its status, its
//! progress and the timestamped steps it went through.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Running,
    Succeeded,
    Failed,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Running => "running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<OperationStatus> {
        match text {
            "running" => Some(OperationStatus::Running),
            "succeeded" => Some(OperationStatus::Succeeded),
            "failed" => Some(OperationStatus::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Long-running work. Progress comes in two forms, either or both of which an operation
/// fills: bytes (`progress_bytes` of `total_bytes`, for transfers: imports, uploads, copies,
/// exports) and items (`items_done` of `items_total`, for work made of parts: a drain's
/// moves). A UI draws a bar from whichever pair has a total, and the steps as a timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub id: String,
    /// One of `plinth_common::api::operation_kinds`: `image_import`, `image_upload`,
    /// `image_copy`, `image_export`, `instance_create`, `instance_start`, `instance_stop`,
    /// `instance_reboot`, `instance_delete`, `instance_migrate`, `host_drain`,
    /// `baremetal_prepare`, `baremetal_power`.
    pub kind: String,
    /// The resource it works on (an image, instance, host or bare-metal server id).
    pub target_id: String,
    /// The tenant the operation belongs to; `null` for an admin's own work (a drain).
    #[serde(default)]
    pub owner_tenant_id: Option<String>,
    pub status: OperationStatus,
    /// Bytes moved so far (transfers); 0 for work not counted in bytes.
    pub progress_bytes: u64,
    /// Bytes to move, once known.
    pub total_bytes: Option<u64>,
    /// Parts done so far (a drain: moves ended, moved or left behind); `null` when the work
    /// is not counted in parts.
    #[serde(default)]
    pub items_done: Option<u64>,
    /// Parts in all (a drain: the instances it moves or leaves).
    #[serde(default)]
    pub items_total: Option<u64>,
    /// Why it failed, in plain words.
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// When it ended (succeeded or failed); `null` while running.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// What it did, oldest first: only in `GET /v1/operations/{id}` (and the 202 answers
    /// that return an operation), absent in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<OperationStep>>,
}

/// One thing an operation did, when it did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperationStep {
    pub at: String,
    /// What happened, in words an operator reads ("placed on host host-4f2a").
    pub message: String,
}

/// A page of operations, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperationPage {
    pub items: Vec<Operation>,
    /// How many operations match the filters in all.
    pub total: u64,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}
