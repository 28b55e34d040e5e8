//! `GET /v1/events`: the change feed as Server-Sent Events.

use super::{Filter, Item, parse_types};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiQuery, ApiResult};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/events", get(events))
}

/// How often an idle stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Comma-separated types (host, instance, image, baremetal, segment, eip, operation);
    /// all when absent.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    types: Option<String>,
    /// Resume after this event id, for clients that cannot send `Last-Event-ID` (the header
    /// wins when both are given).
    after: Option<i64>,
    /// Without a last id: start with the whole backlog instead of only new events.
    #[serde(default)]
    backlog: bool,
    /// `false`: end the stream once the events there are now were sent [default: true].
    follow: Option<bool>,
}

/// The change feed: one event per state change of hosts, instances, images, bare metal,
/// segments, EIPs and operations, in commit order.
///
/// Each SSE event has `id` (monotonically increasing), `event` (the type) and `data` (JSON:
/// `id`, `type`, `resource_id`, `tenant_id`, `data` with the new state or changed fields,
/// `at` in ms). Resume with `Last-Event-ID` (or `?after=`); a client whose id is older than
/// the backlog gets one `event: reload`: re-fetch what it shows, then carry on. A tenant
/// receives only its own resources' events (never hosts'). Idle streams get keep-alive
/// comments; the stream ends when the coordinator shuts down.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "the last event id the client saw")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", body = super::StoredEvent,
            description = "a stream of SSE events whose data is this object"),
        (status = 400, body = plinth_common::api::ErrorBody),
        (status = 401, body = plinth_common::api::ErrorBody)))]
pub async fn events(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let types = q
        .types
        .as_deref()
        .map(parse_types)
        .transpose()
        .map_err(|t| ApiError::field("type", format!("'{t}' is not an event type")))?;
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::field("Last-Event-ID", "must be an event id (a whole number)")
                })?,
        ),
        None => q.after,
    };
    let filter = Filter {
        types,
        tenant: caller.tenant_id().map(str::to_string),
    };
    let stream = st
        .events
        .subscribe(
            filter,
            last,
            q.backlog,
            q.follow.unwrap_or(true),
            st.jobs.token(),
        )
        .await?;
    Ok(Sse::new(stream.map(|item| Ok(sse_event(item))))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn sse_event(item: Item) -> SseEvent {
    match item {
        Item::Event(e) => SseEvent::default()
            .id(e.id.to_string())
            .event(e.kind.as_str())
            .data(serde_json::to_string(&e).unwrap_or_default()),
        Item::Reload { id } => SseEvent::default().id(id.to_string()).event("reload").data(
            r#"{"reason":"events since the given id are no longer kept: re-fetch, then carry on"}"#,
        ),
    }
}
