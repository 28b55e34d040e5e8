//! What a bare-metal operation can fail with, and how each failure is answered. A tenant reads
//! these messages: they name the server, its states and the BMC's own refusal, never an
//! agent's address, a file path or a tool's output (those go to the log).

use crate::db::StoreError;
use crate::http::error::ApiError;
use plinth_common::baremetal::{BaremetalState, InvalidBaremetalTransition};

/// A BMC address an add asked for and a server manages: `server` is that server's id where
/// the caller may see it (an admin, or the tenant that owns it), else `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenBmc {
    pub ipmi_ip: String,
    pub server: Option<String>,
}

/// "the BMC at 10.0.0.1 is managed already by bare-metal server bm-…; delete that server
/// first", one clause per address.
fn taken_list(taken: &[TakenBmc]) -> String {
    let clauses: Vec<String> = taken
        .iter()
        .map(|t| match &t.server {
            Some(id) => format!(
                "the BMC at {} is managed already by bare-metal server {id}; delete that server first",
                t.ipmi_ip
            ),
            None => format!(
                "the BMC at {} is managed already, by a server of another tenant",
                t.ipmi_ip
            ),
        })
        .collect();
    clauses.join("; ")
}

/// Said when no online agent can reach a server's BMC.
pub const NO_AGENT: &str =
    "no online agent speaks IPMI (agent config ipmi = true) to reach this server's BMC";

#[derive(Debug, thiserror::Error)]
pub enum BaremetalError {
    /// A field of the request is wrong; the message says how.
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("baremetal {0} does not exist")]
    NotFound(String),
    #[error("tenant {0} does not exist")]
    TenantNotFound(String),
    /// The server's state does not allow the operation (the table says which it needs).
    #[error("bare-metal server {id} is {}; {what} needs {}", .err.from, .err.needs)]
    NotAllowed {
        id: String,
        what: &'static str,
        #[source]
        err: InvalidBaremetalTransition,
    },
    /// The row kept moving under the compare-and-swap; the caller may try again.
    #[error(
        "bare-metal server {id}'s {what} changed while this request ran (it read {from}, and was \
         to become {to}); try again"
    )]
    Moved {
        id: String,
        what: &'static str,
        from: &'static str,
        to: &'static str,
    },
    /// Each address with the server that manages it, where the caller may see that server.
    #[error("{}", taken_list(.0))]
    BmcTaken(Vec<TakenBmc>),
    #[error("{NO_AGENT}")]
    NoAgent,
    /// A power action is running for the server: one at a time.
    #[error("bare-metal server {id} has a power action running already: operation {operation}")]
    PowerBusy { id: String, operation: String },
    /// The agent reached (or tried) the BMC, which failed or refused: its words.
    #[error("{0}")]
    Bmc(String),
    /// The agent in charge of the server did not answer; the cause is in the log.
    #[error("the agent that reaches this server's BMC could not be asked; try again")]
    AgentUnreachable,
    #[error("the request names no host")]
    NoHost,
    #[error("console URL (unknown, used or expired) does not exist")]
    UnknownConsole,
    #[error("store")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type BaremetalResult<T> = Result<T, BaremetalError>;

impl BaremetalError {
    /// The refusal of an add whose BMC addresses `holders` manage, naming each holder to a
    /// caller who may see it.
    pub fn bmc_taken(
        caller: &crate::http::auth::Caller,
        holders: Vec<crate::baremetal::store::BmcHolder>,
    ) -> BaremetalError {
        let taken = holders
            .into_iter()
            .map(|h| TakenBmc {
                server: caller
                    .tenant_id()
                    .is_none_or(|own| own == h.tenant_id)
                    .then_some(h.server_id),
                ipmi_ip: h.ipmi_ip,
            })
            .collect();
        BaremetalError::BmcTaken(taken)
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> BaremetalError {
        BaremetalError::Field {
            field,
            message: message.into(),
        }
    }
}

/// The 409 code of an operation the server's state does not allow.
fn not_allowed_code(needs: BaremetalState) -> &'static str {
    match needs {
        BaremetalState::Preparing => "baremetal_not_preparing",
        BaremetalState::Running => "baremetal_not_running",
        BaremetalState::Failed => "baremetal_not_failed",
    }
}

