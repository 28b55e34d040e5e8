//! What a maintenance operation (enter, plan, a manual migration) can refuse, and how each
//! refusal reads to an admin: mapped once onto the one `ApiError`.

use crate::db::StoreError;
use crate::hosts::store::TransitionError;
use crate::http::error::ApiError;
use plinth_common::host::InvalidTransition;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("host {0} does not exist")]
    HostNotFound(String),
    #[error("instance {0} does not exist")]
    InstanceNotFound(String),
    #[error("drain of host {0} does not exist")]
    NoDrain(String),
    #[error("migration of instance {0} does not exist")]
    NoMigration(String),
    /// The host's state table refuses the change (both states are named).
    #[error("host {id} is {}; {} needs {}", .err.from, .err.event, .err.needs)]
    Host {
        id: String,
        #[source]
        err: InvalidTransition,
    },
    /// The named target cannot be one: it is the source, unknown, or in another cluster.
    #[error("target_host: {0}")]
    Target(String),
    #[error("instance {0} is not placed on a host")]
    NotPlaced(String),
    #[error("instance {id} cannot be live-migrated: {why}")]
    NotMigratable { id: String, why: String },
    /// No host can take the instance now; the reason is the move's.
    #[error("{0}")]
    NoHost(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MaintenanceError {
    /// A host transition that failed, for host `id`.
    pub fn host(id: &str, e: TransitionError) -> MaintenanceError {
        match e {
            TransitionError::NotFound => MaintenanceError::HostNotFound(id.to_string()),
            TransitionError::Invalid(err) => MaintenanceError::Host {
                id: id.to_string(),
                err,
            },
            TransitionError::Store(e) => MaintenanceError::Store(e),
        }
    }
}

impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> Self {
        let conflict = |code, e: &MaintenanceError| ApiError::Conflict {
            code,
            message: e.to_string(),
        };
        match e {
            MaintenanceError::HostNotFound(id) => ApiError::not_found("host", &id),
            MaintenanceError::InstanceNotFound(id) => ApiError::not_found("instance", &id),
            MaintenanceError::NoDrain(id) => ApiError::not_found_as("drain", "drain of host", &id),
            MaintenanceError::NoMigration(id) => {
                ApiError::not_found_as("migration", "migration of instance", &id)
            }
            MaintenanceError::Host { id, err } => {
                crate::hosts::HostError::Transition { id, err }.into()
            }
            MaintenanceError::Target(message) => ApiError::field("target_host", message),
            MaintenanceError::NotPlaced(_) | MaintenanceError::NotMigratable { .. } => {
                conflict("invalid_instance_state", &e)
            }
            MaintenanceError::NoHost(_) => conflict("no_suitable_host", &e),
            MaintenanceError::Store(e) => e.into(),
        }
    }
}
