//! The one place an error becomes an HTTP status and a JSON body. Clients see a code and a
//! sentence; internal causes (SQL, I/O) are logged here and never sent.

use crate::db::StoreError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plinth_common::api::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the request is wrong; the message names it.
    #[error("{field}: {message}")]
    InvalidField {
        field: std::borrow::Cow<'static, str>,
        message: String,
    },
    /// The body or query could not be read as the endpoint's type.
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{code}: {message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    /// A 403 with its own code (`csrf_header_missing`), so a client can tell what to fix.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// `kind` makes the code (`{kind}_not_found`, snake case: `console_url`); `what` is the
    /// same thing in words for the message ("console URL").
    #[error("{what} {id} does not exist")]
    NotFound {
        kind: &'static str,
        what: &'static str,
        id: String,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// A device the platform drives (a BMC) failed or refused; the message is its reason.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// A WebSocket path asked without the WebSocket handshake.
    #[error("{0}")]
    UpgradeRequired(String),
    /// The request body is longer than the endpoint reads.
    #[error("the request body is over the limit of {} MiB ({limit} bytes)", limit / (1 << 20))]
    BodyTooLarge { limit: usize },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `{kind} {id} does not exist`, code `{kind}_not_found`: `kind` is one word or snake case
    /// (`host`, `usb_device`).
    pub fn not_found(kind: &'static str, id: &str) -> ApiError {
        ApiError::not_found_as(kind, kind, id)
    }

    /// As [`ApiError::not_found`], with the message naming the thing in other words than
    /// the code: `not_found_as("drain", "drain of host", id)` is `drain_not_found`,
    /// "drain of host … does not exist".
    pub fn not_found_as(kind: &'static str, what: &'static str, id: &str) -> ApiError {
        debug_assert!(
            is_code(kind),
            "not-found kind {kind:?} must be snake case (a-z, 0-9, _)"
        );
        ApiError::NotFound {
            kind,
            what,
            id: id.to_string(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, String) {
        match self {
            ApiError::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_field".into()),
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request".into()),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated".into()),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, (*code).into()),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden".into()),
            ApiError::Refused { code, .. } => (StatusCode::FORBIDDEN, (*code).into()),
            ApiError::NotFound { kind, .. } => (
                StatusCode::NOT_FOUND,
                format!("{}_not_found", code_word(kind)),
            ),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, (*code).into()),
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, (*code).into()),
            ApiError::Gone { code, .. } => (StatusCode::GONE, (*code).into()),
            ApiError::Upstream { code, .. } => (StatusCode::BAD_GATEWAY, (*code).into()),
            ApiError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
            }
            ApiError::RangeNotSatisfiable(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable".into(),
            ),
            ApiError::UpgradeRequired(_) => {
                (StatusCode::UPGRADE_REQUIRED, "upgrade_required".into())
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal".into()),
        }
    }
}

/// A code clients match on: `^[a-z][a-z0-9_]*$`.
pub fn is_code(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `kind` as a code word whatever it holds (the guard behind the `debug_assert` in
/// [`ApiError::not_found_as`]): lower case, every run of other characters one `_`
/// ("console URL" is `console_url`), `unknown` when nothing is left.
fn code_word(kind: &str) -> String {
    if is_code(kind) {
        return kind.to_string();
    }
    let words: Vec<String> = kind
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let word = words.join("_");
    if is_code(&word) {
        word
    } else {
        format!("unknown_{word}").trim_end_matches('_').to_string()
    }
}

impl ApiError {
    /// The status and body this error is sent as (batch results embed the body).
    pub fn detail(&self) -> (StatusCode, ErrorDetail) {
        let (status, code) = self.status_and_code();
        let message = match self {
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "Request failed.");
                "internal error; the coordinator log has the cause".to_string()
            }
            ApiError::Unauthorized { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let field = match self {
            ApiError::InvalidField { field, .. } => Some(field.to_string()),
            _ => None,
        };
        (
            status,
            ErrorDetail {
                code,
                message,
                field,
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = self.detail();
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        ApiError::Internal(err.into())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            };
        }
        ApiError::Malformed(format!("request body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::Malformed(format!("query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::Malformed(format!("path: {}", r.body_text()))
    }
}

/// The most a JSON (or CSV) request body may hold; uploads stream and have no such limit.
pub const MAX_BODY_BYTES: usize = 2 << 20;
/// Past the limit, this much more is read and dropped before the 413 is sent: a client still
/// sending is then done and reads the answer, where a connection closed (HTTP/1.1) or a stream
/// reset (HTTP/2) under it would lose the answer. Beyond it, or past the deadline, the 413
/// goes out anyway.
/// The same bound the server applies to any body left unread (`plinth_common::serve`).
const DRAIN_MAX_BYTES: usize = plinth_common::serve::UNREAD_BODY_MAX_BYTES;
const DRAIN_DEADLINE: std::time::Duration = plinth_common::serve::UNREAD_BODY_DEADLINE;

/// The whole body, at most `MAX_BODY_BYTES`; over that, a 413 once the rest was drained.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = ApiError::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_MAX_BYTES as u64) {
        return Err(too_large);
    }
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::Malformed("request body: could not be read".into()))?;
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            let mut seen = buf.len() + chunk.len();
            drop(buf);
            let drain = async {
                while let Some(Ok(chunk)) = stream.next().await {
                    seen += chunk.len();
                    if seen > DRAIN_MAX_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_DEADLINE, drain).await;
            return Err(too_large);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `Json` whose rejection is an `ApiError` (so a bad body gets plinth's error shape), read
/// under [`MAX_BODY_BYTES`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body).await?;
        if !is_json_content_type(&parts.headers) {
            // axum's own extractor for its content-type refusal and message.
            let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
            return Ok(ApiJson(value));
        }
        super::bad_input::json_body(&bytes).map(ApiJson)
    }
}

/// `Content-Type: application/json` (or `application/<something>+json`), as axum's `Json`
/// takes it.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A request body as bytes (CSV), read under [`MAX_BODY_BYTES`].
#[derive(Debug, Clone, Default)]
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        read_body(&parts.headers, body).await.map(ApiBytes)
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// An optional JSON body: none (or only whitespace) is `T::default()`; a body that is not a
/// `T` is a 400 in plinth's error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiOptionalJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiOptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiOptionalJson(T::default()));
        }
        super::bad_input::json_body(&body).map(ApiOptionalJson)
    }
}

