//! This host's side of plinth's networks: the Linux bridges through which guests reach
//! external segments (bridges.rs), managed over netlink; the filters on guests' NICs
//! (filter.rs); DHCP and DHCPv6 for guests' NICs (dhcp.rs).

pub mod bridges;
pub mod dhcp;
pub mod filter;
pub mod host;
