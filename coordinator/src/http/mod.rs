//! The HTTP layer every resource's API stands on: the server, the one error mapping, the
//! caller extractor and request text rules. It names no resource.

pub mod auth;
pub mod error;
pub mod server;
pub mod text;
