//! Maintenance drains and live migration (SPEC §2): the drain report, the dry-run plan, a
//! manual migration, and what the coordinator and the agents say to each other to move a
//! running domain.

use crate::api::OperationStatus;
use crate::host::HostState;
use crate::image::text_enum;
use crate::instance::InstanceState;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

text_enum!(
    /// What a drain does with an instance: live-migrate it (running), release it from the
    /// host (stopped: placed anew when next started), or leave it (a GPU/vGPU or USB device,
    /// or an intermediate state).
    MoveAction { Migrate => "migrate", Release => "release", Stay => "stay" }
);

text_enum!(
    /// Where one instance's move stands. `pending` waits for a slot (or a retry);
    /// `migrating` has its target's claim taken and the source agent migrating; `moved`,
    /// `released` and `stayed` are final.
    MoveStatus {
        Pending => "pending",
        Migrating => "migrating",
        Moved => "moved",
        Released => "released",
        Stayed => "stayed",
    }
);

impl MoveStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MoveStatus::Moved | MoveStatus::Released | MoveStatus::Stayed
        )
    }
}

/// Live numbers of a migration in flight, from libvirt's job stats on the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MigrationProgress {
    pub elapsed_ms: u64,
    pub data_total_bytes: u64,
    pub data_processed_bytes: u64,
    pub data_remaining_bytes: u64,
}

/// One instance in a drain (or a manual migration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MoveItem {
    pub instance_id: String,
    pub instance_name: String,
    pub action: MoveAction,
    pub status: MoveStatus,
    pub source_host: String,
    /// The target of the current or last attempt.
    pub target_host: Option<String>,
    pub attempts: u32,
    /// Why it stayed, or why the last attempt failed.
    pub reason: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// The target preparing its files (image, overlay, seed), before the migration's turn:
    /// it overlaps the migration ahead of it.
    pub prepare_ms: Option<u64>,
    /// libvirt's time for the migration that moved it: its migrate call from start to return
    /// on the source (connecting to the target, starting the guest there, the transfer, the
    /// switch-over).
    pub libvirt_ms: Option<u64>,
    /// The migration as the coordinator timed it: from its turn (files prepared) until it
    /// knew the instance moved; minus `libvirt_ms`, what plinth adds to a migration.
    pub total_ms: Option<u64>,
    /// While `migrating`, when the coordinator last asked the source agent.
    pub progress: Option<MigrationProgress>,
}

/// `GET /v1/hosts/{id}/maintenance`: the host's current or last drain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Drain {
    pub operation_id: String,
    pub host_id: String,
    pub host_state: HostState,
    pub status: OperationStatus,
    /// Migrations at once from this host.
    pub parallelism: u32,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub moved: u32,
    pub released: u32,
    pub stayed: u32,
    /// Still pending or migrating.
    pub left: u32,
    pub items: Vec<MoveItem>,
}

/// `POST /v1/hosts/{id}/maintenance/enter` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnterMaintenance {
    /// Migrations at once from this host (default: the coordinator's `drain_parallelism`).
    pub parallelism: Option<u32>,
}

/// One instance in a drain plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    pub instance_id: String,
    pub instance_name: String,
    pub state: InstanceState,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub action: MoveAction,
    /// Hosts of the cluster that could take it now (for `migrate`).
    pub suitable_targets: u32,
    /// Those hosts' ids, the one the plan places it on first (the drain itself picks one of
    /// them at random when its turn comes); empty for `release` and `stay`.
    pub targets: Vec<String>,
    /// Why it cannot move (a `stay`, or a `migrate` with no suitable target).
    pub blocked_by: Option<String>,
}

/// `GET /v1/hosts/{id}/maintenance/plan`: a dry run; nothing moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DrainPlan {
    pub host_id: String,
    pub host_state: HostState,
    pub cluster_id: String,
    pub items: Vec<PlanItem>,
    /// Whether the other hosts of the cluster have room for every instance to migrate at
    /// once (placed one after another, first fit by the scheduler's filters).
    pub fits: bool,
    pub to_migrate: u32,
    pub to_release: u32,
    pub blocked: u32,
}

/// `POST /v1/instances/{id}/migrate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateInstance {
    /// A host of the same cluster; the scheduler picks one when absent.
    pub target_host: Option<String>,
}

/// The agent API's `POST /v1/instances/{id}/prepare-migration` answer: where the target
/// made the instance's files (the source rewrites its domain's disk paths to these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentPrepared {
    pub disk_path: String,
    /// The cloud-init seed ISO.
    pub seed_path: String,
    /// The OS ISO from the target's cache, for an instance booted from one.
    pub iso_path: Option<String>,
}

/// The agent API's `POST /v1/instances/{id}/migrate`, to the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentMigrate {
    /// The target's libvirt URI (`qemu+tls://host/system`, tests `qemu+tcp://127.0.0.x:P/system`).
    pub dest_uri: String,
    /// Where QEMU sends the guest (`tcp://host`), when not the one libvirt picks.
    pub migrate_uri: Option<String>,
    pub prepared: AgentPrepared,
    /// The agent aborts the libvirt job after this long; the domain stays on the source.
    pub timeout_s: u64,
    /// A cap on the migration's bandwidth (libvirt's `bandwidth` parameter), MiB/s; none:
    /// libvirt's default (unlimited).
    #[serde(default)]
    pub bandwidth_mib_s: Option<u64>,
    /// Both hosts keep the disks on the same shared storage: they stay where they are
    /// (nothing is copied, and the source leaves its files).
    #[serde(default)]
    pub shared_storage: bool,
}

text_enum!(
    /// A migration as the source agent knows it.
    AgentMigrationState {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        None => "none",
    }
);

/// The agent API's `GET /v1/instances/{id}/migration` (and the migrate call's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentMigration {
    pub state: AgentMigrationState,
    pub progress: MigrationProgress,
    /// libvirt's time for the whole job once it ended: its migrate call from start to return
    /// (connecting to the target, starting the guest there, the transfer, the switch-over).
    /// `progress.elapsed_ms` then holds libvirt's own count for the transfer.
    pub libvirt_ms: Option<u64>,
    pub error: Option<String>,
}
