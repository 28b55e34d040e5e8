//! What a listener tolerates from its clients: how long each phase of a connection may take,
//! how many connections and HTTP/2 streams it holds. Both daemons read these from their
//! configuration (flags, environment, TOML) through [`LimitTexts`].

use anyhow::{Context, bail};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Bounds on one listener's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From accept to a finished TLS handshake.
    pub handshake_timeout: Duration,
    /// From the first byte of an HTTP/1 request head to its end.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no request head arriving is closed after
    /// this long (HTTP/1 keep-alive and HTTP/2 alike; also a connection that never sends).
    pub idle_timeout: Duration,
    /// A request body that brings no byte, or a response the client takes no byte of, for
    /// this long ends the request (408, or the connection closed).
    pub body_timeout: Duration,
    /// HTTP/2 PING after this long without a frame from the client...
    pub h2_keepalive_interval: Duration,
    /// ...and the connection closed when its ACK has not come within this.
    pub h2_keepalive_timeout: Duration,
    /// Concurrent streams one HTTP/2 connection may open.
    pub h2_max_streams: u32,
    /// Open connections; the next is closed right after accept (before any TLS work) and
    /// counted as refused.
    pub max_connections: usize,
}

impl Limits {
    /// The defaults with another connection cap.
    pub fn with_max_connections(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            h2_keepalive_interval: Duration::from_secs(20),
            h2_keepalive_timeout: Duration::from_secs(20),
            h2_max_streams: 100,
            max_connections: 1024,
        }
    }
}

/// The limit settings as configuration gives them (flag, else environment, else file), before
/// parsing. `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct LimitTexts {
    pub tls_handshake_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub http2_keepalive_interval: Option<String>,
    pub http2_keepalive_timeout: Option<String>,
    pub http2_max_streams: Option<u32>,
    pub max_connections: Option<u32>,
}

const SHORTEST: Duration = Duration::from_millis(100);

