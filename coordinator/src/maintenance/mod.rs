//! Maintenance: drains (entering maintenance) and the live migrations they and admins start.

pub mod api;
pub mod drain;
pub mod migrate;
pub mod moves;
pub mod store;
pub mod verdict;

pub use moves::Moves;