impl From<BaremetalError> for ApiError {
    fn from(err: BaremetalError) -> ApiError {
        let message = err.to_string();
        match err {
            BaremetalError::Field { field, message } => ApiError::field(field, message),
            BaremetalError::Forbidden(m) => ApiError::Forbidden(m),
            BaremetalError::NotFound(id) => ApiError::not_found("baremetal", &id),
            BaremetalError::TenantNotFound(id) => ApiError::not_found("tenant", &id),
            BaremetalError::NotAllowed { err, .. } => ApiError::Conflict {
                code: not_allowed_code(err.needs),
                message,
            },
            BaremetalError::Moved { .. } => ApiError::Conflict {
                code: "baremetal_changed",
                message,
            },
            BaremetalError::BmcTaken(_) => ApiError::Conflict {
                code: "bmc_already_managed",
                message,
            },
            BaremetalError::PowerBusy { .. } => ApiError::Conflict {
                code: "power_action_running",
                message,
            },
            BaremetalError::NoAgent => ApiError::Unavailable {
                code: "no_ipmi_agent",
                message,
            },
            BaremetalError::Bmc(message) => ApiError::Upstream {
                code: "bmc_failed",
                message,
            },
            BaremetalError::AgentUnreachable => ApiError::Unavailable {
                code: "agent_unreachable",
                message,
            },
            BaremetalError::NoHost => ApiError::Malformed(message),
            BaremetalError::UnknownConsole => {
                ApiError::not_found_as("console_url", "console URL", "(unknown, used or expired)")
            }
            BaremetalError::Store(e) => e.into(),
            BaremetalError::Internal(e) => ApiError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use plinth_common::baremetal::BaremetalEvent;

    #[test]
    fn each_failure_has_its_status_code_and_words() {
        let not_running = BaremetalState::Failed
            .transition(BaremetalEvent::Operate)
            .expect_err("failed does not operate");
        let cases = [
            (
                "not running",
                BaremetalError::NotAllowed {
                    id: "bm-1".into(),
                    what: "a power action",
                    err: not_running,
                },
                StatusCode::CONFLICT,
                "baremetal_not_running",
                "bare-metal server bm-1 is failed; a power action needs running",
            ),
            (
                "moved",
                BaremetalError::Moved {
                    id: "bm-1".into(),
                    what: "console",
                    from: "inactive",
                    to: "active",
                },
                StatusCode::CONFLICT,
                "baremetal_changed",
                "bare-metal server bm-1's console changed while this request ran (it read \
                 inactive, and was to become active); try again",
            ),
            (
                "taken",
                BaremetalError::BmcTaken(vec![TakenBmc {
                    ipmi_ip: "10.0.0.1".into(),
                    server: Some("bm-1".into()),
                }]),
                StatusCode::CONFLICT,
                "bmc_already_managed",
                "the BMC at 10.0.0.1 is managed already by bare-metal server bm-1; delete that \
                 server first",
            ),
            (
                "taken by another tenant's server",
                BaremetalError::BmcTaken(vec![
                    TakenBmc {
                        ipmi_ip: "10.0.0.1".into(),
                        server: None,
                    },
                    TakenBmc {
                        ipmi_ip: "10.0.0.2".into(),
                        server: Some("bm-2".into()),
                    },
                ]),
                StatusCode::CONFLICT,
                "bmc_already_managed",
                "the BMC at 10.0.0.1 is managed already, by a server of another tenant; the BMC \
                 at 10.0.0.2 is managed already by bare-metal server bm-2; delete that server \
                 first",
            ),
            (
                "missing",
                BaremetalError::NotFound("bm-1".into()),
                StatusCode::NOT_FOUND,
                "baremetal_not_found",
                "baremetal bm-1 does not exist",
            ),
            (
                "busy",
                BaremetalError::PowerBusy {
                    id: "bm-1".into(),
                    operation: "op-1".into(),
                },
                StatusCode::CONFLICT,
                "power_action_running",
                "bare-metal server bm-1 has a power action running already: operation op-1",
            ),
            (
                "no agent",
                BaremetalError::NoAgent,
                StatusCode::SERVICE_UNAVAILABLE,
                "no_ipmi_agent",
                NO_AGENT,
            ),
            (
                "bmc",
                BaremetalError::Bmc("the BMC rejected the credentials".into()),
                StatusCode::BAD_GATEWAY,
                "bmc_failed",
                "the BMC rejected the credentials",
            ),
            (
                "agent down",
                BaremetalError::AgentUnreachable,
                StatusCode::SERVICE_UNAVAILABLE,
                "agent_unreachable",
                "the agent that reaches this server's BMC could not be asked; try again",
            ),
            (
                "field",
                BaremetalError::field("ipmi_ip", "is required"),
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "ipmi_ip: is required",
            ),
        ];
        for (label, err, status, code, message) in cases {
            let (got_status, detail) = ApiError::from(err).detail();
            assert_eq!(
                (got_status, detail.code.as_str(), detail.message.as_str()),
                (status, code, message),
                "{label}"
            );
        }
    }
}
