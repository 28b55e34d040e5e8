//! The plinth coordinator: admin and tenant API, store, and the CA agents enroll with.
//!
//! One folder per resource (hosts, instances, maintenance, images, baremetal, network,
//! devices, tenants), each with its operations (`mod.rs`), its API (`api`) and its SQL
//! (`store`); shared infrastructure apart: `http`, `db`, `agents`, `jobs`, `events`; `serve` and
//! `api` put them together.

pub mod agents;
pub mod api;
pub mod baremetal;
pub mod config;
pub mod db;
pub mod dev;
pub mod devices;
pub mod events;
pub mod hosts;
pub mod http;
pub mod images;
pub mod init;
pub mod instances;
pub mod jobs;
pub mod join;
pub mod maintenance;
pub mod metrics;
pub mod network;
pub mod own_certs;
pub mod paths;
pub mod resume;
pub mod scheduler;
pub mod secrets;
pub mod serve;
pub mod shutdown;
pub mod state;
pub mod tenants;
