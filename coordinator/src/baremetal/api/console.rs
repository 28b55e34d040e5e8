//! `/v1/baremetal/{id}/console/*` and the console WebSocket: prepare (a one-time URL),
//! release, and the socket the URL opens. The operations are in `baremetal::console`.

use crate::baremetal::console;
use crate::baremetal::{BaremetalError, BaremetalResult};
use crate::http::auth::Caller;
use crate::http::error::{ApiJson, ApiPath, ApiResult};
use crate::http::ws::ApiWebSocket;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use plinth_common::api::{Baremetal, ConsoleTicket, ErrorBody};
use plinth_common::ids::BaremetalId;

/// Where the caller reached us: HTTP/1.1's Host, HTTP/2's :authority.
fn caller_host(headers: &HeaderMap, uri: &Uri) -> BaremetalResult<String> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .ok_or(BaremetalError::NoHost)
}

/// Prepare the serial console: activates SOL and answers a one-time WebSocket URL.
#[utoipa::path(post, path = "/v1/baremetal/{id}/console/prepare", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = ConsoleTicket), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn prepare_console(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    ApiPath(id): ApiPath<BaremetalId>,
) -> ApiResult<ApiJson<ConsoleTicket>> {
    let host = caller_host(&headers, &uri)?;
    Ok(ApiJson(console::prepare(&st, &caller, &id, &host).await?))
}

/// Release the serial console: closes the viewer and deactivates SOL.
#[utoipa::path(post, path = "/v1/baremetal/{id}/console/release", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = Baremetal), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn release_console(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
) -> ApiResult<ApiJson<Baremetal>> {
    Ok(ApiJson(console::release(&st, &caller, &id).await?))
}

/// The console WebSocket: the path's one-time token is the credential. Without the WebSocket
/// handshake (a plain GET, or HTTP/2) it answers 426 and the token stays unused.
#[utoipa::path(get, path = "/v1/baremetal/console/{token}", params(("token" = String, Path, description = "one-time console token")), tag = "baremetal",
    responses((status = 101, description = "WebSocket: binary frames both ways"), (status = 404, body = ErrorBody),
        (status = 426, description = "not a WebSocket handshake", body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn connect(
    State(st): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiWebSocket(ws): ApiWebSocket,
) -> ApiResult<Response> {
    let viewer = console::open(&st, &token).await?;
    Ok(ws.on_upgrade(move |socket| console::serve(st, viewer, socket)))
}
