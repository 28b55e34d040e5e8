//! Every error answer is JSON: a 4xx or 5xx that is not already `application/json` (axum's
//! own 405 for a method a path does not have, an extractor's text) is rewritten here, once
//! for the whole API, into plinth's error body with a code from its status.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plinth_common::api::{ErrorBody, ErrorDetail};

/// `router` with every error answer JSON. The layer goes around the whole router, not into
/// it (`Router::layer` wraps each route, inside the point where axum adds a 405's `Allow`).
pub fn around(router: Router) -> Router {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(json_errors))
}

/// The middleware: passes successes and JSON errors through untouched.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let (mut parts, _text) = resp.into_parts();
    let error = ErrorDetail {
        code: code_for(status),
        message: message_for(status, &method, &parts.headers),
        field: None,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = axum::Json(ErrorBody { error }).into_response().into_body();
    Response::from_parts(parts, body)
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// `method_not_allowed` for 405 and so on: the status's reason in lower case, `_` between
/// words; `http_error` for a status without one.
pub(crate) fn code_for(status: StatusCode) -> String {
    let words: Vec<String> = status
        .canonical_reason()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() || !words[0].starts_with(|c: char| c.is_ascii_lowercase()) {
        return "http_error".into();
    }
    words.join("_")
}

fn message_for(status: StatusCode, method: &Method, headers: &axum::http::HeaderMap) -> String {
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return format!("{method} is not allowed on this path; it allows {allowed}");
    }
    status
        .canonical_reason()
        .unwrap_or("the request failed")
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(router: Router, method: Method, path: &str) -> (StatusCode, String, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    fn router() -> Router {
        around(
            Router::new()
                .route("/thing", get(|| async { "fine" }))
                .route(
                    "/text-error",
                    get(|| async { (StatusCode::BAD_REQUEST, "plain words") }),
                ),
        )
    }

    #[tokio::test]
    async fn axum_405_becomes_json_naming_the_allowed_methods() {
        let (status, ct, body) = call(router(), Method::DELETE, "/thing").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("DELETE is not allowed"), "{message}");
        assert!(message.contains("GET"), "{message}");
    }

    #[tokio::test]
    async fn text_errors_become_json_and_successes_pass() {
        let (status, ct, body) = call(router(), Method::GET, "/text-error").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        let (status, _, body) = call(router(), Method::GET, "/thing").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    }

    #[test]
    fn codes_from_statuses_are_snake_case() {
        let re = |c: &str| {
            c.starts_with(|ch: char| ch.is_ascii_lowercase())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        };
        for n in 400..600u16 {
            let status = StatusCode::from_u16(n).unwrap();
            let code = code_for(status);
            assert!(re(&code), "{n}: {code}");
        }
        assert_eq!(code_for(StatusCode::IM_A_TEAPOT), "i_m_a_teapot");
        assert_eq!(code_for(StatusCode::UPGRADE_REQUIRED), "upgrade_required");
    }
}
