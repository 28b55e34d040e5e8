//! Free text in requests (names, notes, descriptions, labels) under the one rule of
//! `plinth_common::text`; a refusal names the field.

use crate::http::error::{ApiError, ApiResult};
use plinth_common::text::{MAX_URL_BYTES, TextKind, check};

pub use plinth_common::text::{NAME, NOTE};

/// The trimmed text, or a 400 naming `field`.
pub fn text(field: &'static str, kind: TextKind, value: &str) -> ApiResult<String> {
    check(kind, value)
        .map(str::to_string)
        .map_err(|m| ApiError::field(field, m))
}

/// A URL no longer than plinth stores, or a 400 naming `field`.
pub fn url_length(field: &'static str, value: &str) -> ApiResult<()> {
    if value.len() > MAX_URL_BYTES {
        return Err(ApiError::field(
            field,
            format!(
                "must be at most {MAX_URL_BYTES} bytes (got {})",
                value.len()
            ),
        ));
    }
    Ok(())
}
