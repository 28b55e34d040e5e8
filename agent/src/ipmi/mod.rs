//! IPMI v2.0 over LAN (RMCP+), spoken natively on tokio UDP: the agent's way to its bare-metal
//! servers' BMCs. `client` keeps one session per BMC behind a lock; `session` holds the
//! protocol; the other files are commands and what their answers mean.

pub mod client;
pub mod commands;
pub mod core;
pub mod crypto;
pub mod fru;
pub mod power;
pub mod rmcp;
pub mod sdr;
pub mod sel;
pub mod sensors;
pub mod session;
pub mod sol;
pub mod sweep;

pub use client::{Ipmi, IpmiSettings};
pub use crypto::CipherSuite;
pub use session::{Session, Timing};

use std::net::SocketAddr;

/// The standard RMCP port a BMC listens on.
pub const IPMI_PORT: u16 = 623;

/// A BMC password: never printed, never serialised back out.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A BMC and the credentials to use with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub username: String,
    pub password: Password,
    /// Pinned cipher suite; `None` tries 17, then 3.
    pub suite: Option<CipherSuite>,
}

/// Why an IPMI operation failed, in words an operator acts on.
#[derive(Debug, thiserror::Error)]
pub enum IpmiError {
    #[error("the BMC at {addr} did not answer within {waited_ms} ms (unreachable, or not a BMC)")]
    NoResponse { addr: SocketAddr, waited_ms: u128 },
    #[error("the BMC rejected the credentials: {0}")]
    BadCredentials(String),
    #[error("the IPMI user's privilege is too low: {0}; plinth needs ADMINISTRATOR")]
    PrivilegeTooLow(String),
    #[error("the BMC has no free session slot ({0})")]
    NoSessionSlot(String),
    #[error("the BMC refused the session: {0}")]
    SessionRefused(String),
    #[error("{command} failed with completion code {code:#04x} ({})", completion_text(*code))]
    Completion { command: &'static str, code: u8 },
    #[error("the BMC sent a malformed answer to {command}: {detail}")]
    Malformed {
        command: &'static str,
        detail: String,
    },
    #[error("the BMC does not support {0}")]
    Unsupported(String),
    #[error(
        "the OS did not power off within {}s of a soft reboot's shutdown; reboot with hard, or force_off then on",
        waited.as_secs()
    )]
    SoftOffTimeout { waited: std::time::Duration },
    #[error("network error talking to the BMC")]
    Io(#[from] std::io::Error),
}

impl IpmiError {
    /// A short machine-readable kind for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            IpmiError::NoResponse { .. } => "bmc_unreachable",
            IpmiError::BadCredentials(_) => "bmc_bad_credentials",
            IpmiError::PrivilegeTooLow(_) => "bmc_privilege_too_low",
            IpmiError::NoSessionSlot(_) => "bmc_busy",
            IpmiError::SessionRefused(_) => "bmc_session_refused",
            IpmiError::Completion { .. } => "bmc_command_failed",
            IpmiError::Malformed { .. } => "bmc_malformed_answer",
            IpmiError::Unsupported(_) => "bmc_unsupported",
            IpmiError::SoftOffTimeout { .. } => "bmc_soft_off_timeout",
            IpmiError::Io(_) => "bmc_network_error",
        }
    }

    /// Whether a fresh session might succeed where a reused one failed.
    pub(crate) fn session_may_be_stale(&self) -> bool {
        matches!(
            self,
            IpmiError::NoResponse { .. } | IpmiError::Malformed { .. }
        ) || matches!(self, IpmiError::Completion { code, .. } if *code == 0xd4 || *code == 0xd5 || *code == 0xc1)
    }
}

/// IPMI's generic completion codes (IPMI v2.0 table 5-2).
pub fn completion_text(code: u8) -> &'static str {
    match code {
        0x00 => "ok",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc2 => "invalid for this LUN",
        0xc3 => "timeout while processing",
        0xc4 => "out of space",
        0xc5 => "reservation cancelled",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xca => "cannot return the number of requested bytes",
        0xcb => "requested sensor, data or record not present",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for this sensor or record type",
        0xce => "response could not be provided",
        0xcf => "duplicated request",
        0xd0 => "SDR repository in update mode",
        0xd1 => "firmware in update mode",
        0xd2 => "BMC initialisation in progress",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "not supported in the present state",
        0xd6 => "sub-function disabled",
        0xff => "unspecified error",
        _ => "command-specific error",
    }
}