fn duration(
    key: &str,
    text: &Option<String>,
    default: Duration,
    range: RangeInclusive<Duration>,
) -> anyhow::Result<Duration> {
    let Some(text) = text else {
        return Ok(default);
    };
    let value = crate::timefmt::parse_duration(text)
        .map_err(anyhow::Error::msg)
        .with_context(|| key.to_string())?;
    if !range.contains(&value) {
        bail!(
            "{key} {text} is out of range ({:?} to {:?})",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

fn count(
    key: &str,
    value: Option<u32>,
    default: u64,
    range: RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    let v = value.map_or(default, u64::from);
    if !range.contains(&v) {
        bail!(
            "{key} {v} is out of range ({} to {})",
            range.start(),
            range.end()
        );
    }
    Ok(v)
}

impl LimitTexts {
    /// Parses and checks every setting; `defaults` fills what is unset. Errors name the key;
    /// the connection cap's is `cap_key` (`max_connections`, `metrics_max_connections`).
    pub fn resolve(&self, defaults: &Limits, cap_key: &str) -> anyhow::Result<Limits> {
        let secs = Duration::from_secs;
        Ok(Limits {
            handshake_timeout: duration(
                "tls_handshake_timeout",
                &self.tls_handshake_timeout,
                defaults.handshake_timeout,
                SHORTEST..=secs(300),
            )?,
            header_read_timeout: duration(
                "header_read_timeout",
                &self.header_read_timeout,
                defaults.header_read_timeout,
                SHORTEST..=secs(600),
            )?,
            idle_timeout: duration(
                "idle_timeout",
                &self.idle_timeout,
                defaults.idle_timeout,
                SHORTEST..=secs(86_400),
            )?,
            body_timeout: duration(
                "body_timeout",
                &self.body_timeout,
                defaults.body_timeout,
                SHORTEST..=secs(3600),
            )?,
            h2_keepalive_interval: duration(
                "http2_keepalive_interval",
                &self.http2_keepalive_interval,
                defaults.h2_keepalive_interval,
                secs(1)..=secs(3600),
            )?,
            h2_keepalive_timeout: duration(
                "http2_keepalive_timeout",
                &self.http2_keepalive_timeout,
                defaults.h2_keepalive_timeout,
                SHORTEST..=secs(300),
            )?,
            h2_max_streams: count(
                "http2_max_streams",
                self.http2_max_streams,
                u64::from(defaults.h2_max_streams),
                1..=10_000,
            )? as u32,
            max_connections: count(
                cap_key,
                self.max_connections,
                defaults.max_connections as u64,
                1..=1_000_000,
            )? as usize,
        })
    }
}

/// Raises this process's soft limit on open files to its hard limit (the kernel refuses
/// connections with EMFILE past it) and answers the soft limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// Files kept for everything but client connections: a quarter of the limit, at least 256
/// (the store, image files, connections to agents and BMCs, logs).
pub fn fd_budget(fd_limit: u64) -> u64 {
    fd_limit.saturating_sub((fd_limit / 4).max(256))
}

/// Lowers the listeners' connection caps, in proportion, until together they fit in
/// [`fd_budget`] of `fd_limit`; answers whether any was lowered.
pub fn fit_under(fd_limit: u64, listeners: &mut [&mut Limits]) -> bool {
    let budget = fd_budget(fd_limit).max(listeners.len() as u64);
    let total: u64 = listeners.iter().map(|l| l.max_connections as u64).sum();
    if total <= budget {
        return false;
    }
    for l in listeners.iter_mut() {
        let share = (l.max_connections as u64 * budget / total).max(1);
        l.max_connections = share as usize;
    }
    true
}

/// At start-up: raises the open-files limit, then lowers the listeners' caps to fit under it
/// when they do not; logs both.
pub fn fit_to_fd_limit(listeners: &mut [&mut Limits]) {
    match raise_fd_limit() {
        Ok(limit) => {
            tracing::info!(
                open_files = limit,
                "Open-files limit set to its hard limit."
            );
            if fit_under(limit, listeners) {
                let caps: Vec<usize> = listeners.iter().map(|l| l.max_connections).collect();
                tracing::warn!(open_files = limit, max_connections = ?caps,
                    "Connection caps lowered to leave a quarter of the open-files limit to the rest; raise LimitNOFILE to keep them.");
            }
        }
        Err(err) => tracing::warn!(error = %err,
            "Could not read or raise the open-files limit; connection caps stay as configured."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_fills_defaults_and_names_bad_keys() {
        let defaults = Limits::with_max_connections(4096);
        assert_eq!(
            LimitTexts::default()
                .resolve(&defaults, "max_connections")
                .expect("defaults"),
            defaults
        );
        let set = LimitTexts {
            idle_timeout: Some("2s".into()),
            max_connections: Some(50),
            ..LimitTexts::default()
        }
        .resolve(&defaults, "max_connections")
        .expect("set");
        assert_eq!(set.idle_timeout, Duration::from_secs(2));
        assert_eq!(set.max_connections, 50);
        assert_eq!(set.header_read_timeout, Duration::from_secs(30));

        let bad = [
            (
                "tls_handshake_timeout",
                LimitTexts {
                    tls_handshake_timeout: Some("1h".into()),
                    ..LimitTexts::default()
                },
            ),
            (
                "header_read_timeout",
                LimitTexts {
                    header_read_timeout: Some("soon".into()),
                    ..LimitTexts::default()
                },
            ),
            (
                "idle_timeout",
                LimitTexts {
                    idle_timeout: Some("10ms".into()),
                    ..LimitTexts::default()
                },
            ),
            (
                "body_timeout",
                LimitTexts {
                    body_timeout: Some("2h".into()),
                    ..LimitTexts::default()
                },
            ),
            (
                "http2_keepalive_interval",
                LimitTexts {
                    http2_keepalive_interval: Some("100ms".into()),
                    ..LimitTexts::default()
                },
            ),
            (
                "http2_max_streams",
                LimitTexts {
                    http2_max_streams: Some(0),
                    ..LimitTexts::default()
                },
            ),
            (
                "max_connections",
                LimitTexts {
                    max_connections: Some(0),
                    ..LimitTexts::default()
                },
            ),
        ];
        for (key, texts) in bad {
            let err = texts.resolve(&defaults, "max_connections").expect_err(key);
            assert!(format!("{err:#}").contains(key), "{key}: {err:#}");
        }
    }

    #[test]
    fn caps_fit_under_the_file_limit() {
        let cases = [
            // (label, fd limit, caps, lowered, caps after)
            ("plenty", 524_288, vec![4096, 64], false, vec![4096, 64]),
            ("container 1024", 1024, vec![4096, 64], true, vec![756, 11]),
            ("tiny", 16, vec![4096, 64], true, vec![1, 1]),
        ];
        for (label, fd_limit, caps, lowered, want) in cases {
            let mut limits: Vec<Limits> =
                caps.into_iter().map(Limits::with_max_connections).collect();
            let mut refs: Vec<&mut Limits> = limits.iter_mut().collect();
            assert_eq!(fit_under(fd_limit, &mut refs), lowered, "{label}");
            let got: Vec<usize> = limits.iter().map(|l| l.max_connections).collect();
            assert_eq!(got, want, "{label}");
        }
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise_fd_limit().expect("rlimit");
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .expect("getrlimit");
        assert_eq!((now, soft), (hard, hard));
    }
}
