//! Instances: placement, lifecycle actions on their host, export to an image.

pub mod api;
pub mod jobs;
pub mod store;
