//! Coordinator configuration: a TOML file, overridden by `PLINTH_*` environment variables,
//! overridden by flags (clap reads flag-then-environment; the file fills what both leave).

mod store;

pub use store::{StoreArgs, StoreSettings, database_in};

use crate::baremetal::sync::BaremetalSettings;
use crate::hosts::prometheus::PrometheusConfig;
use crate::maintenance::drain::DrainSettings;
use crate::scheduler::{Overcommit, Policy};
use crate::tenants::sessions::SessionSettings;
use anyhow::{Context, bail};
use plinth_common::serve::{LimitTexts, Limits};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";
pub const DEFAULT_AGENT_CERT_TTL: &str = "30d";
pub const DEFAULT_MAX_TOKEN_TTL: &str = "365d";
/// The longest `max_token_ttl` (and `agent_cert_ttl`) the coordinator takes: ten years.
const MAX_TTL_SETTING: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Requests an agent sent just before it renewed still arrive with the old certificate.
pub const DEFAULT_RENEWED_CERT_GRACE: Duration = Duration::from_secs(60);
/// How long `serve` waits for its jobs after SIGTERM before exiting anyway.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub agent_cert_ttl: Option<String>,
    pub import_ca_file: Option<PathBuf>,
    pub cpu_overcommit: Option<f64>,
    pub memory_overcommit: Option<f64>,
    pub placement_policy: Option<String>,
    pub drain_parallelism: Option<u32>,
    pub drain_cluster_parallelism: Option<u32>,
    pub migration_timeout: Option<String>,
    pub migration_attempts: Option<u32>,
    pub migration_bandwidth_mib_s: Option<u64>,
    pub prometheus_url: Option<String>,
    pub prometheus_selector: Option<String>,
    pub prometheus_rate_window: Option<String>,
    pub baremetal_sync_interval: Option<String>,
    pub baremetal_sync_concurrency: Option<u32>,
    pub baremetal_health_interval: Option<String>,
    pub max_token_ttl: Option<String>,
    pub session_ttl: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub renewed_cert_grace: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub metrics_listen: Option<String>,
    pub metrics_tls_cert: Option<PathBuf>,
    pub metrics_tls_key: Option<PathBuf>,
    pub metrics_tls_client_ca: Option<PathBuf>,
    pub tls_handshake_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub http2_keepalive_interval: Option<String>,
    pub http2_keepalive_timeout: Option<String>,
    pub http2_max_streams: Option<u32>,
    pub max_connections: Option<u32>,
    pub metrics_max_connections: Option<u32>,
    pub database_url: Option<String>,
    pub coordinator_name: Option<String>,
    pub job_lease_ttl: Option<String>,
    pub images_dir: Option<PathBuf>,
}

/// Connection limits of the API listener (and of `/metrics`, with its own cap).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitArgs {
    /// Time a client has from connecting to a finished TLS handshake [default: 10s].
    #[arg(long, env = "PLINTH_TLS_HANDSHAKE_TIMEOUT")]
    pub tls_handshake_timeout: Option<String>,
    /// Time an HTTP/1 request head may take from its first byte [default: 30s].
    #[arg(long, env = "PLINTH_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// A connection with no request in flight is closed after this long [default: 60s].
    #[arg(long, env = "PLINTH_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// A request body (an upload) that brings nothing for this long is refused with 408, and
    /// a response the client reads nothing of for this long is cut off [default: 60s].
    #[arg(long, env = "PLINTH_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,
    /// HTTP/2 keep-alive PING after this long without a frame from the client [default: 20s].
    #[arg(long, env = "PLINTH_HTTP2_KEEPALIVE_INTERVAL")]
    pub http2_keepalive_interval: Option<String>,
    /// An HTTP/2 connection whose PING is not answered within this is closed [default: 20s].
    #[arg(long, env = "PLINTH_HTTP2_KEEPALIVE_TIMEOUT")]
    pub http2_keepalive_timeout: Option<String>,
    /// Concurrent streams per HTTP/2 connection [default: 100].
    #[arg(long, env = "PLINTH_HTTP2_MAX_STREAMS")]
    pub http2_max_streams: Option<u32>,
    /// Open connections to the API; more are closed at once and counted [default: 4096,
    /// lowered to fit the open-files limit].
    #[arg(long, env = "PLINTH_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// Open connections to `/metrics` [default: 64].
    #[arg(long, env = "PLINTH_METRICS_MAX_CONNECTIONS")]
    pub metrics_max_connections: Option<u32>,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 64;

