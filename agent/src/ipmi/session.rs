//! One RMCP+ session: Get Channel Authentication Capabilities, Open Session, RAKP 1–4, Set
//! Session Privilege Level (ADMINISTRATOR), then authenticated and encrypted requests with
//! sequence numbers and retransmission, and Close Session. A failed open tells the BMC to drop
//! what it had allocated (RAKP 3 with an error status, or Close Session).

use super::crypto::{CipherSuite, Exchange, SessionKeys, same};
use super::rmcp::{self, Frame, decode, decode_response, encode_request, encode_v2, payload};
use super::{IpmiError, Target};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

pub const NETFN_CHASSIS: u8 = 0x00;
pub const NETFN_APP: u8 = 0x06;
pub const NETFN_STORAGE: u8 = 0x0a;

const PRIV_ADMIN: u8 = 0x04;
/// RAKP 1's role byte: ADMINISTRATOR with name-only lookup, as ipmitool sends it.
const ROLE: u8 = PRIV_ADMIN | 0x10;

/// How long to wait for answers: `first_wait` for the first try, doubling on each
/// retransmission, `attempts` tries, and never past `deadline` for one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first_wait: Duration,
    pub attempts: u32,
    pub deadline: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            first_wait: Duration::from_millis(500),
            attempts: 4,
            deadline: Duration::from_secs(5),
        }
    }
}

/// RMCP+ status codes of Open Session and RAKP (IPMI v2.0 table 13-15).
fn status_text(code: u8) -> &'static str {
    match code {
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session id",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session id",
        0x09 => "invalid role",
        0x0a => "unauthorized role or privilege level requested",
        0x0b => "insufficient resources to create a session at the requested role",
        0x0c => "invalid name length",
        0x0d => "unauthorized name",
        0x0e => "unauthorized GUID",
        0x0f => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

fn status_error(step: &str, code: u8) -> IpmiError {
    let what = format!("{step}: {} ({code:#04x})", status_text(code));
    match code {
        0x01 | 0x0b => IpmiError::NoSessionSlot(what),
        0x0d | 0x0c => IpmiError::BadCredentials(what),
        0x09 | 0x0a => IpmiError::PrivilegeTooLow(what),
        _ => IpmiError::SessionRefused(what),
    }
}

/// Whether an Open Session status means "not this cipher suite": try the next one.
fn suite_refused(code: u8) -> bool {
    matches!(code, 0x04 | 0x05 | 0x06 | 0x07 | 0x10 | 0x11)
}

fn malformed(command: &'static str, detail: impl Into<String>) -> IpmiError {
    IpmiError::Malformed {
        command,
        detail: detail.into(),
    }
}

/// Sends what `build` makes and hands every datagram from the BMC to `accept` until it
/// answers `Some`; retransmits (a fresh `build`) with a doubling wait.
async fn exchange<T>(
    sock: &UdpSocket,
    addr: SocketAddr,
    timing: Timing,
    mut build: impl FnMut() -> Vec<u8>,
    mut accept: impl FnMut(&[u8]) -> Option<Result<T, IpmiError>>,
) -> Result<T, IpmiError> {
    let started = Instant::now();
    let end = started + timing.deadline;
    let mut wait = timing.first_wait;
    let mut buf = vec![0u8; 1024];
    for _ in 0..timing.attempts.max(1) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        sock.send(&build()).await?;
        let until = (now + wait).min(end);
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) => {
                    if let Some(outcome) = accept(&buf[..n]) {
                        return outcome;
                    }
                }
                // ICMP port unreachable shows up as a refused receive: nobody is there; keep
                // waiting out the deadline as a lost packet would.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep_until(until).await;
                    break;
                }
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        wait = wait.saturating_mul(2);
    }
    Err(IpmiError::NoResponse {
        addr,
        waited_ms: started.elapsed().as_millis(),
    })
}

async fn socket_for(addr: SocketAddr) -> Result<UdpSocket, IpmiError> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

