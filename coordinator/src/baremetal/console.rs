//! The serial console (SOL) of a bare-metal server over a WebSocket. `prepare` activates SOL
//! on the server's agent and hands out a one-time URL valid for a few minutes; the WebSocket
//! at that URL carries keys in and serial output out, each step an mTLS call to the agent
//! (which holds the BMC's lock only for that step); `release` deactivates SOL and closes the
//! viewer. The URL's token is the credential: it is random, single-use, short-lived, and only
//! its hash is kept.

use crate::baremetal::api::{agent_failure, find, require_running};
use crate::baremetal::prepare::{self as prepare, NO_AGENT};
use crate::hosts::store::AgentEndpoint;
use crate::http::auth::{Caller, hash_secret};
use crate::http::error::ApiJson;
use crate::http::error::{ApiError, ApiPath, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use plinth_common::api::{AgentBmc, AgentSolIo, Baremetal, ConsoleTicket, ErrorBody};
use plinth_common::baremetal::ConsoleState;
use plinth_common::ids::random_hex;
use plinth_common::timefmt::{now_ms, rfc3339};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

const TICKET_TTL: Duration = Duration::from_secs(300);
/// How long one console step waits for serial output: also the most a key waits to be sent.
const STEP_WAIT_MS: u32 = 150;

struct Ticket {
    server_id: String,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    /// By the token's hash.
    tickets: HashMap<String, Ticket>,
    /// The viewer of each server's console (one at a time).
    viewers: HashMap<String, CancellationToken>,
}

/// Console URLs handed out and viewers connected.
#[derive(Default)]
pub struct Consoles {
    inner: Mutex<Inner>,
}

impl Consoles {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new one-time token for `server_id`'s console.
    fn issue(&self, server_id: &str) -> String {
        let token = random_hex(32);
        let mut inner = self.lock();
        let now = Instant::now();
        inner.tickets.retain(|_, t| t.expires > now);
        inner.tickets.insert(
            hash_secret(&token),
            Ticket {
                server_id: server_id.to_string(),
                expires: now + TICKET_TTL,
            },
        );
        token
    }

    /// The server a token opens, once; `None` for an unknown, used or expired token.
    fn take(&self, token: &str) -> Option<String> {
        let ticket = self.lock().tickets.remove(&hash_secret(token))?;
        (ticket.expires > Instant::now()).then_some(ticket.server_id)
    }

    /// The new viewer's stop signal, `token` (cancelled with the job runner's); a previous
    /// viewer of the same console is closed.
    fn watch(&self, server_id: &str, token: CancellationToken) -> CancellationToken {
        if let Some(old) = self
            .lock()
            .viewers
            .insert(server_id.to_string(), token.clone())
        {
            old.cancel();
        }
        token
    }

    /// Forgets the server's URLs and closes its viewer.
    fn release(&self, server_id: &str) {
        let mut inner = self.lock();
        inner.tickets.retain(|_, t| t.server_id != server_id);
        if let Some(v) = inner.viewers.remove(server_id) {
            v.cancel();
        }
    }
}

async fn agent_for(
    st: &AppState,
    rec: &crate::baremetal::store::BaremetalRecord,
) -> ApiResult<(String, AgentEndpoint, AgentBmc)> {
    let (host, ep) = prepare::route(st, rec)
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::Unavailable {
            code: "no_ipmi_agent",
            message: NO_AGENT.into(),
        })?;
    let bmc = prepare::bmc_of(st, rec).map_err(ApiError::Internal)?;
    Ok((host, ep, bmc))
}

/// Prepare the serial console: activates SOL and answers a one-time WebSocket URL.
#[utoipa::path(post, path = "/v1/baremetal/{id}/console/prepare", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = ConsoleTicket), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn prepare_console(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<ConsoleTicket>> {
    let rec = find(&st, &caller, &id).await?;
    require_running(&rec, "a console")?;
    // Where the caller reached us: HTTP/1.1's Host, HTTP/2's :authority.
    let host_header = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| ApiError::Malformed("the request names no host".into()))?;
    let (host, ep, bmc) = agent_for(&st, &rec).await?;
    st.agents
        .bmc_sol(&ep, &bmc, true)
        .await
        .map_err(|e| agent_failure(&host, e))?;
    st.store
        .set_baremetal_console(&id, ConsoleState::Active, now_ms())
        .await?;
    let token = st.consoles.issue(&id);
    st.store
        .audit(&caller.actor(), "prepare console", &id, "")
        .await?;
    Ok(ApiJson(ConsoleTicket {
        url: format!("wss://{host_header}/v1/baremetal/console/{token}"),
        expires_at: rfc3339(now_ms() + TICKET_TTL.as_millis() as i64),
    }))
}

