//! Why a host operation was refused, in the words an operator reads; [`From`] turns each into
//! the one `ApiError` (status and code), so the HTTP layer knows nothing of hosts.

use crate::db::StoreError;
use crate::hosts::store::TransitionError;
use crate::http::error::ApiError;
use crate::tenants::EnrollmentTokenStatus;
use crate::tenants::TenantError;
use plinth_common::host::{HostState, InvalidTransition};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("host {0} does not exist")]
    NotFound(String),
    /// The host is not in the state the event starts from (also after a lost race).
    #[error("host {id} is {}; {} needs {}", .err.from, .err.event, .err.needs)]
    Transition {
        id: String,
        #[source]
        err: InvalidTransition,
    },
    /// A field of the request is wrong; the message names what to change.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The enrollment token is not usable (`Valid` never makes this error).
    #[error("{}", token_message(.0))]
    Token(EnrollmentTokenStatus),
    /// The host a re-enrollment token was made for was removed meanwhile.
    #[error("the host this token re-enrolls ({0}) was removed")]
    ReenrolledHostRemoved(String),
    #[error(
        "address {ip} belongs to host {host}; a token enrolls a new host only. To give {host} a new certificate, use a token from `plinth hosts reenroll {host}`; to enroll another machine at this address, remove {host} first (`plinth hosts delete {host}`)"
    )]
    AddressHeld { ip: String, host: String },
    #[error("cluster {0} already exists")]
    ClusterExists(String),
    #[error("host {0} is entering maintenance; remove it once the drain has ended")]
    Draining(String),
    /// Jobs work on these instances (each shown as `id (state)`).
    #[error(
        "a job is working on instances of host {id}: {}; remove the host once they settle",
        instance_list(.instances)
    )]
    InstancesBusy { id: String, instances: Vec<String> },
    #[error(
        "host {id} has {} instance(s): {}; enter maintenance to move them, or remove it with force=true and a reason (they end in error)",
        .instances.len(),
        instance_list(.instances)
    )]
    HasInstances { id: String, instances: Vec<String> },
    /// The agent did not answer; `reason` is the short, loggable explanation.
    #[error("the agent of host {id} did not answer: {reason}")]
    AgentUnreachable { id: String, reason: String },
    #[error("Prometheus did not answer: {0}")]
    PrometheusUnavailable(String),
    /// Making a token (re-enrollment) failed.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl HostError {
    /// A failed state change of host `id`, as the store reported it.
    pub fn transition(id: &str, err: TransitionError) -> HostError {
        match err {
            TransitionError::NotFound => HostError::NotFound(id.to_string()),
            TransitionError::Invalid(err) => HostError::Transition {
                id: id.to_string(),
                err,
            },
            TransitionError::Store(s) => HostError::Store(s),
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> HostError {
        HostError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// At most five instance ids, then how many more.
pub(crate) fn instance_list(ids: &[String]) -> String {
    let mut text = ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 5 {
        text.push_str(&format!(" and {} more", ids.len() - 5));
    }
    text
}

fn token_code(status: &EnrollmentTokenStatus) -> &'static str {
    match status {
        EnrollmentTokenStatus::Used => "enrollment_token_used",
        EnrollmentTokenStatus::Expired => "enrollment_token_expired",
        EnrollmentTokenStatus::Invalid | EnrollmentTokenStatus::Valid { .. } => {
            "invalid_enrollment_token"
        }
    }
}

fn token_message(status: &EnrollmentTokenStatus) -> &'static str {
    match status {
        EnrollmentTokenStatus::Used => "the enrollment token was already used; create a new one",
        EnrollmentTokenStatus::Expired => "the enrollment token expired; create a new one",
        EnrollmentTokenStatus::Invalid | EnrollmentTokenStatus::Valid { .. } => {
            "the enrollment token is not valid"
        }
    }
}

/// The code of a 409 for a host that is not in `needs`.
fn not_in_state(needs: HostState) -> &'static str {
    match needs {
        HostState::Available => "host_not_available",
        HostState::Locked => "host_not_locked",
        HostState::EnteringMaintenance => "host_not_entering_maintenance",
        HostState::Maintenance => "host_not_maintenance",
    }
}

impl From<HostError> for ApiError {
    fn from(err: HostError) -> ApiError {
        let message = err.to_string();
        match err {
            HostError::NotFound(id) => ApiError::not_found("host", &id),
            HostError::Transition { err: t, .. } => ApiError::Conflict {
                code: not_in_state(t.needs),
                message,
            },
            HostError::Invalid { field, message } => ApiError::field(field, message),
            HostError::Token(status) => ApiError::Unauthorized {
                code: token_code(&status),
                message,
            },
            HostError::ReenrolledHostRemoved(_) => ApiError::Unauthorized {
                code: "invalid_enrollment_token",
                message,
            },
            HostError::AddressHeld { .. } => ApiError::Conflict {
                code: "address_in_use",
                message,
            },
            HostError::ClusterExists(_) => ApiError::Conflict {
                code: "cluster_exists",
                message,
            },
            HostError::Draining(_) => ApiError::Conflict {
                code: "host_draining",
                message,
            },
            HostError::InstancesBusy { .. } => ApiError::Conflict {
                code: "host_instances_busy",
                message,
            },
            HostError::HasInstances { .. } => ApiError::Conflict {
                code: "host_has_instances",
                message,
            },
            HostError::AgentUnreachable { .. } => ApiError::Unavailable {
                code: "agent_unreachable",
                message,
            },
            HostError::PrometheusUnavailable(_) => ApiError::Unavailable {
                code: "prometheus_unavailable",
                message,
            },
            HostError::Tenant(e) => e.into(),
            HostError::Store(e) => e.into(),
            HostError::Internal(e) => ApiError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::host::HostEvent;

    #[test]
    fn a_refused_transition_names_both_states() {
        let err = HostState::Available
            .transition(HostEvent::Unlock)
            .map_err(|err| HostError::Transition {
                id: "host-00aa".into(),
                err,
            });
        let Err(err) = err else {
            panic!("unlocking an available host was allowed");
        };
        let (status, detail) = ApiError::from(err).detail();
        assert_eq!(status.as_u16(), 409);
        assert_eq!(detail.code, "host_not_locked");
        assert_eq!(
            detail.message,
            "host host-00aa is available; unlock needs locked"
        );
    }

    #[test]
    fn every_state_has_its_conflict_code() {
        for state in HostState::ALL {
            assert_eq!(not_in_state(state), format!("host_not_{state}"));
        }
    }
}
