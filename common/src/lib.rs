//! Types shared by the plinth coordinator, agents and CLI: API bodies, ids, state machines, and
//! the TLS plumbing (CA, role-carrying certificates, mTLS serving) both daemons use.

pub mod api;
pub mod baremetal;
pub mod dhcp;
pub mod exposition;
pub mod fsutil;
pub mod host;
pub mod ids;
pub mod image;
pub mod instance;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod serve;
pub mod text;
pub mod timefmt;
pub mod tls;
