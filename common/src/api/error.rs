//! The one error body every plinth API returns: `{"error":{"code":"...","message":"..."}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `host_not_locked`, `invalid_field`.
    pub code: String,
    /// A sentence for a person; names the field or the states involved.
    pub message: String,
    /// With `invalid_field`: the field's JSON path in the request (`gateway`,
    /// `devices.usb[0]`), so a form can show the message next to that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
