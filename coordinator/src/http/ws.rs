//! The WebSocket handshake as an extractor whose refusal is plinth's JSON error: a WebSocket
//! path asked as a plain request (no `Upgrade: websocket`, or over HTTP/2, which this server
//! does not upgrade) answers 426 `upgrade_required` instead of axum's text.

use crate::http::error::ApiError;
use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Version, header};
use axum::response::{IntoResponse, Response};

/// [`WebSocketUpgrade`], refused as 426 `upgrade_required` in the API's error shape.
pub struct ApiWebSocket(pub WebSocketUpgrade);

/// The refusal: a 426 that names the handshake; over HTTP/1.1 it also carries the
/// `Upgrade: websocket` the status calls for (HTTP/2 has no such header).
#[derive(Debug)]
pub struct UpgradeRefused {
    version: Version,
    reason: String,
}

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        let mut resp = ApiError::UpgradeRequired(format!(
            "this path is a WebSocket: open it with a WebSocket client over HTTP/1.1 \
             (Upgrade: websocket); {}",
            self.reason
        ))
        .into_response();
        if self.version < Version::HTTP_2 {
            let headers = resp.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        resp
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiWebSocket {
    type Rejection = UpgradeRefused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, UpgradeRefused> {
        let version = parts.version;
        WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(ApiWebSocket)
            .map_err(|r| UpgradeRefused {
                version,
                reason: reason(version, &r),
            })
    }
}

/// What was missing, in words (axum's own texts name header values and pseudo-headers).
fn reason(version: Version, r: &axum::extract::ws::rejection::WebSocketUpgradeRejection) -> String {
    use axum::extract::ws::rejection::WebSocketUpgradeRejection as R;
    if version >= Version::HTTP_2 {
        return "this request came over HTTP/2".into();
    }
    match r {
        R::MethodNotGet(_) => "the handshake is a GET".into(),
        R::InvalidConnectionHeader(_) | R::InvalidUpgradeHeader(_) => {
            "the request has no Connection: upgrade and Upgrade: websocket headers".into()
        }
        R::InvalidWebSocketVersionHeader(_) => "the WebSocket version must be 13".into(),
        R::WebSocketKeyHeaderMissing(_) => "the request has no Sec-WebSocket-Key".into(),
        _ => "the connection cannot be upgraded".into(),
    }
}