/// Release the serial console: closes the viewer and deactivates SOL.
#[utoipa::path(post, path = "/v1/baremetal/{id}/console/release", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = Baremetal), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn release_console(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Baremetal>> {
    let rec = find(&st, &caller, &id).await?;
    st.consoles.release(&id);
    if rec.server.state == plinth_common::baremetal::BaremetalState::Running {
        let (host, ep, bmc) = agent_for(&st, &rec).await?;
        st.agents
            .bmc_sol(&ep, &bmc, false)
            .await
            .map_err(|e| agent_failure(&host, e))?;
    }
    st.store
        .set_baremetal_console(&id, ConsoleState::Inactive, now_ms())
        .await?;
    st.store
        .audit(&caller.actor(), "release console", &id, "")
        .await?;
    Ok(ApiJson(find(&st, &caller, &id).await?.server))
}

/// The console WebSocket: the path's one-time token is the credential.
#[utoipa::path(get, path = "/v1/baremetal/console/{token}", params(("token" = String, Path, description = "one-time console token")), tag = "baremetal",
    responses((status = 101, description = "WebSocket: binary frames both ways"), (status = 404, body = ErrorBody)))]
pub async fn connect(
    State(st): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let unknown = || ApiError::not_found("console URL", "(unknown, used or expired)");
    let id = st.consoles.take(&token).ok_or_else(unknown)?;
    let rec = st.store.baremetal(&id).await?.ok_or_else(unknown)?;
    let (host, ep, bmc) = agent_for(&st, &rec).await?;
    let stop = st.consoles.watch(&id, st.jobs.child_token());
    st.store
        .audit("console", "console login", &id, &format!("via {host}"))
        .await?;
    // axum runs the upgraded connection in a task of its own; the bridge runs in a job, so
    // that shutdown closes it and waits for it.
    Ok(ws.on_upgrade(move |socket| async move {
        let jobs = st.jobs.clone();
        let _ = jobs
            .spawn("console bridge", async move {
                info!(baremetal = %id, agent = %host, "Console viewer connected.");
                bridge(st, ep, bmc, socket, stop).await;
                info!(baremetal = %id, "Console viewer gone.");
            })
            .await;
    }))
}

/// Keys from the viewer queue up and go with the next step; every step's output goes to the
/// viewer. Ends when the viewer leaves, the console is released, SOL ends, or the agent fails.
async fn bridge(
    st: AppState,
    ep: AgentEndpoint,
    bmc: AgentBmc,
    socket: WebSocket,
    stop: CancellationToken,
) {
    let (mut sink, mut stream) = socket.split();
    let (keys, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
    let reader_stop = stop.clone();
    let reader = st.jobs.spawn("console reader", async move {
        while let Some(Ok(msg)) = stream.next().await {
            let bytes = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if keys.send(bytes).is_err() {
                break;
            }
        }
        reader_stop.cancel();
    });
    let mut ended = "released";
    loop {
        let mut input = Vec::new();
        while let Ok(k) = queued.try_recv() {
            input.extend(k);
        }
        let req = AgentSolIo {
            bmc: bmc.clone(),
            input_hex: hex::encode(&input),
            wait_ms: STEP_WAIT_MS,
        };
        let step = tokio::select! {
            _ = stop.cancelled() => {
                if st.jobs.is_cancelled() {
                    ended = "the coordinator is stopping";
                }
                break;
            }
            step = st.agents.bmc_sol_io(&ep, &req) => step,
        };
        match step {
            Ok(out) => {
                let bytes = hex::decode(&out.output_hex).unwrap_or_default();
                if !bytes.is_empty() && sink.send(Message::Binary(bytes.into())).await.is_err() {
                    ended = "viewer gone";
                    break;
                }
                if !out.active {
                    ended = "the BMC ended serial over LAN";
                    break;
                }
            }
            Err(err) => {
                warn!(error = %err.explain(), "Console step failed; closing the viewer.");
                ended = "the agent failed";
                break;
            }
        }
    }
    let note = format!("\r\n[plinth: console closed: {ended}]\r\n");
    let _ = sink.send(Message::Text(note.into())).await;
    let _ = sink.send(Message::Close(None)).await;
    reader.abort();
}
