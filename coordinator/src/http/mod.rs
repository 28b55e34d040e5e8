//! The HTTP layer every resource's API stands on: the server, the one error mapping (and the
//! layer that makes every error answer JSON), the caller extractor, the WebSocket handshake
//! and request text rules. It names no resource.

pub mod auth;
pub mod bad_input;
pub mod error;
pub mod json_errors;
pub mod server;
pub mod text;
pub mod ws;