/// The crypto state of an established session: what seals our packets and opens the BMC's.
pub(super) struct Wire {
    keys: SessionKeys,
    /// The BMC's id for this session (SIDc): what our packets carry.
    bmc_session_id: u32,
    /// Our id (SIDm): what the BMC's packets carry.
    console_session_id: u32,
    seq: AtomicU32,
}

impl Wire {
    /// Wraps `payload` as an authenticated, encrypted packet of this session.
    pub(super) fn seal(&self, payload_type: u8, payload: &[u8]) -> Vec<u8> {
        // 0 is never a valid in-session sequence number.
        let seq = self.seq.load(Ordering::Relaxed).wrapping_add(1).max(1);
        self.seq.store(seq, Ordering::Relaxed);
        let sealed = self.keys.encrypt(payload, rand::random());
        let sign = |b: &[u8]| self.keys.integrity(b);
        encode_v2(
            payload_type,
            true,
            self.bmc_session_id,
            seq,
            &sealed,
            Some(&sign),
        )
    }

    /// The payload of a packet of this session, checked and decrypted; `None` for anything
    /// else (stray, forged or another session's).
    pub(super) fn open(&self, buf: &[u8]) -> Option<(u8, Vec<u8>)> {
        let Ok(Frame::V2(f)) = decode(buf, self.keys.suite().integrity_len()) else {
            return None;
        };
        if f.session_id != self.console_session_id
            || !f.authenticated
            || !same(&self.keys.integrity(f.signed), f.auth_code)
        {
            return None;
        }
        let plain = if f.encrypted {
            self.keys.decrypt(f.payload).ok()?
        } else {
            f.payload.to_vec()
        };
        Some((f.payload_type, plain))
    }
}

/// An established session at ADMINISTRATOR privilege.
pub struct Session {
    pub(super) sock: UdpSocket,
    addr: SocketAddr,
    pub(super) wire: Wire,
    rq_seq: u8,
    pub(super) timing: Timing,
    /// SOL payload packets received while waiting for something else.
    pub(super) sol_inbox: VecDeque<Vec<u8>>,
    pub(super) sol_active: bool,
    pub(super) sol: super::sol::SolState,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.addr)
            .field("suite", &self.wire.keys.suite())
            .field(
                "bmc_session_id",
                &format_args!("{:#010x}", self.wire.bmc_session_id),
            )
            .finish()
    }
}

struct Opened {
    suite: CipherSuite,
    bmc_session_id: u32,
}

