//! Agent configuration for `run`: a TOML file, `PLINTH_AGENT_*` variables, flags (flags win).

use anyhow::Context;
use plinth_common::serve::{LimitTexts, Limits};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/plinth-agent";
pub const DEFAULT_LIBVIRT_URI: &str = "qemu:///system";
pub const DEFAULT_API_PORT: u16 = 7444;
pub const DEFAULT_SYSFS_ROOT: &str = "/";
/// `/metrics` by default: not node_exporter's 9100 nor the libvirt exporter's 9177, which may
/// still run while a host moves over.
pub const DEFAULT_METRICS_PORT: u16 = 9445;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    libvirt_uri: Option<String>,
    accel: Option<String>,
    heartbeat_interval: Option<String>,
    migration_uri: Option<String>,
    migrate_uri: Option<String>,
    sysfs_root: Option<PathBuf>,
    shared_storage_dir: Option<PathBuf>,
    coordinator_urls: Option<Vec<String>>,
    metrics_listen: Option<String>,
    metrics_tls_cert: Option<PathBuf>,
    metrics_tls_key: Option<PathBuf>,
    metrics_tls_client_ca: Option<PathBuf>,
    metrics_deadline: Option<String>,
    metrics_step: Option<String>,
    metrics_history: Option<String>,
    ipmi: Option<bool>,
    ipmi_timeout: Option<String>,
    redfish_ca_file: Option<PathBuf>,
    tls_handshake_timeout: Option<String>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
    body_timeout: Option<String>,
    http2_keepalive_interval: Option<String>,
    http2_keepalive_timeout: Option<String>,
    http2_max_streams: Option<u32>,
    max_connections: Option<u32>,
    metrics_max_connections: Option<u32>,
}

/// Open connections the mTLS API holds by default (its one client is the coordinator).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 64;

