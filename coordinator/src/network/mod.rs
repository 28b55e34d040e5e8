//! External segments and EIPs (SPEC §6) without I/O: what a valid segment is, and a segment as
//! a pool of addresses. The store (store/segments.rs, store/eips.rs) writes them; the API
//! (api/segments.rs, api/eips.rs) checks requests with them.

pub mod api;
pub mod store;

pub mod pool;
pub mod validate;
