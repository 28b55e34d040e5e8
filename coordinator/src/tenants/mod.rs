//! Tenants, their quotas, API tokens and the audit log.

pub mod api;
pub mod store;
