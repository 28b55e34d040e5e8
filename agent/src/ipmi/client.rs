//! The agent's BMC sessions: at most one per BMC, opened on first use, reused, kept alive
//! while in use and closed when idle, when the credentials change, when it fails, and at
//! shutdown. Operations on one BMC queue on its lock, so no BMC ever sees two sessions from
//! this agent at once (real BMCs have a handful of slots).

use super::session::{Session, Timing};
use super::{CipherSuite, IpmiError, Password, Target};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// What an operation on a session returns.
pub type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, IpmiError>> + Send + 'a>>;

#[derive(Debug, Clone, Copy)]
pub struct IpmiSettings {
    pub timing: Timing,
    /// An idle session is sent a cheap command this often so the BMC keeps it.
    pub keepalive: Duration,
    /// A session unused this long is closed.
    pub idle_close: Duration,
}

impl Default for IpmiSettings {
    fn default() -> IpmiSettings {
        IpmiSettings {
            timing: Timing::default(),
            keepalive: Duration::from_secs(20),
            idle_close: Duration::from_secs(600),
        }
    }
}

#[derive(Default)]
struct Slot {
    session: Option<Session>,
    username: String,
    password: Option<Password>,
    /// The suite the BMC last accepted: no probing of 17 again.
    suite: Option<CipherSuite>,
    /// The last operation: what idle closing counts from.
    last_used: Option<Instant>,
    /// The last exchange, keepalives included: what the keepalive counts from.
    last_sent: Option<Instant>,
}

struct Bmc {
    slot: tokio::sync::Mutex<Slot>,
}

pub struct Ipmi {
    bmcs: Mutex<HashMap<SocketAddr, Arc<Bmc>>>,
    settings: IpmiSettings,
}

impl std::fmt::Debug for Ipmi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipmi")
            .field("settings", &self.settings)
            .finish()
    }
}

async fn close(slot: &mut Slot) {
    if let Some(s) = slot.session.take() {
        let addr = s.addr();
        s.close().await;
        debug!(bmc = %addr, "IPMI session closed.");
    }
}

impl Ipmi {
    pub fn new(settings: IpmiSettings) -> Ipmi {
        Ipmi {
            bmcs: Mutex::default(),
            settings,
        }
    }

    pub fn settings(&self) -> IpmiSettings {
        self.settings
    }

    fn bmc(&self, addr: SocketAddr) -> Arc<Bmc> {
        let mut map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(addr)
            .or_insert_with(|| {
                Arc::new(Bmc {
                    slot: tokio::sync::Mutex::default(),
                })
            })
            .clone()
    }

    async fn open(&self, target: &Target, slot: &mut Slot) -> Result<(), IpmiError> {
        let mut t = target.clone();
        t.suite = t.suite.or(slot.suite);
        let session = Session::open(&t, self.settings.timing).await?;
        debug!(bmc = %target.addr, suite = session.suite().id(), "IPMI session opened.");
        slot.suite = Some(session.suite());
        slot.username = target.username.clone();
        slot.password = Some(target.password.clone());
        slot.session = Some(session);
        Ok(())
    }

    /// Runs `op` on the BMC's session, opening one if needed. A reused session that fails as
    /// a stale one would (no answer, or the BMC no longer knows it) is replaced once; a
    /// session that failed is closed, never left half-alive.
    pub async fn run<T>(
        &self,
        target: &Target,
        op: impl for<'a> Fn(&'a mut Session) -> OpFuture<'a, T>,
    ) -> Result<T, IpmiError> {
        let bmc = self.bmc(target.addr);
        let mut slot = bmc.slot.lock().await;
        if slot.session.is_some()
            && (slot.username != target.username
                || slot.password.as_ref() != Some(&target.password))
        {
            close(&mut slot).await;
        }
        let reused = slot.session.is_some();
        if !reused {
            self.open(target, &mut slot).await?;
        }
        let mut outcome = match slot.session.as_mut() {
            Some(s) => op(s).await,
            None => unreachable_session(),
        };
        if reused && outcome.as_ref().is_err_and(IpmiError::session_may_be_stale) {
            close(&mut slot).await;
            self.open(target, &mut slot).await?;
            outcome = match slot.session.as_mut() {
                Some(s) => op(s).await,
                None => unreachable_session(),
            };
        }
        match &outcome {
            Err(IpmiError::NoResponse { .. } | IpmiError::Malformed { .. } | IpmiError::Io(_)) => {
                close(&mut slot).await;
            }
            _ => {
                slot.last_used = Some(Instant::now());
                slot.last_sent = slot.last_used;
            }
        }
        outcome
    }

    /// Closes the BMC's session (the server is no longer managed here).
    pub async fn forget(&self, addr: SocketAddr) {
        let bmc = self.bmc(addr);
        close(&mut *bmc.slot.lock().await).await;
        self.drop_unused(addr);
    }

    fn drop_unused(&self, addr: SocketAddr) {
        let mut map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
        // Only this map holds it: nobody is about to lock it, and nobody can get it without
        // the map's lock, so no second session can appear beside another.
        if map.get(&addr).is_some_and(|b| Arc::strong_count(b) == 1) {
            map.remove(&addr);
        }
    }

    /// Sessions open now.
    pub async fn open_sessions(&self) -> usize {
        let bmcs: Vec<Arc<Bmc>> = {
            let map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        let mut n = 0;
        for b in bmcs {
            if b.slot.lock().await.session.is_some() {
                n += 1;
            }
        }
        n
    }

    /// Keeps idle sessions alive and closes those idle too long, until `stop`; then closes
    /// every session.
    pub async fn maintain(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.keepalive / 2);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            self.tend().await;
        }
        self.close_all().await;
    }

    async fn tend(&self) {
        let bmcs: Vec<(SocketAddr, Arc<Bmc>)> = {
            let map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(a, b)| (*a, b.clone())).collect()
        };
        for (addr, bmc) in bmcs {
            // One in use needs no keepalive; never wait behind an operation here.
            let Ok(mut slot) = bmc.slot.try_lock() else {
                continue;
            };
            let idle = slot.last_used.map_or(Duration::MAX, |t| t.elapsed());
            let quiet = slot.last_sent.map_or(Duration::MAX, |t| t.elapsed());
            if slot.session.is_some() && idle >= self.settings.idle_close {
                info!(bmc = %addr, "Closing an idle IPMI session.");
                close(&mut slot).await;
            } else if quiet >= self.settings.keepalive
                && let Some(s) = slot.session.as_mut()
            {
                // A keepalive is not use: it moves last_sent only, so idle closing still comes.
                match s.device_id().await {
                    Ok(_) => slot.last_sent = Some(Instant::now()),
                    Err(err) => {
                        debug!(bmc = %addr, error = %err, "Keepalive failed; session closed.");
                        close(&mut slot).await;
                    }
                }
            }
            let empty = slot.session.is_none();
            drop(slot);
            drop(bmc);
            if empty {
                self.drop_unused(addr);
            }
        }
    }

    /// Closes every session (shutdown), all BMCs at once: unreachable ones cost one short
    /// wait in all, not one each.
    pub async fn close_all(&self) {
        let bmcs: Vec<Arc<Bmc>> = {
            let map = self.bmcs.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        futures_util::future::join_all(
            bmcs.iter()
                .map(|b| async move { close(&mut *b.slot.lock().await).await }),
        )
        .await;
    }
}

/// `open` either filled the slot or returned an error; reaching this is a bug.
fn unreachable_session<T>() -> Result<T, IpmiError> {
    Err(IpmiError::SessionRefused(
        "no session after opening one".into(),
    ))
}