/// Connection limits of the API listener and of `/metrics` (with its own cap).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitArgs {
    /// Time a client has from connecting to a finished TLS handshake [default: 10s].
    #[arg(long, env = "PLINTH_AGENT_TLS_HANDSHAKE_TIMEOUT")]
    pub tls_handshake_timeout: Option<String>,
    /// Time an HTTP/1 request head may take from its first byte [default: 30s].
    #[arg(long, env = "PLINTH_AGENT_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// A connection with no request in flight is closed after this long [default: 60s].
    #[arg(long, env = "PLINTH_AGENT_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// A request body that brings nothing for this long is refused with 408, and a response
    /// the client reads nothing of for this long is cut off [default: 60s].
    #[arg(long, env = "PLINTH_AGENT_BODY_TIMEOUT")]
    pub body_timeout: Option<String>,
    /// HTTP/2 keep-alive PING after this long without a frame from the client [default: 20s].
    #[arg(long, env = "PLINTH_AGENT_HTTP2_KEEPALIVE_INTERVAL")]
    pub http2_keepalive_interval: Option<String>,
    /// An HTTP/2 connection whose PING is not answered within this is closed [default: 20s].
    #[arg(long, env = "PLINTH_AGENT_HTTP2_KEEPALIVE_TIMEOUT")]
    pub http2_keepalive_timeout: Option<String>,
    /// Concurrent streams per HTTP/2 connection [default: 100].
    #[arg(long, env = "PLINTH_AGENT_HTTP2_MAX_STREAMS")]
    pub http2_max_streams: Option<u32>,
    /// Open connections to the mTLS API; more are closed at once and counted [default: 512].
    #[arg(long, env = "PLINTH_AGENT_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// Open connections to `/metrics` [default: 64].
    #[arg(long, env = "PLINTH_AGENT_METRICS_MAX_CONNECTIONS")]
    pub metrics_max_connections: Option<u32>,
}

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
pub struct RunArgs {
    /// TOML configuration file.
    #[arg(long, env = "PLINTH_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where `enroll` left the identity [default: /var/lib/plinth-agent].
    #[arg(long, env = "PLINTH_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// mTLS API listen address [default: the enrolled address, port 7444].
    #[arg(long, env = "PLINTH_AGENT_LISTEN")]
    pub listen: Option<String>,
    /// libvirt connection URI [default: qemu:///system].
    #[arg(long, env = "PLINTH_AGENT_LIBVIRT_URI")]
    pub libvirt_uri: Option<String>,
    /// How QEMU runs guests: `kvm`, `tcg` (emulation: slow, but it runs where nested KVM
    /// does not), or `auto`, KVM when libvirt offers it [default: auto].
    #[arg(long, env = "PLINTH_AGENT_ACCEL")]
    pub accel: Option<String>,
    /// How often to report to the coordinator [default: 10s].
    #[arg(long, env = "PLINTH_AGENT_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// The libvirt URI other hosts' libvirtd reach this host's at for live migration
    /// [default: qemu+tls://<enrolled address>/system].
    #[arg(long, env = "PLINTH_AGENT_MIGRATION_URI")]
    pub migration_uri: Option<String>,
    /// Where QEMU on this host takes in a migrating guest (`tcp://host[:port]`) [default: the
    /// address libvirt picks].
    #[arg(long, env = "PLINTH_AGENT_MIGRATE_URI")]
    pub migrate_uri: Option<String>,
    /// Where the host's `sys/` is read from for USB devices, GPUs and vGPUs (a fixture tree
    /// in tests) [default: /].
    #[arg(long, env = "PLINTH_AGENT_SYSFS_ROOT")]
    pub sysfs_root: Option<PathBuf>,
    /// A directory every host of the cluster mounts at this same path (NFS, GlusterFS,
    /// CephFS...): instance disks and the image cache live there, and live migrations leave
    /// the disks where they are [default: none; disks are local and copied].
    #[arg(long, env = "PLINTH_AGENT_SHARED_STORAGE_DIR")]
    pub shared_storage_dir: Option<PathBuf>,
    /// The region's coordinators (`https://IP:PORT`, comma-separated), in order of
    /// preference: heartbeats and renewals move to the next when one does not answer. One
    /// load balancer's URL does as well [default: the coordinator the agent enrolled with].
    #[arg(long, env = "PLINTH_AGENT_COORDINATOR_URLS", value_delimiter = ',')]
    pub coordinator_urls: Vec<String>,
    /// Prometheus `/metrics` listen address, or `off` [default: the enrolled address, port
    /// 9445].
    #[arg(long, env = "PLINTH_AGENT_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Serve `/metrics` over TLS with this certificate (PEM; needs --metrics-tls-key).
    #[arg(long, env = "PLINTH_AGENT_METRICS_TLS_CERT")]
    pub metrics_tls_cert: Option<PathBuf>,
    /// The key of --metrics-tls-cert (PEM).
    #[arg(long, env = "PLINTH_AGENT_METRICS_TLS_KEY")]
    pub metrics_tls_key: Option<PathBuf>,
    /// With TLS, accept only scrapers presenting a certificate from this CA (PEM).
    #[arg(long, env = "PLINTH_AGENT_METRICS_TLS_CLIENT_CA")]
    pub metrics_tls_client_ca: Option<PathBuf>,
    /// How long each collector may take per scrape; a slower one is left out [default: 2s].
    #[arg(long, env = "PLINTH_AGENT_METRICS_DEADLINE")]
    pub metrics_deadline: Option<String>,
    /// Time between two points of the host metrics history [default: 15s].
    #[arg(long, env = "PLINTH_AGENT_METRICS_STEP")]
    pub metrics_step: Option<String>,
    /// How far back the host metrics history reaches [default: 1h].
    #[arg(long, env = "PLINTH_AGENT_METRICS_HISTORY")]
    pub metrics_history: Option<String>,
    /// Whether this agent speaks IPMI to bare-metal BMCs (the coordinator assigns servers
    /// only to agents that do) [default: true].
    #[arg(long, env = "PLINTH_AGENT_IPMI")]
    pub ipmi: Option<bool>,
    /// How long one IPMI exchange may take, retransmissions included [default: 5s].
    #[arg(long, env = "PLINTH_AGENT_IPMI_TIMEOUT")]
    pub ipmi_timeout: Option<String>,
    /// PEM CA bundle BMCs' Redfish certificates are verified against, besides the system's
    /// roots (BMCs often carry certificates of their own CA).
    #[arg(long, env = "PLINTH_AGENT_REDFISH_CA_FILE")]
    pub redfish_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: the enrolled address on the default port.
    pub listen: Option<std::net::SocketAddr>,
    pub libvirt_uri: String,
    pub accel: crate::libvirt::Accel,
    pub heartbeat_interval: Duration,
    /// As configured; [`MigrationUris::or_default`] fills the libvirt URI in.
    pub migration: MigrationUris,
    /// The directory holding `sys/` (devices are read and sliced there).
    pub sysfs_root: PathBuf,
    pub shared_storage_dir: Option<PathBuf>,
    /// Empty: the enrolled coordinator.
    pub coordinator_urls: Vec<String>,
    pub metrics: MetricsConfig,
    /// `None`: this agent does not speak IPMI.
    pub ipmi: Option<crate::ipmi::IpmiSettings>,
    /// The extra CA bundle (PEM text) for BMCs' Redfish services.
    pub redfish_ca: Option<String>,
    /// The mTLS API listener's connection limits.
    pub limits: Limits,
}

