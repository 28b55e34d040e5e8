//! The SQL of segments and EIPs.

pub mod eips;
pub mod segments;
