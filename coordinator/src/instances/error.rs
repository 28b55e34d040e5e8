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
    /// The instance's agent failed `action` (`create`, `stop`, ...).
    pub fn agent(action: impl std::fmt::Display, e: &crate::agents::AgentError) -> JobError {
        JobError::Agent {
            action: action.to_string(),
            reason: e.explain(),
        }
    }
}
