//! This host's side of plinth's networks: the Linux bridges through which guests reach
//! external segments (bridges.rs), managed over netlink.

pub mod bridges;
pub mod filter;
pub mod host;
