//! Why a tenant, quota or token operation was refused; [`From`] turns each into the one
//! `ApiError` (status and code).

use crate::db::StoreError;
use crate::http::error::ApiError;

/// A TTL as an operator typed it that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// Not a duration at all; the message says how one is written.
    #[error("{0}")]
    Unreadable(String),
    #[error("must be longer than zero")]
    Zero,
    #[error("'{ttl}' is longer than the maximum, {max}")]
    OverMax { ttl: String, max: String },
    /// Past the end of time as the store counts it.
    #[error("'{0}' is too long")]
    TooLong(String),
    #[error("is too long")]
    Overflow,
    #[error("is out of range")]
    OutOfRange,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// A field of the request is wrong; the message names what to change.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("ttl: {0}")]
    Ttl(#[from] TtlError),
    #[error("tenant {0} does not exist")]
    NotFound(String),
    /// `holder`: the tenant that has the email (`None` if it went meanwhile).
    #[error("a tenant with email {email} already exists{}", .holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    EmailTaken {
        email: String,
        holder: Option<String>,
    },
    #[error("token {0} does not exist")]
    TokenNotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<TtlError> for ApiError {
    fn from(err: TtlError) -> ApiError {
        ApiError::field("ttl", err.to_string())
    }
}

impl From<TenantError> for ApiError {
    fn from(err: TenantError) -> ApiError {
        match err {
            TenantError::Invalid { field, message } => ApiError::field(field, message),
            TenantError::Ttl(e) => e.into(),
            TenantError::NotFound(id) => ApiError::not_found("tenant", &id),
            e @ TenantError::EmailTaken { .. } => ApiError::Conflict {
                code: "tenant_exists",
                message: e.to_string(),
            },
            TenantError::TokenNotFound(id) => ApiError::not_found("token", &id),
            TenantError::Store(e) => e.into(),
            TenantError::Internal(e) => ApiError::Internal(e),
        }
    }
}