/// Where `/metrics` listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    /// The enrolled address on [`DEFAULT_METRICS_PORT`].
    Default,
    At(std::net::SocketAddr),
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub listen: MetricsListen,
    pub tls: Option<crate::metrics::MetricsTls>,
    pub settings: crate::metrics::MetricsSettings,
    /// The `/metrics` listener's connection limits.
    pub limits: Limits,
}

/// Where other hosts reach this one for a live migration, as the facts report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationUris {
    /// The libvirt URI a source host's libvirtd connects to (`qemu+tls://host/system`).
    pub migration_uri: Option<String>,
    /// Where QEMU listens for the guest's memory and disks (`tcp://host`), when not the
    /// address libvirt would pick.
    pub migrate_uri: Option<String>,
}

impl MigrationUris {
    /// An unset libvirt URI becomes libvirt over TLS on `address` (the enrolled address, the
    /// one the region already reaches this host at); libvirt's default port.
    pub fn or_default(self, address: std::net::IpAddr) -> MigrationUris {
        let host = match address {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        MigrationUris {
            migration_uri: self
                .migration_uri
                .or_else(|| Some(format!("qemu+tls://{host}/system"))),
            migrate_uri: self.migrate_uri,
        }
    }
}

/// A URI given in configuration: `scheme://rest`, nothing blank or unprintable in it.
fn check_uri(field: &str, value: String) -> anyhow::Result<String> {
    let ok = value
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    anyhow::ensure!(ok, "{field} '{value}' is not a URI (scheme://host...)");
    Ok(value)
}

impl Config {
    pub fn resolve(args: &RunArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut metrics = metrics_config(args, &file)?;
        let limits = limit_texts(
            &args.limits,
            &file,
            args.limits.max_connections.or(file.max_connections),
        )
        .resolve(
            &Limits::with_max_connections(DEFAULT_MAX_CONNECTIONS),
            "max_connections",
        )?;
        metrics.limits = limit_texts(
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
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .map(|l| {
                l.parse()
                    .with_context(|| format!("listen address '{l}' is not IP:PORT"))
            })
            .transpose()?;
        let interval_text = args
            .heartbeat_interval
            .clone()
            .or(file.heartbeat_interval)
            .unwrap_or_else(|| "10s".into());
        let heartbeat_interval = plinth_common::timefmt::parse_duration(&interval_text)
            .map_err(anyhow::Error::msg)
            .context("heartbeat_interval")?;
        anyhow::ensure!(
            (Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&heartbeat_interval),
            "heartbeat_interval must be between 100ms and 1h"
        );
        let accel_text = args
            .accel
            .clone()
            .or(file.accel)
            .unwrap_or_else(|| "auto".into());
        let accel = crate::libvirt::Accel::parse(&accel_text)
            .with_context(|| format!("accel '{accel_text}' is none of auto, kvm, tcg"))?;
        let migration = MigrationUris {
            migration_uri: args
                .migration_uri
                .clone()
                .or(file.migration_uri)
                .map(|u| check_uri("migration_uri", u))
                .transpose()?,
            migrate_uri: args
                .migrate_uri
                .clone()
                .or(file.migrate_uri)
                .map(|u| check_uri("migrate_uri", u))
                .transpose()?,
        };
        let ipmi_timeout = plinth_common::timefmt::parse_duration(
            &args
                .ipmi_timeout
                .clone()
                .or(file.ipmi_timeout)
                .unwrap_or_else(|| "5s".into()),
        )
        .map_err(anyhow::Error::msg)
        .context("ipmi_timeout")?;
        anyhow::ensure!(
            (Duration::from_millis(200)..=Duration::from_secs(120)).contains(&ipmi_timeout),
            "ipmi_timeout must be between 200ms and 2m"
        );
        let ipmi = args.ipmi.or(file.ipmi).unwrap_or(true).then(|| {
            let mut s = crate::ipmi::IpmiSettings::default();
            s.timing.deadline = ipmi_timeout;
            s.timing.first_wait = s.timing.first_wait.min(ipmi_timeout / 4);
            s
        });
        let redfish_ca = args
            .redfish_ca_file
            .clone()
            .or(file.redfish_ca_file)
            .map(|p| {
                std::fs::read_to_string(&p)
                    .with_context(|| format!("reading redfish_ca_file {}", p.display()))
            })
            .transpose()?;
        Ok(Config {
            limits,
            metrics,
            ipmi,
            redfish_ca,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            listen,
            libvirt_uri: args
                .libvirt_uri
                .clone()
                .or(file.libvirt_uri)
                .unwrap_or_else(|| DEFAULT_LIBVIRT_URI.into()),
            accel,
            heartbeat_interval,
            migration,
            sysfs_root: args
                .sysfs_root
                .clone()
                .or(file.sysfs_root)
                .unwrap_or_else(|| DEFAULT_SYSFS_ROOT.into()),
            shared_storage_dir: args.shared_storage_dir.clone().or(file.shared_storage_dir),
            coordinator_urls: coordinator_urls(&args.coordinator_urls, file.coordinator_urls)?,
        })
    }
}

/// The configured coordinator URLs (the flag's over the file's), each an `https://` URL.
fn coordinator_urls(flag: &[String], file: Option<Vec<String>>) -> anyhow::Result<Vec<String>> {
    let urls = if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag.to_vec()
    };
    let urls: Vec<String> = urls
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    for url in &urls {
        let parsed = reqwest::Url::parse(url).with_context(|| {
            format!("coordinator_urls: {url:?} is not a URL like https://IP:PORT")
        })?;
        anyhow::ensure!(
            parsed.scheme() == "https" && parsed.host().is_some(),
            "coordinator_urls: {url:?} must be https://IP:PORT (the coordinator's mTLS API)"
        );
    }
    Ok(urls)
}

fn duration(field: &str, value: Option<String>, default: Duration) -> anyhow::Result<Duration> {
    match value {
        None => Ok(default),
        Some(text) => plinth_common::timefmt::parse_duration(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| field.to_string()),
    }
}

fn metrics_config(args: &RunArgs, file: &FileConfig) -> anyhow::Result<MetricsConfig> {
    use crate::metrics::{DEFAULT_DEADLINE, DEFAULT_HISTORY, DEFAULT_STEP, MetricsSettings};
    let listen = match args
        .metrics_listen
        .clone()
        .or_else(|| file.metrics_listen.clone())
    {
        None => MetricsListen::Default,
        Some(text) if text == "off" => MetricsListen::Off,
        Some(text) => MetricsListen::At(
            text.parse()
                .with_context(|| format!("metrics_listen '{text}' is not IP:PORT or off"))?,
        ),
    };
    let pick = |flag: &Option<PathBuf>, key: &Option<PathBuf>| flag.clone().or_else(|| key.clone());
    let cert = pick(&args.metrics_tls_cert, &file.metrics_tls_cert);
    let key = pick(&args.metrics_tls_key, &file.metrics_tls_key);
    let client_ca = pick(&args.metrics_tls_client_ca, &file.metrics_tls_client_ca);
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(crate::metrics::MetricsTls {
            cert,
            key,
            client_ca,
        }),
        (None, None) if client_ca.is_none() => None,
        _ => anyhow::bail!(
            "metrics TLS needs both metrics_tls_cert and metrics_tls_key (and metrics_tls_client_ca only with them)"
        ),
    };
    let deadline = duration(
        "metrics_deadline",
        args.metrics_deadline
            .clone()
            .or_else(|| file.metrics_deadline.clone()),
        DEFAULT_DEADLINE,
    )?;
    anyhow::ensure!(
        (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&deadline),
        "metrics_deadline must be between 10ms and 60s"
    );
    let step = duration(
        "metrics_step",
        args.metrics_step
            .clone()
            .or_else(|| file.metrics_step.clone()),
        DEFAULT_STEP,
    )?;
    anyhow::ensure!(
        (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&step),
        "metrics_step must be between 1s and 1h"
    );
    let history = duration(
        "metrics_history",
        args.metrics_history
            .clone()
            .or_else(|| file.metrics_history.clone()),
        DEFAULT_HISTORY,
    )?;
    anyhow::ensure!(
        history >= step && history <= Duration::from_secs(7 * 86_400),
        "metrics_history must be at least metrics_step and at most 7d"
    );
    anyhow::ensure!(
        history.as_secs() / step.as_secs() <= 100_000,
        "metrics_history / metrics_step is over 100000 points"
    );
    Ok(MetricsConfig {
        limits: Limits::with_max_connections(DEFAULT_METRICS_MAX_CONNECTIONS),
        listen,
        tls,
        settings: MetricsSettings {
            deadline,
            step,
            history,
            ..MetricsSettings::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RunArgs {
        RunArgs {
            config: None,
            data_dir: None,
            listen: None,
            libvirt_uri: None,
            accel: None,
            heartbeat_interval: None,
            migration_uri: None,
            migrate_uri: None,
            sysfs_root: None,
            shared_storage_dir: None,
            coordinator_urls: Vec::new(),
            metrics_listen: None,
            metrics_tls_cert: None,
            metrics_tls_key: None,
            metrics_tls_client_ca: None,
            metrics_deadline: None,
            metrics_step: None,
            metrics_history: None,
            ipmi: None,
            ipmi_timeout: None,
            redfish_ca_file: None,
            limits: LimitArgs::default(),
        }
    }

    #[test]
    fn connection_limits() {
        let defaults = Config::resolve(&args()).expect("defaults");
        assert_eq!(defaults.limits.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            defaults.metrics.limits.max_connections,
            DEFAULT_METRICS_MAX_CONNECTIONS
        );
        assert_eq!(defaults.limits.idle_timeout, Duration::from_secs(60));

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "header_read_timeout = \"3s\"\nmetrics_max_connections = 4\n",
        )
        .expect("write");
        let set = Config::resolve(&RunArgs {
            config: Some(file),
            limits: LimitArgs {
                header_read_timeout: Some("4s".into()),
                max_connections: Some(16),
                ..LimitArgs::default()
            },
            ..args()
        })
        .expect("set");
        assert_eq!(
            set.limits.header_read_timeout,
            Duration::from_secs(4),
            "a flag wins"
        );
        assert_eq!(
            set.metrics.limits.header_read_timeout,
            Duration::from_secs(4)
        );
        assert_eq!(set.limits.max_connections, 16);
        assert_eq!(set.metrics.limits.max_connections, 4);

        let err = Config::resolve(&RunArgs {
            limits: LimitArgs {
                idle_timeout: Some("1ms".into()),
                ..LimitArgs::default()
            },
            ..args()
        })
        .expect_err("too short");
        assert!(format!("{err:#}").contains("idle_timeout"), "{err:#}");
    }

    #[test]
    fn coordinator_urls_from_the_file_or_the_flag() {
        assert!(
            Config::resolve(&args())
                .expect("ok")
                .coordinator_urls
                .is_empty()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "coordinator_urls = [\"https://10.0.0.1:8443/\", \"https://10.0.0.2:8443\"]\n",
        )
        .expect("write");
        let from_file = Config::resolve(&RunArgs {
            config: Some(file.clone()),
            ..args()
        })
        .expect("ok");
        assert_eq!(
            from_file.coordinator_urls,
            ["https://10.0.0.1:8443", "https://10.0.0.2:8443"]
        );
        let flag = Config::resolve(&RunArgs {
            config: Some(file),
            coordinator_urls: vec!["https://lb.example:8443".into()],
            ..args()
        })
        .expect("ok");
        assert_eq!(
            flag.coordinator_urls,
            ["https://lb.example:8443"],
            "a flag wins"
        );
        for bad in ["http://10.0.0.1:8443", "10.0.0.1:8443"] {
            let err = Config::resolve(&RunArgs {
                coordinator_urls: vec![bad.into()],
                ..args()
            })
            .expect_err(bad);
            assert!(format!("{err:#}").contains("coordinator_urls"), "{err:#}");
        }
    }

    #[test]
    fn metrics_settings() {
        let defaults = Config::resolve(&args()).expect("defaults").metrics;
        assert_eq!(defaults.listen, MetricsListen::Default);
        assert_eq!(defaults.tls, None);
        assert_eq!(defaults.settings.step, Duration::from_secs(15));
        assert_eq!(defaults.settings.history, Duration::from_secs(3600));
        assert_eq!(defaults.settings.deadline, Duration::from_secs(2));

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "metrics_listen = \"127.0.0.1:9100\"\nmetrics_step = \"5s\"\n\
             metrics_history = \"10m\"\nmetrics_tls_cert = \"/c.pem\"\nmetrics_tls_key = \"/k.pem\"\n",
        )
        .expect("write");
        let set = Config::resolve(&RunArgs {
            config: Some(file),
            metrics_deadline: Some("250ms".into()),
            ..args()
        })
        .expect("file")
        .metrics;
        assert_eq!(
            set.listen,
            MetricsListen::At("127.0.0.1:9100".parse().expect("addr"))
        );
        assert_eq!(set.settings.step, Duration::from_secs(5));
        assert_eq!(set.settings.history, Duration::from_secs(600));
        assert_eq!(set.settings.deadline, Duration::from_millis(250));
        assert_eq!(set.tls.map(|t| t.key), Some(PathBuf::from("/k.pem")));

        let off = Config::resolve(&RunArgs {
            metrics_listen: Some("off".into()),
            ..args()
        })
        .expect("off");
        assert_eq!(off.metrics.listen, MetricsListen::Off);

        let bad = [
            (
                "listen",
                RunArgs {
                    metrics_listen: Some("9100".into()),
                    ..args()
                },
            ),
            (
                "half tls",
                RunArgs {
                    metrics_tls_cert: Some("/c".into()),
                    ..args()
                },
            ),
            (
                "step",
                RunArgs {
                    metrics_step: Some("100ms".into()),
                    ..args()
                },
            ),
            (
                "history",
                RunArgs {
                    metrics_history: Some("5s".into()),
                    ..args()
                },
            ),
            (
                "deadline",
                RunArgs {
                    metrics_deadline: Some("2m".into()),
                    ..args()
                },
            ),
        ];
        for (label, a) in bad {
            assert!(Config::resolve(&a).is_err(), "{label}");
        }
    }

    #[test]
    fn ipmi_is_on_unless_turned_off() {
        assert!(Config::resolve(&args()).expect("defaults").ipmi.is_some());
        let off = Config::resolve(&RunArgs {
            ipmi: Some(false),
            ..args()
        })
        .expect("off");
        assert!(off.ipmi.is_none());
        let err = Config::resolve(&RunArgs {
            ipmi_timeout: Some("10ms".into()),
            ..args()
        })
        .expect_err("too short");
        assert!(err.to_string().contains("ipmi_timeout"), "{err}");
    }

    #[test]
    fn migration_uris_from_file_flags_and_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "migration_uri = \"qemu+tcp://10.0.0.7/system\"\nmigrate_uri = \"tcp://10.1.0.7\"\n",
        )
        .expect("write");
        let from_file = Config::resolve(&RunArgs {
            config: Some(file.clone()),
            ..args()
        })
        .expect("file");
        assert_eq!(
            from_file.migration.migration_uri.as_deref(),
            Some("qemu+tcp://10.0.0.7/system")
        );
        assert_eq!(
            from_file.migration.migrate_uri.as_deref(),
            Some("tcp://10.1.0.7")
        );
        let flag = Config::resolve(&RunArgs {
            config: Some(file),
            migrate_uri: Some("tcp://10.2.0.7:49152".into()),
            ..args()
        })
        .expect("flag");
        assert_eq!(
            flag.migration.migrate_uri.as_deref(),
            Some("tcp://10.2.0.7:49152"),
            "a flag wins over the file"
        );

        let defaults = Config::resolve(&args()).expect("defaults");
        assert_eq!(defaults.sysfs_root, std::path::Path::new("/"));
        let unset = defaults.migration;
        assert_eq!(unset, MigrationUris::default());
        let cases = [
            ("v4", "10.0.0.9", "qemu+tls://10.0.0.9/system"),
            ("v6", "fd00::9", "qemu+tls://[fd00::9]/system"),
        ];
        for (label, addr, want) in cases {
            let filled = unset.clone().or_default(addr.parse().expect("ip"));
            assert_eq!(filled.migration_uri.as_deref(), Some(want), "{label}");
            assert_eq!(filled.migrate_uri, None, "{label}");
        }
        let kept = from_file.migration.clone().or_default([10, 9, 9, 9].into());
        assert_eq!(kept, from_file.migration, "configured values stay");
    }

    #[test]
    fn refuses_what_is_not_a_uri() {
        for bad in ["10.0.0.7", "qemu+tls://", "tcp://a b", "://x"] {
            let err = Config::resolve(&RunArgs {
                migrate_uri: Some(bad.into()),
                ..args()
            })
            .expect_err(bad);
            assert!(err.to_string().contains("migrate_uri"), "{bad}: {err}");
        }
    }
}