/// The query string as a `T`; a parameter that does not fit is a 400 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for ApiQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        super::bad_input::query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// The path's parameters, each checked as it is read: a typed id (`ApiPath<HostId>`) that is
/// malformed is a 400 naming the parameter, before any store lookup. Several parameters are a
/// tuple, in the route's order (`ApiPath<(HostId, String)>` for `/v1/hosts/{id}/usb/{device}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

/// A path parameter as an error message shows it: at most 64 characters, escaped.
fn shown_param(value: &str) -> String {
    let head: String = value.chars().take(64).collect();
    let more = if head.len() < value.len() { "…" } else { "" };
    format!("{}{more}", head.escape_debug())
}

/// One path parameter's type.
pub trait PathParam: Sized {
    fn from_param(name: &str, value: &str) -> ApiResult<Self>;
}

impl PathParam for String {
    fn from_param(_name: &str, value: &str) -> ApiResult<String> {
        Ok(value.to_string())
    }
}

macro_rules! id_path_params {
    ($($id:ty),*) => {$(
        impl PathParam for $id {
            fn from_param(name: &str, value: &str) -> ApiResult<$id> {
                value.parse().map_err(|e| ApiError::InvalidField {
                    field: name.to_string().into(),
                    message: format!("'{}' {e}", shown_param(value)),
                })
            }
        }
    )*};
}

id_path_params!(
    plinth_common::ids::HostId,
    plinth_common::ids::InstanceId,
    plinth_common::ids::ImageId,
    plinth_common::ids::BaremetalId,
    plinth_common::ids::SegmentId,
    plinth_common::ids::EipId,
    plinth_common::ids::TenantId,
    plinth_common::ids::OperationId
);

/// A route's parameters, from the raw (name, value) pairs in the route's order.
pub trait PathParams: Sized {
    fn from_params(params: &[(&str, &str)]) -> ApiResult<Self>;
}

fn missing_path_params() -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "the route has fewer parameters than its handler reads"
    ))
}

impl<T: PathParam> PathParams for T {
    fn from_params(params: &[(&str, &str)]) -> ApiResult<T> {
        let (name, value) = params.first().ok_or_else(missing_path_params)?;
        T::from_param(name, value)
    }
}

impl<A: PathParam, B: PathParam> PathParams for (A, B) {
    fn from_params(params: &[(&str, &str)]) -> ApiResult<(A, B)> {
        match params {
            [(a_name, a), (b_name, b), ..] => {
                Ok((A::from_param(a_name, a)?, B::from_param(b_name, b)?))
            }
            _ => Err(missing_path_params()),
        }
    }
}

