//! One connection's bookkeeping: the socket wrapper that holds the listener's slot and notices
//! a request head starting, the service wrapper that counts requests in flight and cuts off
//! stalled bodies, and the watchdog that says when an idle or half-sent connection is to go.
//!
//! A request answered before its body was read (a caller refused by its token, a 404) has the
//! rest of its body read and dropped before the answer goes out, up to
//! [`UNREAD_BODY_MAX_BYTES`] within [`UNREAD_BODY_DEADLINE`]. Without that, HTTP/2 ends such a
//! stream with a RST_STREAM after the answer (h2 does so whenever the request body is still
//! streaming once the response is done), and clients still sending (curl: "Stream error in the
//! HTTP/2 framing layer") drop the answer with the stream; on HTTP/1.1 the connection closes
//! instead of being kept alive. A body over the bound still gets the answer and the reset.

use super::Phase;
use super::stats::ListenerStats;
use crate::tls::PeerIdentity;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode, Version};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most of a request body, read by the handler and drained together, that is read before
/// an answer given early: a client sending more gets the answer and a reset stream (HTTP/2)
/// or a closed connection (HTTP/1.1).
pub const UNREAD_BODY_MAX_BYTES: usize = 64 << 20;
/// How long the rest of an unread body may take to arrive before the answer goes out anyway.
pub const UNREAD_BODY_DEADLINE: Duration = Duration::from_secs(5);

/// Where a connection stands, for its watchdog.
#[derive(Debug)]
pub(crate) struct Watch {
    state: Mutex<State>,
    changed: Notify,
    /// Set while idle on HTTP/1: the next byte read starts a request head.
    reads_armed: AtomicBool,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    idle_since: Instant,
    head_since: Option<Instant>,
    h2: bool,
}

impl Watch {
    /// `armed`: bytes read now are HTTP (plain listeners); a TLS listener arms the watch
    /// after the handshake, whose records are no request head.
    pub(crate) fn new(armed: bool) -> Arc<Watch> {
        Arc::new(Watch {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                head_since: None,
                h2: false,
            }),
            changed: Notify::new(),
            reads_armed: AtomicBool::new(armed),
        })
    }

    /// The TLS handshake is done: HTTP/1 bytes from now on start a head.
    pub(crate) fn handshake_done(&self, h2: bool) {
        let mut s = self.lock();
        s.h2 = h2;
        let idle = s.in_flight == 0 && s.head_since.is_none();
        drop(s);
        self.reads_armed.store(idle && !h2, Ordering::Relaxed);
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// HTTP/2 (ALPN said so, or a request came as HTTP/2): bytes between requests are pings
    /// and settings, not a head, so only the idle timeout applies.
    pub(crate) fn is_h2(&self) -> bool {
        self.lock().h2
    }

    fn read_some(&self) {
        if !self.reads_armed.swap(false, Ordering::Relaxed) {
            return;
        }
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_since.is_none() && !s.h2 {
            s.head_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_since = None;
        if version == Version::HTTP_2 {
            s.h2 = true;
        }
        drop(s);
        self.reads_armed.store(false, Ordering::Relaxed);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut s = self.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_since = None;
            self.reads_armed.store(!s.h2, Ordering::Relaxed);
        }
        drop(s);
        self.changed.notify_one();
    }

    /// The next deadline: none while a request is in flight.
    fn deadline(&self, limits: &super::Limits) -> Option<(Instant, Phase)> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        Some(match s.head_since {
            Some(t) if !s.h2 => (t + limits.header_read_timeout, Phase::Header),
            _ => (s.idle_since + limits.idle_timeout, Phase::Idle),
        })
    }

    /// Resolves when the connection has been idle, or sending a head, for too long.
    pub(crate) async fn expired(&self, limits: &super::Limits) -> Phase {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, _)) => tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep_until(at) => {
                        // A request may have begun as the timer fired.
                        match self.deadline(limits) {
                            Some((at, phase)) if at <= Instant::now() => return phase,
                            _ => {}
                        }
                    }
                },
            }
        }
    }
}

/// A request in flight; ends when the response body is done with (or the request dropped).
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The accepted socket: holds the listener's slot and counts as open until dropped (also
/// after an upgrade, when a WebSocket carries it), tells the watchdog when a request head
/// starts, and fails a write the client takes nothing of for `send_timeout`.
pub(crate) struct Io<T> {
    inner: T,
    watch: Arc<Watch>,
    stats: Arc<ListenerStats>,
    send_timeout: Duration,
    write_stall: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl<T> Io<T> {
    pub(crate) fn new(
        inner: T,
        slot: OwnedSemaphorePermit,
        stats: Arc<ListenerStats>,
        watch: Arc<Watch>,
        send_timeout: Duration,
    ) -> Io<T> {
        stats.opened();
        Io {
            inner,
            watch,
            stats,
            send_timeout,
            write_stall: None,
            _slot: slot,
        }
    }

    /// Passes a write's outcome on; a write pending for `send_timeout` fails instead.
    fn stall_check<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.write_stall = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.send_timeout;
                let sleep = self
                    .write_stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                self.stats.timed_out(Phase::Send);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took nothing of the response for the body timeout",
                )))
            }
        }
    }
}

