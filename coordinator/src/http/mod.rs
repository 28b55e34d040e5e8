//! The HTTP layer every resource's API stands on: the one error mapping (and the
//! layer that makes every error answer JSON), the caller extractor, the WebSocket handshake
//! and request text rules; and the web console's files (console.rs), served beside the API.
//! Only the caller extractor (auth.rs) knows where callers come from: API tokens and sessions
//! (tenants) and agent certificates (hosts).

pub mod auth;
pub mod bad_input;
pub mod console;
pub mod error;
pub mod json_errors;
mod objects_only;
pub mod paging;
pub mod text;
pub mod ws;