impl<T: PathParams, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|r| ApiError::Malformed(format!("path: {}", r.body_text())))?;
        let params: Vec<(&str, &str)> = raw.iter().collect();
        T::from_params(&params).map(ApiPath)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use plinth_common::host::{HostEvent, HostState};

    /// Which variant `e` is; exhaustive, so a new variant must be listed here (and then given
    /// a representative below).
    fn variant(e: &ApiError) -> usize {
        match e {
            ApiError::InvalidField { .. } => 0,
            ApiError::Malformed(_) => 1,
            ApiError::Unauthenticated(_) => 2,
            ApiError::Unauthorized { .. } => 3,
            ApiError::Forbidden(_) => 4,
            ApiError::NotFound { .. } => 5,
            ApiError::Conflict { .. } => 6,
            ApiError::Unavailable { .. } => 7,
            ApiError::Gone { .. } => 8,
            ApiError::Upstream { .. } => 9,
            ApiError::RangeNotSatisfiable(_) => 10,
            ApiError::UpgradeRequired(_) => 11,
            ApiError::BodyTooLarge { .. } => 12,
            ApiError::Internal(_) => 13,
            ApiError::Refused { .. } => 14,
        }
    }
    const VARIANTS: usize = 15;

    fn representatives() -> Vec<ApiError> {
        let mut all = vec![
            ApiError::field("cores", "must be a whole number"),
            ApiError::Malformed("request body: not JSON".into()),
            ApiError::Unauthenticated("no token".into()),
            ApiError::Unauthorized {
                code: "token_expired",
                message: "the token expired".into(),
            },
            ApiError::Forbidden("admins only".into()),
            ApiError::Refused {
                code: "csrf_header_missing",
                message: "send X-Plinth-Session: 1".into(),
            },
            ApiError::not_found("host", "host-1"),
            ApiError::not_found("usb_device", "1-2"),
            ApiError::not_found_as("console_url", "console URL", "(unknown)"),
            ApiError::not_found_as("drain", "drain of host", "host-1"),
            ApiError::Conflict {
                code: "image_in_use",
                message: "in use".into(),
            },
            ApiError::Unavailable {
                code: "agent_unreachable",
                message: "down".into(),
            },
            ApiError::Gone {
                code: "token_used",
                message: "used".into(),
            },
            ApiError::Upstream {
                code: "bmc_failed",
                message: "no answer".into(),
            },
            ApiError::RangeNotSatisfiable("past the end".into()),
            ApiError::UpgradeRequired("no handshake".into()),
            ApiError::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            },
            ApiError::Internal(anyhow::anyhow!("disk on fire")),
        ];
        for needs in HostState::ALL {
            all.push(
                crate::hosts::HostError::Transition {
                    id: "host-1".into(),
                    err: plinth_common::host::InvalidTransition {
                        from: HostState::Available,
                        event: HostEvent::Lock,
                        needs,
                    },
                }
                .into(),
            );
        }
        all
    }

    #[test]
    fn every_variant_answers_a_snake_case_code() {
        let all = representatives();
        let mut seen = [false; VARIANTS];
        for e in &all {
            seen[variant(e)] = true;
            let (status, detail) = e.detail();
            assert!(is_code(&detail.code), "{e:?}: code {:?}", detail.code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{e:?}"
            );
            assert!(!detail.message.is_empty(), "{e:?}");
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|i| !seen[*i]).collect();
        assert!(
            missing.is_empty(),
            "variants without a representative: {missing:?}"
        );
    }

    #[test]
    fn not_found_codes_are_snake_case_and_messages_keep_their_words() {
        let (status, d) = ApiError::not_found_as("console_url", "console URL", "x").detail();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(d.code, "console_url_not_found");
        assert_eq!(d.message, "console URL x does not exist");
        let (_, d) = ApiError::not_found("usb_device", "1-2").detail();
        assert_eq!(d.code, "usb_device_not_found");
        // The guard, past the debug_assert: whatever a kind holds, the code is snake case.
        for (kind, want) in [
            ("console URL", "console_url"),
            ("drain of host", "drain_of_host"),
            ("recycle-bin entry", "recycle_bin_entry"),
            ("9lives", "unknown_9lives"),
            ("", "unknown"),
            ("é", "unknown"),
        ] {
            assert_eq!(code_word(kind), want, "{kind:?}");
            assert!(is_code(&code_word(kind)), "{kind:?}");
        }
    }

    /// Every code a call site in the coordinator writes (a `code` field's literal, the kinds
    /// given to `not_found`/`not_found_as`), read from the source: each matches `^[a-z][a-z0-9_]*$`.
    #[test]
    fn every_code_written_in_the_source_is_snake_case() {
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut all = Vec::new();
        files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut all,
        );
        let mut bad = Vec::new();
        let mut checked = 0;
        for path in all {
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["code: \"", "not_found(\"", "not_found_as(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let Some(end) = rest.find('"') else { continue };
                    let code = &rest[..end];
                    checked += 1;
                    if !is_code(code) {
                        bad.push(format!("{}: {marker}{code}\"", path.display()));
                    }
                }
            }
        }
        assert!(
            checked > 50,
            "only {checked} codes found: the markers are stale"
        );
        assert!(bad.is_empty(), "codes that are not snake case: {bad:#?}");
    }
}
