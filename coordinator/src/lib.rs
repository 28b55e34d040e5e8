//! The plinth coordinator: admin and tenant API, store, and the CA agents enroll with.

pub mod agents;
pub mod api;
pub mod auth;
pub mod config;
pub mod dev;
pub mod error;
pub mod images;
pub mod init;
pub mod jobs;
pub mod metrics;
pub mod own_certs;
pub mod paths;
pub mod presence;
pub mod prometheus;
pub mod scheduler;
pub mod secrets;
pub mod segments;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
