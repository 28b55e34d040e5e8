//! Maintenance: drains (entering maintenance) and the live migrations they and admins start.

pub mod api;
pub mod drain;
pub mod store;
