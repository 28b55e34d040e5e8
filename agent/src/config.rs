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
    migration_uri: Option<String>,
    migrate_uri: Option<String>,
    ipmi: Option<bool>,
    ipmi_timeout: Option<String>,
    redfish_ca_file: Option<PathBuf>,
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
    /// The libvirt URI other hosts' libvirtd reach this host's at for live migration
    /// [default: qemu+tls://<enrolled address>/system].
    #[arg(long, env = "PLINTH_AGENT_MIGRATION_URI")]
    pub migration_uri: Option<String>,
    /// Where QEMU on this host takes in a migrating guest (`tcp://host[:port]`) [default: the
    /// address libvirt picks].
    #[arg(long, env = "PLINTH_AGENT_MIGRATE_URI")]
    pub migrate_uri: Option<String>,
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
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: the enrolled address on the default port.
    pub listen: Option<std::net::SocketAddr>,
    pub libvirt_uri: String,
    pub heartbeat_interval: Duration,
    /// As configured; [`MigrationUris::or_default`] fills the libvirt URI in.
    pub migration: MigrationUris,
    /// `None`: this agent does not speak IPMI.
    pub ipmi: Option<crate::ipmi::IpmiSettings>,
    /// The extra CA bundle (PEM text) for BMCs' Redfish services.
    pub redfish_ca: Option<String>,
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
            heartbeat_interval,
            migration,
        })
    }
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
            heartbeat_interval: None,
            migration_uri: None,
            migrate_uri: None,
            ipmi: None,
            ipmi_timeout: None,
            redfish_ca_file: None,
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

        let unset = Config::resolve(&args()).expect("defaults").migration;
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
