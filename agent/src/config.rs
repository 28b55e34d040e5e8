//! Agent configuration for `run`: a TOML file, `PLINTH_AGENT_*` variables, flags (flags win).

use anyhow::Context;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "/var/lib/plinth-agent";
pub const DEFAULT_LIBVIRT_URI: &str = "qemu:///system";
pub const DEFAULT_API_PORT: u16 = 7444;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    libvirt_uri: Option<String>,
    heartbeat_interval: Option<String>,
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
    /// How often to report to the coordinator [default: 10s].
    #[arg(long, env = "PLINTH_AGENT_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: the enrolled address on the default port.
    pub listen: Option<std::net::SocketAddr>,
    pub libvirt_uri: String,
    pub heartbeat_interval: Duration,
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
        Ok(Config {
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
            heartbeat_interval,
        })
    }
}
