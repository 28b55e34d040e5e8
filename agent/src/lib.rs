//! The plinth host agent: enrolls with the coordinator, reports its host, and serves the mTLS
//! API only the coordinator may call.

pub mod api;
pub mod config;
pub mod coordinators;
pub mod devices;
pub mod enroll;
pub mod facts;
pub mod fence;
pub mod heartbeat;
pub mod identity;
pub mod instances;
pub mod ipmi;
pub mod libvirt;
pub mod metrics;
pub mod network;
pub mod redfish;
pub mod renew;
pub mod runtime;
