//! Host devices: USB passthrough, GPUs and their vGPU slices.

pub mod api;
pub mod store;
