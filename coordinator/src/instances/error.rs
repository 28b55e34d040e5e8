//! What an instance operation can refuse, and how each refusal reads to a client: a
//! `thiserror` enum the operations in `instances` answer, mapped once onto the one `ApiError`.

use crate::db::StoreError;
use crate::http::error::ApiError;
use crate::instances::placement::PlacementError;
use crate::instances::store::QuotaExceeded;
use plinth_common::instance::InstanceState;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Unknown, or not the caller's (tenants learn nothing of others' instances).
    #[error("instance {0} does not exist")]
    NotFound(String),
    /// The instance is in a state the operation cannot start from.
    #[error("instance {id} is {state}; {what}")]
    WrongState {
        id: String,
        state: InstanceState,
        what: String,
    },
    /// Only a running or stopped instance on a host has a disk to export.
    #[error(
        "instance {id} is {state}{}; only a running or stopped instance on a host can be exported",
        if *.unplaced { " and unplaced" } else { "" }
    )]
    NotExportable {
        id: String,
        state: InstanceState,
        unplaced: bool,
    },
    /// The instance moved from the state it was read in before the change landed.
    #[error("instance {id} went from {from} to {now} meanwhile; {to} needs {from}")]
    Conflict {
        id: String,
        from: InstanceState,
        to: InstanceState,
        now: InstanceState,
    },
    #[error("{0}")]
    Quota(QuotaExceeded),
    /// No host can take the instance; the scheduler's account of why.
    #[error("{0}")]
    NoHost(String),
    /// The instance changed while a host was being claimed for it.
    #[error("the instance changed meanwhile")]
    Changed,
    /// One of `eips` cannot be bound to the new instance.
    #[error("{0}")]
    Eip(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<PlacementError> for InstanceError {
    fn from(e: PlacementError) -> Self {
        match e {
            PlacementError::NoHost(why) => InstanceError::NoHost(why),
            PlacementError::PinnedFull(_) => InstanceError::NoHost(e.to_string()),
            PlacementError::AllFull => {
                InstanceError::NoHost("every host tried filled up meanwhile; try again".into())
            }
            PlacementError::Moved => InstanceError::Changed,
            PlacementError::EipTaken(eip) => {
                InstanceError::Eip(format!("EIP {eip} was bound or released meanwhile"))
            }
            PlacementError::Quota(q) => InstanceError::Quota(q),
            PlacementError::Store(e) => InstanceError::Store(e),
        }
    }
}

impl From<InstanceError> for ApiError {
    fn from(e: InstanceError) -> Self {
        let conflict = |code, e: &InstanceError| ApiError::Conflict {
            code,
            message: e.to_string(),
        };
        match e {
            InstanceError::NotFound(id) => ApiError::not_found("instance", &id),
            InstanceError::WrongState { .. }
            | InstanceError::Conflict { .. }
            | InstanceError::NotExportable { .. }
            | InstanceError::Changed => conflict("invalid_instance_state", &e),
            InstanceError::Quota(_) => conflict("quota_exceeded", &e),
            InstanceError::NoHost(_) => conflict("no_suitable_host", &e),
            InstanceError::Eip(message) => ApiError::field("eips", message),
            InstanceError::Store(e) => e.into(),
            InstanceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// Why a step of an instance job (or of a migration preparing its target) failed, worded for
/// the instance's `state_reason` or a move's reason, which tenants and admins read: the
/// store's and the secrets' own errors are logged, not shown.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the store could not be read")]
    Store(#[from] StoreError),
    #[error("the instance was removed")]
    Removed,
    #[error("the instance is not placed on a host")]
    NotPlaced,
    #[error("host {0} no longer exists")]
    HostGone(String),
    #[error("the instance has no image")]
    NoImage,
    #[error("image {0} no longer exists")]
    ImageGone(String),
    #[error("image {0} has no verified content")]
    ImageUnverified(String),
    #[error("the admin password is no longer stored")]
    NoPassword,
    #[error("the sealed admin password cannot be opened")]
    Unseal(#[source] anyhow::Error),
    /// The instance's agent refused or failed; what it said.
    #[error("the agent could not {action} it: {reason}")]
    Agent { action: String, reason: String },
    /// Another host's agent (a migration's target) refused or failed; what it said.
    #[error("host {host} could not {action} it: {reason}")]
    Host {
        host: String,
        action: &'static str,
        reason: String,
    },
    #[error("host {0}'s agent reports no migration URI")]
    NoMigrationUri(String),
}

impl JobError {
    /// The instance's agent failed `action` (`create`, `stop`, ...). Where the agent's own
    /// words may carry a host's paths or a tool's output (libvirt's, qemu-img's), the reason
    /// says what failed in plain words and the coordinator's log keeps the agent's words.
    pub fn agent(action: impl std::fmt::Display, e: &crate::agents::AgentError) -> JobError {
        let action = action.to_string();
        let reason = match e.code().and_then(host_side) {
            Some(what) => {
                tracing::warn!(action = %action, error = %e.explain(), "An agent failed an instance's step.");
                format!("{what} failed on its host; the coordinator's log has the details")
            }
            None => e.explain(),
        };
        JobError::Agent { action, reason }
    }
}

/// What failed, for an agent's error code whose message may carry a host's paths or a tool's
/// output; `None` for codes whose message is worded for people.
fn host_side(code: &str) -> Option<&'static str> {
    Some(match code {
        "libvirt_failed" | "libvirt_timeout" => "the hypervisor (libvirt)",
        "disk_failed" => "making its disk",
        "seed_failed" => "building its cloud-init seed",
        "network_failed" => "setting up its network",
        "export_failed" => "exporting its disk",
        "devices_failed" | "sysfs_failed" => "setting up its devices",
        "io_failed" | "internal" => "a file operation",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::AgentError;

    fn refused(status: u16, code: &str, message: &str) -> AgentError {
        AgentError::Refused {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_host_side_failure_is_worded_without_the_tools_words() {
        let e = refused(
            500,
            "libvirt_failed",
            "starting the domain: internal error: process exited: /var/lib/plinth-agent/instances/i-1/disk.qcow2: Permission denied",
        );
        let text = JobError::agent("create", &e).to_string();
        assert_eq!(
            text,
            "the agent could not create it: the hypervisor (libvirt) failed on its host; the coordinator's log has the details"
        );
        let e = refused(
            502,
            "image_fetch_failed",
            "fetching image img-1: sha256 mismatch",
        );
        assert!(
            JobError::agent("create", &e)
                .to_string()
                .ends_with("sha256 mismatch"),
            "words meant for people pass"
        );
        let e = refused(
            409,
            "nic_unavailable",
            "this host has no NIC eth9, which the instance's EIP segment is reached through",
        );
        assert!(
            JobError::agent("start", &e)
                .to_string()
                .contains("no NIC eth9")
        );
    }
}
