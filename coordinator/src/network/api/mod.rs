//! The API of external segments and the EIPs taken from them.

pub mod eips;
pub mod segments;
