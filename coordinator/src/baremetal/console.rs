//! The serial console (SOL) of a bare-metal server over a WebSocket. `prepare` activates SOL
//! on the server's agent and hands out a one-time URL valid for a few minutes; the WebSocket
//! at that URL carries keys in and serial output out, each step an mTLS call to the agent
//! (which holds the BMC's lock only for that step); `release` deactivates SOL and closes the
//! viewer. The URL's token is the credential: it is random, single-use, short-lived, and only
//! its hash is kept. [`Consoles`] (in the app state) holds the URLs handed out and the viewers
//! connected; the console's operations and the viewer's bridge job are here too.

use crate::agents::AgentEndpoint;
use crate::baremetal::store::Swap;
use crate::baremetal::{
    BaremetalError, BaremetalResult, Reach, SWAP_ATTEMPTS, agent_failure, find, moved, reach,
    require_running,
};
use crate::http::auth::{Caller, hash_secret};
use crate::state::AppState;
use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use plinth_common::api::{AgentBmc, AgentSolIo, Baremetal, ConsoleTicket};
use plinth_common::baremetal::{BaremetalState, ConsoleEvent};
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

/// Prepares the serial console: activates SOL through the server's agent, records the
/// console `active` and answers a one-time URL on `host` (where the caller reached us).
pub async fn prepare(
    st: &AppState,
    caller: &Caller,
    id: &str,
    host: &str,
) -> BaremetalResult<ConsoleTicket> {
    let rec = find(st, caller, id).await?;
    require_running(&rec, "a console")?;
    let reach = reach(st, &rec).await?;
    st.agents
        .bmc_sol(&reach.ep, &reach.bmc, true)
        .await
        .map_err(|e| agent_failure(&reach.host, e))?;
    record_console(st, id, ConsoleEvent::Activated).await?;
    let token = st.consoles.issue(id);
    st.store
        .audit(&caller.actor(), "prepare console", id, "")
        .await?;
    Ok(ConsoleTicket {
        url: format!("wss://{host}/v1/baremetal/console/{token}"),
        expires_at: rfc3339(now_ms() + TICKET_TTL.as_millis() as i64),
    })
}

/// Releases the serial console: closes the viewer, deactivates SOL (when the server is
/// running) and records the console `inactive`.
pub async fn release(st: &AppState, caller: &Caller, id: &str) -> BaremetalResult<Baremetal> {
    let rec = find(st, caller, id).await?;
    st.consoles.release(id);
    if rec.server.state == BaremetalState::Running {
        let reach = reach(st, &rec).await?;
        st.agents
            .bmc_sol(&reach.ep, &reach.bmc, false)
            .await
            .map_err(|e| agent_failure(&reach.host, e))?;
    }
    record_console(st, id, ConsoleEvent::Released).await?;
    st.store
        .audit(&caller.actor(), "release console", id, "")
        .await?;
    Ok(find(st, caller, id).await?.server)
}

/// The console's change by the table, as a compare-and-swap read again when the row moved.
async fn record_console(st: &AppState, id: &str, event: ConsoleEvent) -> BaremetalResult<()> {
    let mut last = None;
    for _ in 0..SWAP_ATTEMPTS {
        let Some((_, _, from)) = st.store.baremetal_states(id).await? else {
            return Err(BaremetalError::NotFound(id.to_string()));
        };
        let swap = Swap {
            from,
            to: from.transition(event),
        };
        if st.store.swap_baremetal_console(id, swap, now_ms()).await? {
            return Ok(());
        }
        last = Some((swap.from.as_str(), swap.to.as_str()));
    }
    Err(moved(id, "console", last))
}

/// A viewer that presented a valid one-time URL, not yet connected.
pub struct Viewer {
    id: String,
    reach: Reach,
    stop: CancellationToken,
}

/// Takes the one-time `token` (it works once) and watches the console for its viewer; a
/// previous viewer of the same console is closed.
pub async fn open(st: &AppState, token: &str) -> BaremetalResult<Viewer> {
    let id = st
        .consoles
        .take(token)
        .ok_or(BaremetalError::UnknownConsole)?;
    let rec = st
        .store
        .baremetal(&id)
        .await?
        .ok_or(BaremetalError::UnknownConsole)?;
    let reach = reach(st, &rec).await?;
    let stop = st.consoles.watch(&id, st.jobs.child_token());
    st.store
        .audit(
            "console",
            "console login",
            &id,
            &format!("via {}", reach.host),
        )
        .await?;
    Ok(Viewer { id, reach, stop })
}

/// Serves the viewer's WebSocket until it ends. axum runs the upgraded connection in a task
/// of its own; the bridge runs in a job, so that shutdown closes it and waits for it.
pub async fn serve(st: AppState, viewer: Viewer, socket: WebSocket) {
    let jobs = st.jobs.clone();
    let _ = jobs
        .spawn("console bridge", async move {
            let Viewer { id, reach, stop } = viewer;
            info!(baremetal = %id, agent = %reach.host, "Console viewer connected.");
            bridge(st, reach.ep, reach.bmc, socket, stop).await;
            info!(baremetal = %id, "Console viewer gone.");
        })
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_url_opens_once_and_release_forgets_it() {
        let consoles = Consoles::default();
        let token = consoles.issue("bm-1");
        assert_eq!(consoles.take("not-a-token"), None, "unknown");
        assert_eq!(consoles.take(&token).as_deref(), Some("bm-1"), "first use");
        assert_eq!(consoles.take(&token), None, "used");

        // A second viewer closes the first; release closes the second and forgets the URLs.
        let first = consoles.watch("bm-1", CancellationToken::new());
        let second = consoles.watch("bm-1", CancellationToken::new());
        assert!(first.is_cancelled() && !second.is_cancelled());
        let unused = consoles.issue("bm-1");
        let other = consoles.issue("bm-2");
        consoles.release("bm-1");
        assert!(second.is_cancelled());
        assert_eq!(consoles.take(&unused), None, "released");
        assert_eq!(
            consoles.take(&other).as_deref(),
            Some("bm-2"),
            "another server's"
        );
    }
}
