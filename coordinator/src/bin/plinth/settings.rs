//! Where the CLI finds its coordinator: flags win over `PLINTH_*` environment variables, which
//! win over `~/.config/plinth/cli.toml` (keys `url`, `token`, `ca`).

use anyhow::{Context, bail};
use reqwest::Url;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Connection flags, accepted before or after the subcommand.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct ConnArgs {
    /// Coordinator URL, e.g. https://10.0.0.1:7443 [env: PLINTH_URL].
    #[arg(long, global = true)]
    url: Option<String>,
    /// Bearer token [env: PLINTH_TOKEN].
    #[arg(long, global = true)]
    token: Option<String>,
    /// Path to the region CA certificate (PEM) [env: PLINTH_CA].
    #[arg(long, global = true, value_name = "PATH")]
    ca: Option<String>,
}

/// Everything needed to reach the coordinator, checked and loaded.
pub struct Settings {
    pub url: Url,
    pub token: String,
    pub ca_pem: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    token: Option<String>,
    ca: Option<String>,
}

/// A setting's value and where it came from, for error messages.
struct Found {
    value: String,
    from: String,
}

/// One setting's name in each of its three sources.
struct Setting {
    what: &'static str,
    flag: &'static str,
    env: &'static str,
    key: &'static str,
}

const URL: Setting = Setting {
    what: "coordinator URL",
    flag: "--url",
    env: "PLINTH_URL",
    key: "url",
};
const TOKEN: Setting = Setting {
    what: "API token",
    flag: "--token",
    env: "PLINTH_TOKEN",
    key: "token",
};
const CA: Setting = Setting {
    what: "region CA certificate",
    flag: "--ca",
    env: "PLINTH_CA",
    key: "ca",
};

/// `$XDG_CONFIG_HOME/plinth/cli.toml`, else `~/.config/plinth/cli.toml`.
fn config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("plinth").join("cli.toml"))
}

fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The first of flag, environment and file that has a value.
fn pick(
    setting: &Setting,
    flag: Option<String>,
    file: Option<String>,
    file_path: Option<&Path>,
) -> anyhow::Result<Found> {
    let file_name = file_path.map_or_else(
        || "~/.config/plinth/cli.toml".to_string(),
        |p| p.display().to_string(),
    );
    let candidates = [
        (non_empty(flag), setting.flag.to_string()),
        (
            non_empty(std::env::var(setting.env).ok()),
            setting.env.to_string(),
        ),
        (non_empty(file), format!("`{}` in {file_name}", setting.key)),
    ];
    if let Some((Some(value), from)) = candidates.into_iter().find(|(v, _)| v.is_some()) {
        return Ok(Found { value, from });
    }
    bail!(
        "no {} given: pass {}, set {}, or set `{}` in {file_name}",
        setting.what,
        setting.flag,
        setting.env,
        setting.key
    )
}

fn parse_url(found: &Found) -> anyhow::Result<Url> {
    let url = Url::parse(found.value.trim()).with_context(|| {
        format!(
            "{} ({}) is not a URL like https://10.0.0.1:7443",
            found.value, found.from
        )
    })?;
    if url.scheme() != "https" || url.host_str().is_none() {
        bail!(
            "{} ({}) must be an https:// URL with a host",
            found.value,
            found.from
        );
    }
    Ok(url)
}

/// A token must fit in an `Authorization` header.
fn check_token(found: &Found) -> anyhow::Result<String> {
    let token = found.value.trim();
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "the API token ({}) contains spaces or control characters",
            found.from
        );
    }
    Ok(token.to_string())
}

/// `~/x` becomes `$HOME/x`: config files are not expanded by a shell.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn read_ca(found: &Found) -> anyhow::Result<String> {
    let path = expand_home(found.value.trim());
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the region CA certificate {} ({})",
            path.display(),
            found.from
        )
    })
}

/// Resolves and loads the connection settings.
pub fn resolve(args: &ConnArgs) -> anyhow::Result<Settings> {
    let path = config_path();
    let file = load_file(path.as_deref())?;
    let url = pick(&URL, args.url.clone(), file.url, path.as_deref())?;
    let token = pick(&TOKEN, args.token.clone(), file.token, path.as_deref())?;
    let ca = pick(&CA, args.ca.clone(), file.ca, path.as_deref())?;
    Ok(Settings {
        url: parse_url(&url)?,
        token: check_token(&token)?,
        ca_pem: read_ca(&ca)?,
    })
}