/// The limit settings, flag (or environment) over file, for a listener whose cap is `max`.
fn limit_texts(args: &LimitArgs, file: &FileConfig, max: Option<u32>) -> LimitTexts {
    let pick = |a: &Option<String>, f: &Option<String>| a.clone().or_else(|| f.clone());
    LimitTexts {
        tls_handshake_timeout: pick(&args.tls_handshake_timeout, &file.tls_handshake_timeout),
        header_read_timeout: pick(&args.header_read_timeout, &file.header_read_timeout),
        idle_timeout: pick(&args.idle_timeout, &file.idle_timeout),
        body_timeout: pick(&args.body_timeout, &file.body_timeout),
        http2_keepalive_interval: pick(
            &args.http2_keepalive_interval,
            &file.http2_keepalive_interval,
        ),
        http2_keepalive_timeout: pick(&args.http2_keepalive_timeout, &file.http2_keepalive_timeout),
        http2_max_streams: args.http2_max_streams.or(file.http2_max_streams),
        max_connections: max,
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "PLINTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory made by `init` (CA, certificates, database).
    #[arg(long, env = "PLINTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTPS listen address [default: 0.0.0.0:7443].
    #[arg(long, env = "PLINTH_LISTEN")]
    pub listen: Option<String>,
    /// Lifetime of agent certificates, e.g. 30d [default: 30d].
    #[arg(long, env = "PLINTH_AGENT_CERT_TTL")]
    pub agent_cert_ttl: Option<String>,
    /// Extra CA certificates (PEM) trusted for https image imports, besides the system's.
    #[arg(long, env = "PLINTH_IMPORT_CA_FILE")]
    pub import_ca_file: Option<PathBuf>,
    /// vCPUs placed per host core [default: 4].
    #[arg(long, env = "PLINTH_CPU_OVERCOMMIT")]
    pub cpu_overcommit: Option<f64>,
    /// Memory placed per byte of host memory [default: 1].
    #[arg(long, env = "PLINTH_MEMORY_OVERCOMMIT")]
    pub memory_overcommit: Option<f64>,
    /// How placement picks among suitable hosts: random, spread or pack [default: random].
    #[arg(long, env = "PLINTH_PLACEMENT_POLICY")]
    pub placement_policy: Option<String>,
    /// Live migrations at once out of one host in a drain [default: 2].
    #[arg(long, env = "PLINTH_DRAIN_PARALLELISM")]
    pub drain_parallelism: Option<u32>,
    /// Live migrations at once within one cluster, all drains together [default: 8].
    #[arg(long, env = "PLINTH_DRAIN_CLUSTER_PARALLELISM")]
    pub drain_cluster_parallelism: Option<u32>,
    /// After this long a live migration is aborted and the guest stays where it was [default: 10m].
    #[arg(long, env = "PLINTH_MIGRATION_TIMEOUT")]
    pub migration_timeout: Option<String>,
    /// Tries per instance (on a new target each time) before a drain leaves it [default: 3].
    #[arg(long, env = "PLINTH_MIGRATION_ATTEMPTS")]
    pub migration_attempts: Option<u32>,
    /// A cap on each live migration's bandwidth, MiB/s [default: none].
    #[arg(long, env = "PLINTH_MIGRATION_BANDWIDTH_MIB_S")]
    pub migration_bandwidth_mib_s: Option<u64>,
    /// A Prometheus server scraping the agents (`http://host:9090`): host metrics history is
    /// then read from it [default: none; from the agents' own rings].
    #[arg(long, env = "PLINTH_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Label matchers picking one host's agent in Prometheus; `{host_id}`, `{ip}` and
    /// `{ip_re}` are filled in [default: instance=~"{ip_re}:[0-9]+"].
    #[arg(long, env = "PLINTH_PROMETHEUS_SELECTOR")]
    pub prometheus_selector: Option<String>,
    /// The range Prometheus takes rates over, at least 4 scrape intervals [default: 1m].
    #[arg(long, env = "PLINTH_PROMETHEUS_RATE_WINDOW")]
    pub prometheus_rate_window: Option<String>,
    /// How often every bare-metal server's power is polled [default: 60s].
    #[arg(long, env = "PLINTH_BAREMETAL_SYNC_INTERVAL")]
    pub baremetal_sync_interval: Option<String>,
    /// BMCs one agent polls at once in a power sweep [default: 16].
    #[arg(long, env = "PLINTH_BAREMETAL_SYNC_CONCURRENCY")]
    pub baremetal_sync_concurrency: Option<u32>,
    /// How often every bare-metal server's sensors and event log are read [default: 60s].
    #[arg(long, env = "PLINTH_BAREMETAL_HEALTH_INTERVAL")]
    pub baremetal_health_interval: Option<String>,
    /// The longest TTL an API token may be given, by admins and tenants alike [default: 365d].
    #[arg(long, env = "PLINTH_MAX_TOKEN_TTL")]
    pub max_token_ttl: Option<String>,
    /// A browser session (`POST /v1/session`) ends this long after sign-in however busy it
    /// is, and never after its token does (1s to 30d) [default: 12h].
    #[arg(long, env = "PLINTH_SESSION_TTL")]
    pub session_ttl: Option<String>,
    /// A browser session with no request for this long ends (1s to session_ttl)
    /// [default: 1h].
    #[arg(long, env = "PLINTH_SESSION_IDLE_TIMEOUT")]
    pub session_idle_timeout: Option<String>,
    /// How long an agent's certificate stays accepted after the agent renewed it (requests
    /// already on their way) [default: 60s].
    #[arg(long, env = "PLINTH_RENEWED_CERT_GRACE")]
    pub renewed_cert_grace: Option<String>,
    /// On SIGTERM, how long running jobs get to stop before the process exits anyway; what
    /// is cut off resumes at the next start (1s to 10m) [default: 30s].
    #[arg(long, env = "PLINTH_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<String>,
    /// Serve Prometheus `/metrics` on this address, e.g. 127.0.0.1:9444 (plain HTTP unless
    /// --metrics-tls-cert is given) [default: off].
    #[arg(long, env = "PLINTH_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub metrics_tls: crate::metrics::config::TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The store, this coordinator's name and lease, and where image content lives.
    pub store: StoreSettings,
    pub listen: SocketAddr,
    pub agent_cert_ttl: Duration,
    pub renewed_cert_grace: Duration,
    pub import_ca_file: Option<PathBuf>,
    pub overcommit: Overcommit,
    pub policy: Policy,
    pub drains: DrainSettings,
    pub prometheus: Option<PrometheusConfig>,
    pub baremetal: BaremetalSettings,
    pub max_token_ttl: Duration,
    /// How long browser sessions live.
    pub sessions: SessionSettings,
    /// How long `serve` waits for its jobs after SIGTERM (`shutdown_timeout`).
    pub shutdown_timeout: Duration,
    /// The API listener's connection limits.
    pub limits: Limits,
    /// `/metrics`, when configured.
    pub metrics_listen: Option<SocketAddr>,
    /// TLS for `/metrics`; plain HTTP without.
    pub metrics_tls: Option<plinth_common::tls::metrics::MetricsTls>,
    pub metrics_limits: Limits,
}

/// A bare-metal sweep's interval (`name`), the flag's or file's text over `default`: 200ms to
/// 24h.
fn sweep_interval(name: &str, text: Option<String>, default: Duration) -> anyhow::Result<Duration> {
    let interval = match text {
        None => default,
        Some(text) => plinth_common::timefmt::parse_duration(&text)
            .map_err(anyhow::Error::msg)
            .context(name.to_string())?,
    };
    if !(Duration::from_millis(200)..=Duration::from_secs(86_400)).contains(&interval) {
        bail!("{name} is out of range (200ms to 24h)");
    }
    Ok(interval)
}

/// `session_ttl` and `session_idle_timeout`, flag (or environment) over file over default.
fn session_settings(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<SessionSettings> {
    let read = |name: &str, arg: &Option<String>, f: &Option<String>, default: Duration| match arg
        .clone()
        .or_else(|| f.clone())
    {
        None => Ok(default),
        Some(text) => plinth_common::timefmt::parse_duration(&text)
            .map_err(anyhow::Error::msg)
            .context(name.to_string()),
    };
    let ttl = read(
        "session_ttl",
        &args.session_ttl,
        &file.session_ttl,
        crate::tenants::sessions::DEFAULT_SESSION_TTL,
    )?;
    if !(Duration::from_secs(1)..=Duration::from_secs(30 * 86_400)).contains(&ttl) {
        bail!("session_ttl is out of range (1s to 30d)");
    }
    let idle = read(
        "session_idle_timeout",
        &args.session_idle_timeout,
        &file.session_idle_timeout,
        crate::tenants::sessions::DEFAULT_SESSION_IDLE.min(ttl),
    )?;
    if !(Duration::from_secs(1)..=ttl).contains(&idle) {
        bail!("session_idle_timeout is out of range (1s to session_ttl)");
    }
    Ok(SessionSettings { ttl, idle })
}

fn prometheus_config(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<Option<PrometheusConfig>> {
    let Some(url) = args
        .prometheus_url
        .clone()
        .or_else(|| file.prometheus_url.clone())
    else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(char::is_whitespace)
    {
        bail!("prometheus_url '{url}' is not an http:// or https:// URL");
    }
    let selector = args
        .prometheus_selector
        .clone()
        .or_else(|| file.prometheus_selector.clone())
        .unwrap_or_else(|| crate::hosts::prometheus::DEFAULT_SELECTOR.into());
    if selector.trim().is_empty() {
        bail!(
            "prometheus_selector is empty: give label matchers such as instance=~\"{{ip_re}}:[0-9]+\""
        );
    }
    let rate_window = match args
        .prometheus_rate_window
        .clone()
        .or_else(|| file.prometheus_rate_window.clone())
    {
        None => crate::hosts::prometheus::DEFAULT_RATE_WINDOW,
        Some(text) => plinth_common::timefmt::parse_duration(&text)
            .map_err(anyhow::Error::msg)
            .context("prometheus_rate_window")?,
    };
    if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&rate_window) {
        bail!("prometheus_rate_window is out of range (1s to 24h)");
    }
    Ok(Some(PrometheusConfig {
        url,
        selector,
        rate_window,
    }))
}

impl Config {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let sessions = session_settings(args, &file)?;
        let prometheus = prometheus_config(args, &file)?;
        let limits = limit_texts(
            &args.limits,
            &file,
            args.limits.max_connections.or(file.max_connections),
        )
        .resolve(
            &Limits::with_max_connections(DEFAULT_MAX_CONNECTIONS),
            "max_connections",
        )?;
        let metrics_limits = limit_texts(
            &args.limits,
            &file,
            args.limits
                .metrics_max_connections
                .or(file.metrics_max_connections),
        )
        .resolve(
            &Limits::with_max_connections(DEFAULT_METRICS_MAX_CONNECTIONS),
            "metrics_max_connections",
        )?;
        let metrics_listen = match args.metrics_listen.clone().or(file.metrics_listen.clone()) {
            None => None,
            Some(text) if text == "off" => None,
            Some(text) => Some(
                text.parse()
                    .with_context(|| format!("metrics_listen '{text}' is not IP:PORT or off"))?,
            ),
        };
        let metrics_tls = crate::metrics::config::tls(&args.metrics_tls, &file)?;
        let Some(data_dir) = args.data_dir.clone().or(file.data_dir.clone()) else {
            bail!(
                "no data directory: pass --data-dir, set PLINTH_DATA_DIR, or set data_dir in the config file"
            );
        };
        let store = store::settings(&args.store, &file, &data_dir)?;
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse()
            .with_context(|| format!("listen address '{listen_text}' is not IP:PORT"))?;
        let ttl_text = args
            .agent_cert_ttl
            .clone()
            .or(file.agent_cert_ttl)
            .unwrap_or_else(|| DEFAULT_AGENT_CERT_TTL.into());
        let agent_cert_ttl = plinth_common::timefmt::parse_duration(&ttl_text)
            .map_err(anyhow::Error::msg)
            .context("agent_cert_ttl")?;
        if agent_cert_ttl < Duration::from_secs(10) {
            bail!("agent_cert_ttl {ttl_text} is too short (at least 10s)");
        }
        if agent_cert_ttl > MAX_TTL_SETTING {
            bail!("agent_cert_ttl {ttl_text} is too long (at most 3650d)");
        }
        let max_token_ttl_text = args
            .max_token_ttl
            .clone()
            .or(file.max_token_ttl)
            .unwrap_or_else(|| DEFAULT_MAX_TOKEN_TTL.into());
        let max_token_ttl = plinth_common::timefmt::parse_duration(&max_token_ttl_text)
            .map_err(anyhow::Error::msg)
            .context("max_token_ttl")?;
        if !(Duration::from_secs(60)..=MAX_TTL_SETTING).contains(&max_token_ttl) {
            bail!("max_token_ttl {max_token_ttl_text} is out of range (1m to 3650d)");
        }
        let renewed_cert_grace = match args.renewed_cert_grace.clone().or(file.renewed_cert_grace) {
            None => DEFAULT_RENEWED_CERT_GRACE,
            Some(text) => plinth_common::timefmt::parse_duration(&text)
                .map_err(anyhow::Error::msg)
                .context("renewed_cert_grace")?,
        };
        if renewed_cert_grace > Duration::from_secs(3600) {
            bail!("renewed_cert_grace is out of range (0s to 1h)");
        }
        let shutdown_timeout = match args.shutdown_timeout.clone().or(file.shutdown_timeout) {
            None => DEFAULT_SHUTDOWN_TIMEOUT,
            Some(text) => plinth_common::timefmt::parse_duration(&text)
                .map_err(anyhow::Error::msg)
                .context("shutdown_timeout")?,
        };
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&shutdown_timeout) {
            bail!("shutdown_timeout is out of range (1s to 10m)");
        }
        let ratio = |name: &str, value: Option<f64>, default: f64| -> anyhow::Result<f64> {
            let v = value.unwrap_or(default);
            if !(0.1..=100.0).contains(&v) {
                bail!("{name} {v} is out of range (0.1 to 100)");
            }
            Ok(v)
        };
        let defaults = Overcommit::default();
        let overcommit = Overcommit {
            cpu: ratio(
                "cpu_overcommit",
                args.cpu_overcommit.or(file.cpu_overcommit),
                defaults.cpu,
            )?,
            memory: ratio(
                "memory_overcommit",
                args.memory_overcommit.or(file.memory_overcommit),
                defaults.memory,
            )?,
        };
        let policy = match args.placement_policy.clone().or(file.placement_policy) {
            None => Policy::default(),
            Some(text) => Policy::parse(&text).with_context(|| {
                format!("placement_policy '{text}' is not random, spread or pack")
            })?,
        };
        let count = |name: &str, value: Option<u32>, default: u32| -> anyhow::Result<u32> {
            let v = value.unwrap_or(default);
            if !(1..=64).contains(&v) {
                bail!("{name} {v} is out of range (1 to 64)");
            }
            Ok(v)
        };
        let defaults = DrainSettings::default();
        let migration_timeout = match args.migration_timeout.clone().or(file.migration_timeout) {
            None => defaults.migration_timeout,
            Some(text) => plinth_common::timefmt::parse_duration(&text)
                .map_err(anyhow::Error::msg)
                .context("migration_timeout")?,
        };
        if !(Duration::from_secs(5)..=Duration::from_secs(86_400)).contains(&migration_timeout) {
            bail!("migration_timeout is out of range (5s to 24h)");
        }
        let drains = DrainSettings {
            parallelism: count(
                "drain_parallelism",
                args.drain_parallelism.or(file.drain_parallelism),
                defaults.parallelism,
            )?,
            cluster_parallelism: count(
                "drain_cluster_parallelism",
                args.drain_cluster_parallelism
                    .or(file.drain_cluster_parallelism),
                defaults.cluster_parallelism,
            )?,
            migration_timeout,
            attempts: count(
                "migration_attempts",
                args.migration_attempts.or(file.migration_attempts),
                defaults.attempts,
            )?,
            bandwidth_mib_s: args
                .migration_bandwidth_mib_s
                .or(file.migration_bandwidth_mib_s)
                .filter(|b| *b > 0),
        };
        let bm_defaults = BaremetalSettings::default();
        let sync_interval = sweep_interval(
            "baremetal_sync_interval",
            args.baremetal_sync_interval
                .clone()
                .or(file.baremetal_sync_interval),
            bm_defaults.sync_interval,
        )?;
        let health_interval = sweep_interval(
            "baremetal_health_interval",
            args.baremetal_health_interval
                .clone()
                .or(file.baremetal_health_interval),
            bm_defaults.health_interval,
        )?;
        let sync_concurrency = args
            .baremetal_sync_concurrency
            .or(file.baremetal_sync_concurrency)
            .unwrap_or(bm_defaults.sync_concurrency);
        if !(1..=256).contains(&sync_concurrency) {
            bail!("baremetal_sync_concurrency {sync_concurrency} is out of range (1 to 256)");
        }
        let baremetal = BaremetalSettings {
            sync_interval,
            sync_concurrency,
            health_interval,
            ..bm_defaults
        };
        Ok(Config {
            limits,
            metrics_listen,
            metrics_tls,
            metrics_limits,
            baremetal,
            data_dir,
            store,
            listen,
            agent_cert_ttl,
            renewed_cert_grace,
            import_ca_file: args.import_ca_file.clone().or(file.import_ca_file),
            overcommit,
            policy,
            drains,
            prometheus,
            max_token_ttl,
            sessions,
            shutdown_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>, listen: Option<&str>) -> ServeArgs {
        ServeArgs {
            config,
            data_dir: None,
            listen: listen.map(str::to_string),
            agent_cert_ttl: None,
            import_ca_file: None,
            cpu_overcommit: None,
            memory_overcommit: None,
            placement_policy: None,
            drain_parallelism: None,
            drain_cluster_parallelism: None,
            migration_timeout: None,
            migration_attempts: None,
            migration_bandwidth_mib_s: None,
            prometheus_url: None,
            prometheus_selector: None,
            prometheus_rate_window: None,
            baremetal_sync_interval: None,
            baremetal_sync_concurrency: None,
            baremetal_health_interval: None,
            max_token_ttl: None,
            session_ttl: None,
            session_idle_timeout: None,
            renewed_cert_grace: None,
            shutdown_timeout: None,
            metrics_listen: None,
            metrics_tls: Default::default(),
            limits: LimitArgs::default(),
            store: StoreArgs::default(),
        }
    }

    #[test]
    fn connection_limits() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/d\"\nidle_timeout = \"5s\"\nmax_connections = 100\nmetrics_listen = \"127.0.0.1:9444\"\n",
        )?;
        let mut a = args(Some(path.clone()), None);
        a.limits.idle_timeout = Some("7s".into());
        a.limits.metrics_max_connections = Some(8);
        let c = Config::resolve(&a)?;
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(7), "a flag wins");
        assert_eq!(c.limits.max_connections, 100);
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(10));
        assert_eq!(c.metrics_limits.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.metrics_limits.max_connections, 8);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9444".parse()?));

        let mut d = args(None, None);
        d.data_dir = Some("/d".into());
        let c = Config::resolve(&d)?;
        assert_eq!(c.limits.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            c.metrics_limits.max_connections,
            DEFAULT_METRICS_MAX_CONNECTIONS
        );
        assert_eq!(c.metrics_listen, None, "off by default");

        let mut bad = args(Some(path.clone()), None);
        bad.limits.body_timeout = Some("forever".into());
        let err = Config::resolve(&bad).expect_err("bad duration");
        assert!(format!("{err:#}").contains("body_timeout"), "{err:#}");
        let mut bad = args(Some(path), None);
        bad.limits.metrics_max_connections = Some(0);
        let err = Config::resolve(&bad).expect_err("zero");
        assert!(
            format!("{err:#}").contains("metrics_max_connections"),
            "{err:#}"
        );
        Ok(())
    }

    #[test]
    fn prometheus_settings() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/d\"\nprometheus_url = \"http://127.0.0.1:9090\"\n",
        )?;
        let p = Config::resolve(&args(Some(path.clone()), None))?
            .prometheus
            .expect("configured");
        assert_eq!(p.url, "http://127.0.0.1:9090");
        assert_eq!(p.selector, crate::hosts::prometheus::DEFAULT_SELECTOR);
        assert_eq!(p.rate_window, Duration::from_secs(60));
        let mut a = args(Some(path.clone()), None);
        a.prometheus_rate_window = Some("2m".into());
        a.prometheus_selector = Some("job=\"plinth\",host=\"{host_id}\"".into());
        let p = Config::resolve(&a)?.prometheus.expect("configured");
        assert_eq!(p.rate_window, Duration::from_secs(120));
        assert_eq!(p.selector, "job=\"plinth\",host=\"{host_id}\"");
        let mut bad = args(Some(path), None);
        bad.prometheus_url = Some("127.0.0.1:9090".into());
        assert!(Config::resolve(&bad).is_err());
        let mut none = args(None, None);
        none.data_dir = Some("/d".into());
        assert!(Config::resolve(&none)?.prometheus.is_none());
        Ok(())
    }

    #[test]
    fn flags_override_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/d\"\nlisten = \"127.0.0.1:1\"\nagent_cert_ttl = \"1h\"\n",
        )?;
        let from_file = Config::resolve(&args(Some(path.clone()), None))?;
        assert_eq!(from_file.listen.port(), 1);
        assert_eq!(from_file.agent_cert_ttl, Duration::from_secs(3600));
        let overridden = Config::resolve(&args(Some(path), Some("127.0.0.1:2")))?;
        assert_eq!(overridden.listen.port(), 2);
        assert_eq!(overridden.data_dir, PathBuf::from("/d"));
        Ok(())
    }

    #[test]
    fn images_dir_defaults_to_the_data_directory_and_must_be_absolute() -> anyhow::Result<()> {
        let mut a = args(None, None);
        a.data_dir = Some("/d".into());
        let default = Config::resolve(&a)?.store;
        assert_eq!(default.images_dir, PathBuf::from("/d/images"));
        assert!(!default.images_dir_shared);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/d\"\nimages_dir = \"/srv/plinth-images\"\n",
        )?;
        let shared = Config::resolve(&args(Some(path.clone()), None))?.store;
        assert_eq!(shared.images_dir, PathBuf::from("/srv/plinth-images"));
        assert!(shared.images_dir_shared);
        let mut relative = args(Some(path), None);
        relative.store.images_dir = Some("images".into());
        let err = Config::resolve(&relative).expect_err("relative");
        assert!(format!("{err:#}").contains("images_dir"), "{err:#}");
        Ok(())
    }

    #[test]
    fn session_settings_bounds() -> anyhow::Result<()> {
        let mut a = args(None, None);
        a.data_dir = Some("/d".into());
        assert_eq!(
            Config::resolve(&a)?.sessions,
            SessionSettings::default(),
            "12h absolute, 1h idle"
        );
        let cases = [
            ("tiny", Some("2s"), Some("1s"), Some((2, 1))),
            (
                "short ttl lowers the default idle",
                Some("10m"),
                None,
                Some((600, 600)),
            ),
            ("idle over ttl", Some("1h"), Some("2h"), None),
            ("zero", Some("0s"), None, None),
            ("over 30 days", Some("31d"), None, None),
            ("unreadable", Some("soon"), None, None),
        ];
        for (label, ttl, idle, want) in cases {
            a.session_ttl = ttl.map(str::to_string);
            a.session_idle_timeout = idle.map(str::to_string);
            let got = Config::resolve(&a)
                .ok()
                .map(|c| (c.sessions.ttl.as_secs(), c.sessions.idle.as_secs()));
            assert_eq!(got, want, "{label}");
        }
        Ok(())
    }

    #[test]
    fn max_token_ttl_bounds() -> anyhow::Result<()> {
        let mut a = args(None, None);
        a.data_dir = Some("/d".into());
        assert_eq!(
            Config::resolve(&a)?.max_token_ttl,
            Duration::from_secs(365 * 86_400),
            "default"
        );
        let cases = [
            ("a day", "1d", Some(Duration::from_secs(86_400))),
            (
                "ten years",
                "3650d",
                Some(Duration::from_secs(3650 * 86_400)),
            ),
            ("too short", "30s", None),
            ("over ten years", "3651d", None),
            ("the issue's value", "99999999999d", None),
            ("overflows u64 seconds", "213503982334602d", None),
        ];
        for (label, text, want) in cases {
            a.max_token_ttl = Some(text.into());
            let got = Config::resolve(&a).ok().map(|c| c.max_token_ttl);
            assert_eq!(got, want, "{label}");
        }
        Ok(())
    }

    #[test]
    fn shutdown_timeout_bounds() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data_dir = \"/d\"\nshutdown_timeout = \"2m\"\n")?;
        let mut a = args(Some(path), None);
        assert_eq!(
            Config::resolve(&a)?.shutdown_timeout,
            Duration::from_secs(120),
            "from the file"
        );
        let cases = [
            ("the least", "1s", Some(Duration::from_secs(1))),
            ("the most", "10m", Some(Duration::from_secs(600))),
            ("too short", "500ms", None),
            ("too long", "11m", None),
            ("not a duration", "soon", None),
        ];
        for (label, text, want) in cases {
            a.shutdown_timeout = Some(text.into());
            let got = Config::resolve(&a).ok().map(|c| c.shutdown_timeout);
            assert_eq!(got, want, "{label}");
        }
        a.config = None;
        a.data_dir = Some("/d".into());
        a.shutdown_timeout = None;
        assert_eq!(
            Config::resolve(&a)?.shutdown_timeout,
            DEFAULT_SHUTDOWN_TIMEOUT,
            "default"
        );
        Ok(())
    }

    #[test]
    fn baremetal_health_interval_from_file_flag_and_bounds() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/d\"\nbaremetal_health_interval = \"5m\"\n",
        )?;
        let mut a = args(Some(path), None);
        let health = |a: &ServeArgs| Config::resolve(a).ok().map(|c| c.baremetal.health_interval);
        assert_eq!(health(&a), Some(Duration::from_secs(300)), "from the file");
        let cases = [
            ("a flag over the file", "1s", Some(Duration::from_secs(1))),
            ("the least", "200ms", Some(Duration::from_millis(200))),
            ("too short", "100ms", None),
            ("too long", "2d", None),
            ("not a duration", "often", None),
        ];
        for (label, text, want) in cases {
            a.baremetal_health_interval = Some(text.into());
            assert_eq!(health(&a), want, "{label}");
        }
        a.config = None;
        a.data_dir = Some("/d".into());
        a.baremetal_health_interval = None;
        assert_eq!(health(&a), Some(Duration::from_secs(60)), "default");
        Ok(())
    }

    #[test]
    fn unknown_keys_and_missing_data_dir_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "data_dri = \"/d\"\n")?;
        assert!(Config::resolve(&args(Some(path), None)).is_err());
        assert!(Config::resolve(&args(None, None)).is_err());
        Ok(())
    }
}
