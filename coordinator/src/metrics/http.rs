//! Times every API request by its route template (never the path: ids stay out of labels).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The middleware, as a route layer (only there is the matched template known).
pub async fn track(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    super::observe_http(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}
