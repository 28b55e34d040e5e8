//! Bare-metal servers through their BMCs: import, preparation, power and its sync, the serial
//! console.

pub mod api;
pub mod console;
pub mod prepare;
pub mod store;
pub mod sync;
