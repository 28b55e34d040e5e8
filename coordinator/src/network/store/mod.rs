//! The SQL of segments, EIPs and the NICs of bound EIPs.

pub mod eips;
pub mod nics;
pub mod segments;
