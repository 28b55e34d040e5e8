//! Compute hosts: enrollment and identity, the lock and maintenance states, presence, facts
//! and metrics history.

pub mod api;
pub mod presence;
pub mod prometheus;
pub mod store;