impl<T> Drop for Io<T> {
    fn drop(&mut self) {
        self.stats.closed();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Io<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.watch.read_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stall_check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stall_check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.stall_check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as hyper calls it: each request counted in flight until its response body is
/// done, the peer's identity attached (TLS listeners), and its body under the body timeout.
#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) router: Router,
    pub(crate) peer: Option<PeerIdentity>,
    pub(crate) watch: Arc<Watch>,
    pub(crate) stats: Arc<ListenerStats>,
    pub(crate) body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.watch.begin(req.version());
        let version = req.version();
        let stalled = Arc::new(AtomicBool::new(false));
        let timeout = self.body_timeout;
        let unread = Unread::default();
        // HTTP/1 sends "100 Continue" when the body is first read: a client waiting for it
        // has sent nothing yet, and is better answered at once.
        let expects_continue = version < Version::HTTP_2
            && req
                .headers()
                .get(hyper::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut req = req.map(|body| {
            axum::body::Body::new(Timed {
                inner: Some(body),
                timeout,
                stalled: stalled.clone(),
                sleep: None,
                failed: false,
                unread: unread.clone(),
            })
        });
        if let Some(peer) = &self.peer {
            req.extensions_mut().insert(peer.clone());
        }
        let router = self.router.clone();
        let stats = self.stats.clone();
        Box::pin(async move {
            let resp = match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if let Some(rest) = unread.take()
                && !expects_continue
            {
                drain(rest, unread.read()).await;
            }
            let resp = if stalled.load(Ordering::Relaxed) {
                stats.timed_out(Phase::Body);
                stalled_response(version, timeout)
            } else {
                resp
            };
            Ok(resp.map(|body| Tracked {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// 408 in the API's error shape; HTTP/1 closes the connection after it (the rest of the body
/// may still be on its way).
fn stalled_response(version: Version, timeout: Duration) -> Response<axum::body::Body> {
    let body = serde_json::json!({"error": {
        "code": "body_timeout",
        "message": format!("the request body stalled: nothing arrived for {timeout:?}"),
    }});
    let mut resp = Response::new(axum::body::Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if version < Version::HTTP_2 {
        headers.insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// What the handler left of its request body: how much it read, and the rest, handed back
/// when the body is dropped before its end.
#[derive(Clone, Default)]
struct Unread(Arc<UnreadInner>);

#[derive(Default)]
struct UnreadInner {
    read: AtomicUsize,
    rest: Mutex<Option<Incoming>>,
}

impl Unread {
    fn read(&self) -> usize {
        self.0.read.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<Incoming> {
        self.0.rest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn put(&self, rest: Incoming) {
        *self.0.rest.lock().unwrap_or_else(|p| p.into_inner()) = Some(rest);
    }
}

/// Reads and drops the rest of a body the handler left, so that the client has sent its
/// whole request when the answer goes out: at most [`UNREAD_BODY_MAX_BYTES`] counting the
/// `already` read, within [`UNREAD_BODY_DEADLINE`]. A body declared longer is left as it is.
async fn drain(mut rest: Incoming, already: usize) {
    let budget = UNREAD_BODY_MAX_BYTES.saturating_sub(already);
    if budget == 0 || rest.size_hint().lower() > budget as u64 {
        return;
    }
    let read_out = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut rest).poll_frame(cx)).await
        {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > budget {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(UNREAD_BODY_DEADLINE, read_out).await;
}

/// A request body that fails when no frame comes for `timeout` while it is read. Dropped
/// before its end (and without failing), it hands the rest to `unread`.
struct Timed {
    inner: Option<Incoming>,
    timeout: Duration,
    stalled: Arc<AtomicBool>,
    sleep: Option<Pin<Box<Sleep>>>,
    failed: bool,
    unread: Unread,
}

impl Drop for Timed {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take()
            && !self.failed
            && !rest.is_end_stream()
        {
            self.unread.put(rest);
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body stalled")]
struct Stalled;

impl Body for Timed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                match &frame {
                    Some(Ok(f)) => {
                        let n = f.data_ref().map_or(0, Bytes::len);
                        this.unread.0.read.fetch_add(n, Ordering::Relaxed);
                    }
                    Some(Err(_)) => this.failed = true,
                    None => {}
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                this.stalled.store(true, Ordering::Relaxed);
                this.failed = true;
                Poll::Ready(Some(Err(Stalled.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A response body that keeps its request counted in flight until hyper is done with it.
pub(crate) struct Tracked {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