impl Session {
    /// Opens a session with `target`, trying its pinned suite or 17 then 3.
    pub async fn open(target: &Target, timing: Timing) -> Result<Session, IpmiError> {
        let sock = socket_for(target.addr).await?;
        channel_auth_capabilities(&sock, target.addr, timing).await?;
        let suites: &[CipherSuite] = match &target.suite {
            Some(s) => std::slice::from_ref(s),
            None => &[CipherSuite::Suite17, CipherSuite::Suite3],
        };
        let console_session_id = loop {
            let id: u32 = rand::random();
            if id != 0 {
                break id;
            }
        };
        let mut refused = None;
        let mut opened = None;
        for (tag, &suite) in suites.iter().enumerate() {
            match open_session(
                &sock,
                target.addr,
                timing,
                tag as u8,
                console_session_id,
                suite,
            )
            .await?
            {
                Ok(o) => {
                    opened = Some(o);
                    break;
                }
                Err(code) if suite_refused(code) => refused = Some((suite, code)),
                Err(code) => return Err(status_error("open session", code)),
            }
        }
        let Some(Opened {
            suite,
            bmc_session_id,
        }) = opened
        else {
            let (suite, code) = refused.unwrap_or((CipherSuite::Suite3, 0x11));
            return Err(IpmiError::Unsupported(format!(
                "cipher suite {}: {}",
                suite.id(),
                status_text(code)
            )));
        };
        let outcome = rakp(
            &sock,
            target,
            timing,
            suite,
            console_session_id,
            bmc_session_id,
        )
        .await;
        let assemble = |sock, keys| Session {
            sock,
            addr: target.addr,
            wire: Wire {
                keys,
                bmc_session_id,
                console_session_id,
                seq: AtomicU32::new(0),
            },
            rq_seq: 0,
            timing,
            sol_inbox: VecDeque::new(),
            sol_active: false,
            sol: Default::default(),
        };
        let (keys, icv_ok) = match outcome {
            Ok(v) => v,
            Err(RakpFailure { err, keys }) => {
                // RAKP 3 went out: the BMC may hold an active session; close it with the keys.
                if let Some(keys) = keys {
                    assemble(sock, keys).close().await;
                }
                return Err(err);
            }
        };
        let mut session = assemble(sock, keys);
        if !icv_ok {
            session.close().await;
            return Err(IpmiError::SessionRefused(
                "RAKP 4 carried a wrong integrity check value".into(),
            ));
        }
        // Without ADMINISTRATOR, chassis control fails later with "insufficient privilege".
        match session
            .command(
                "set session privilege level",
                NETFN_APP,
                0x3b,
                &[PRIV_ADMIN],
            )
            .await
        {
            Ok(_) => Ok(session),
            Err(err) => {
                session.close().await;
                Err(match err {
                    IpmiError::Completion { code, .. } if matches!(code, 0x80..=0x82 | 0xd4) => {
                        IpmiError::PrivilegeTooLow(format!(
                            "set session privilege level answered {code:#04x}"
                        ))
                    }
                    other => other,
                })
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn suite(&self) -> CipherSuite {
        self.wire.keys.suite()
    }

    /// Sends one request and returns the response data after a zero completion code.
    pub async fn command(
        &mut self,
        name: &'static str,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, IpmiError> {
        let timing = self.timing;
        self.command_with(name, netfn, cmd, data, timing).await
    }

    pub(super) async fn command_with(
        &mut self,
        name: &'static str,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        timing: Timing,
    ) -> Result<Vec<u8>, IpmiError> {
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let rq_seq = self.rq_seq;
        // A retransmission keeps rqSeq (the BMC may spot the duplicate) but takes a new
        // session sequence number (the BMC drops replays).
        let message = encode_request(netfn, cmd, rq_seq, data);
        let Session {
            sock,
            addr,
            wire,
            sol_inbox,
            sol_active,
            ..
        } = self;
        let wire = &*wire;
        let build = || wire.seal(payload::IPMI, &message);
        let accept = |buf: &[u8]| {
            let (ptype, plain) = wire.open(buf)?;
            if ptype == payload::SOL {
                if *sol_active {
                    sol_inbox.push_back(plain);
                }
                return None;
            }
            if ptype != payload::IPMI {
                return None;
            }
            let r = decode_response(&plain).ok()?;
            (r.rq_seq == rq_seq && r.cmd == cmd && r.netfn == netfn).then(|| {
                if r.completion == 0 {
                    Ok(r.data.to_vec())
                } else {
                    Err(IpmiError::Completion {
                        command: name,
                        code: r.completion,
                    })
                }
            })
        };
        exchange(sock, *addr, timing, build, accept).await
    }

    /// Ends the session at the BMC (one quick try: a BMC that does not answer drops it on
    /// its own timeout). Never fails: there is nothing left to do if it does.
    pub async fn close(mut self) {
        let timing = Timing {
            first_wait: Duration::from_millis(300),
            attempts: 2,
            deadline: Duration::from_millis(800),
        };
        let id = self.wire.bmc_session_id.to_le_bytes();
        if let Err(err) = self
            .command_with("close session", NETFN_APP, 0x3c, &id, timing)
            .await
        {
            tracing::debug!(bmc = %self.addr, error = %err, "Close Session got no clean answer.");
        }
    }
}

/// Get Channel Authentication Capabilities, session-less: is anyone there, speaking IPMI v2.0?
async fn channel_auth_capabilities(
    sock: &UdpSocket,
    addr: SocketAddr,
    timing: Timing,
) -> Result<(), IpmiError> {
    const NAME: &str = "get channel authentication capabilities";
    // 0x8e: IPMI v2.0 extended data, this channel; then the privilege we will ask for.
    let packet = rmcp::encode_v15(&encode_request(NETFN_APP, 0x38, 0, &[0x8e, PRIV_ADMIN]));
    let data = exchange(
        sock,
        addr,
        timing,
        || packet.clone(),
        |buf| {
            let Ok(Frame::V15 { payload, .. }) = decode(buf, 0) else {
                return None;
            };
            let r = decode_response(payload).ok()?;
            (r.cmd == 0x38).then(|| match r.completion {
                0 => Ok(r.data.to_vec()),
                code => Err(IpmiError::Completion {
                    command: NAME,
                    code,
                }),
            })
        },
    )
    .await?;
    match data.get(1) {
        Some(b) if b & 0x80 != 0 => Ok(()),
        Some(_) => Err(IpmiError::Unsupported("IPMI v2.0 (RMCP+)".into())),
        None => Err(malformed(NAME, "no authentication type byte")),
    }
}

/// Open Session for one cipher suite: the BMC's session id, or its refusal status.
async fn open_session(
    sock: &UdpSocket,
    addr: SocketAddr,
    timing: Timing,
    tag: u8,
    console_session_id: u32,
    suite: CipherSuite,
) -> Result<Result<Opened, u8>, IpmiError> {
    let mut req = vec![tag, PRIV_ADMIN, 0, 0];
    req.extend_from_slice(&console_session_id.to_le_bytes());
    for (kind, alg) in [
        (0x00, suite.auth_alg()),
        (0x01, suite.integrity_alg()),
        (0x02, suite.confidentiality_alg()),
    ] {
        req.extend_from_slice(&[kind, 0, 0, 0x08, alg, 0, 0, 0]);
    }
    let packet = encode_v2(payload::OPEN_SESSION_REQUEST, false, 0, 0, &req, None);
    exchange(
        sock,
        addr,
        timing,
        || packet.clone(),
        |buf| {
            let Ok(Frame::V2(f)) = decode(buf, 0) else {
                return None;
            };
            let p = f.payload;
            if f.payload_type != payload::OPEN_SESSION_RESPONSE || p.len() < 2 || p[0] != tag {
                return None;
            }
            if p[1] != 0 {
                return Some(Ok(Err(p[1])));
            }
            if p.len() < 12 || p[4..8] != console_session_id.to_le_bytes() {
                return Some(Err(malformed("open session", "short or foreign response")));
            }
            let bmc_session_id = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
            Some(Ok(Ok(Opened {
                suite,
                bmc_session_id,
            })))
        },
    )
    .await
}

/// RAKP 1–4: proves both sides know the password and derives the session keys. Returns the
/// keys and whether RAKP 4's integrity check value was right. A wrong password is answered
/// with RAKP 3 carrying an error, so the BMC frees the session slot at once.
async fn rakp(
    sock: &UdpSocket,
    target: &Target,
    timing: Timing,
    suite: CipherSuite,
    console_session_id: u32,
    bmc_session_id: u32,
) -> Result<(SessionKeys, bool), RakpFailure> {
    let user = target.username.as_bytes();
    let send_rakp3 = |status: u8, code: &[u8]| {
        let mut m = vec![0x02, status, 0, 0];
        m.extend_from_slice(&bmc_session_id.to_le_bytes());
        m.extend_from_slice(code);
        encode_v2(payload::RAKP3, false, 0, 0, &m, None)
    };
    // Any failure before RAKP 3 tells the BMC to drop the session Open Session allocated.
    let abort = async |err: IpmiError, status: u8| {
        let _ = sock.send(&send_rakp3(status, &[])).await;
        RakpFailure { err, keys: None }
    };
    if user.len() > 16 {
        let err = IpmiError::BadCredentials("IPMI user names are at most 16 bytes".into());
        return Err(abort(err, 0x0c).await);
    }
    let console_random: [u8; 16] = rand::random();
    let mut rakp1 = vec![0x01, 0, 0, 0];
    rakp1.extend_from_slice(&bmc_session_id.to_le_bytes());
    rakp1.extend_from_slice(&console_random);
    rakp1.extend_from_slice(&[ROLE, 0, 0, user.len() as u8]);
    rakp1.extend_from_slice(user);
    let packet = encode_v2(payload::RAKP1, false, 0, 0, &rakp1, None);
    let code_len = suite.digest_len();
    let rakp2 = exchange(
        sock,
        target.addr,
        timing,
        || packet.clone(),
        |buf| {
            let Ok(Frame::V2(f)) = decode(buf, 0) else {
                return None;
            };
            let p = f.payload;
            if f.payload_type != payload::RAKP2 || p.len() < 2 || p[0] != 0x01 {
                return None;
            }
            if p[1] != 0 {
                return Some(Err(status_error("RAKP 2", p[1])));
            }
            if p.len() < 40 + code_len {
                return Some(Err(malformed("RAKP 2", "short message")));
            }
            let mut rc = [0u8; 16];
            rc.copy_from_slice(&p[8..24]);
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&p[24..40]);
            Some(Ok((rc, guid, p[40..40 + code_len].to_vec())))
        },
    )
    .await;
    let (bmc_random, bmc_guid, code) = match rakp2 {
        Ok(v) => v,
        Err(err) => return Err(abort(err, 0x12).await),
    };
    let x = Exchange {
        suite,
        console_session_id,
        bmc_session_id,
        console_random,
        bmc_random,
        bmc_guid,
        role: ROLE,
        username: user,
        password: target.password.bytes(),
    };
    if !same(&x.rakp2_code(), &code) {
        // The BMC's answer to the abort (RAKP 4) changes nothing.
        let err = IpmiError::BadCredentials(format!(
            "the password for user '{}' is wrong",
            target.username
        ));
        return Err(abort(err, 0x0f).await);
    }
    let sik = x.sik();
    let keys = SessionKeys::derive(suite, &sik);
    let rakp3 = send_rakp3(0x00, &x.rakp3_code());
    let icv_len = suite.integrity_len();
    let icv = exchange(
        sock,
        target.addr,
        timing,
        || rakp3.clone(),
        |buf| {
            let Ok(Frame::V2(f)) = decode(buf, 0) else {
                return None;
            };
            let p = f.payload;
            if f.payload_type != payload::RAKP4 || p.len() < 2 || p[0] != 0x02 {
                return None;
            }
            if p[1] != 0 {
                return Some(Err(status_error("RAKP 4", p[1])));
            }
            if p.len() < 8 + icv_len {
                return Some(Err(malformed("RAKP 4", "short message")));
            }
            Some(Ok(p[8..8 + icv_len].to_vec()))
        },
    )
    .await;
    match icv {
        Ok(icv) => Ok((keys, same(&x.rakp4_icv(&sik), &icv))),
        Err(err) => Err(RakpFailure {
            err,
            keys: Some(keys),
        }),
    }
}

/// Why RAKP failed, and the session keys when RAKP 3 had gone out (the BMC may then hold an
/// active session that only Close Session ends).
struct RakpFailure {
    err: IpmiError,
    keys: Option<SessionKeys>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rakp_statuses_become_errors_an_operator_acts_on() {
        type Expect = fn(&IpmiError) -> bool;
        let cases: [(u8, Expect); 5] = [
            (0x01, |e| matches!(e, IpmiError::NoSessionSlot(_))),
            (0x0d, |e| matches!(e, IpmiError::BadCredentials(_))),
            (0x09, |e| matches!(e, IpmiError::PrivilegeTooLow(_))),
            (0x0a, |e| matches!(e, IpmiError::PrivilegeTooLow(_))),
            (0x12, |e| matches!(e, IpmiError::SessionRefused(_))),
        ];
        for (code, expected) in cases {
            let err = status_error("RAKP 2", code);
            assert!(expected(&err), "{code:#04x}: {err}");
            assert!(err.to_string().contains(status_text(code)), "{err}");
        }
        assert!(suite_refused(0x11) && suite_refused(0x04) && !suite_refused(0x0d));
    }
}
