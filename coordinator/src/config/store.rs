//! The store's section of the configuration: where the store is, how this coordinator shares
//! a PostgreSQL one with others, and where image content lives.

use super::FileConfig;
use crate::db::Database;
use crate::paths::DataDir;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::Duration;

/// Where the store is, and how this coordinator shares a PostgreSQL one with others.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// `postgres://USER@HOST/DB` for a region of several coordinators, or `sqlite://PATH`
    /// [default: the data directory's plinth.db]. The password is best kept out of the URL
    /// (PGPASSWORD, or a ~/.pgpass file).
    #[arg(long, env = "PLINTH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// This coordinator's name in the region's list and the job lease [default: hostname and
    /// listen address].
    #[arg(long, env = "PLINTH_COORDINATOR_NAME")]
    pub coordinator_name: Option<String>,
    /// How long the job lease lasts unless renewed: a dead holder's jobs resume elsewhere
    /// within about this long (1s to 5m) [default: 6s].
    #[arg(long, env = "PLINTH_JOB_LEASE_TTL")]
    pub job_lease_ttl: Option<String>,
    /// Where image content lives (`blobs/` and `staging/` under it, so that a commit is a
    /// rename on one filesystem). In a region of several coordinators, one directory every
    /// coordinator mounts at this path (NFS, CephFS...): then any of them serves any image
    /// and download link [default: the data directory's images/].
    #[arg(long, env = "PLINTH_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,
}

/// The store of the region in `dir`: `url` when given, else its coordinator.toml's
/// `database_url`, else its plinth.db (for the commands that take only a data directory).
pub fn database_in(dir: &DataDir, url: Option<String>) -> anyhow::Result<Database> {
    let url = match url {
        Some(url) => Some(url),
        None if dir.config().exists() => {
            let text = std::fs::read_to_string(dir.config())
                .with_context(|| format!("reading {}", dir.config().display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("parsing {}", dir.config().display()))?
                .database_url
        }
        None => None,
    };
    Database::from_url(url.as_deref(), &dir.database()).map_err(anyhow::Error::msg)
}

/// The store's settings, as `serve` uses them.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The data directory's SQLite file, or a PostgreSQL database.
    pub database: Database,
    /// This coordinator's name in the region (`Identity::new`).
    pub coordinator_name: Option<String>,
    pub job_lease_ttl: Duration,
    /// Where image content lives (`blobs/`, `staging/`); `shared` when configured, which
    /// a region of several coordinators must be for any of them to serve any image.
    pub images_dir: PathBuf,
    pub images_dir_shared: bool,
}

/// The store's settings, flag (or environment) over file over default.
pub(super) fn settings(
    args: &StoreArgs,
    file: &FileConfig,
    data_dir: &std::path::Path,
) -> anyhow::Result<StoreSettings> {
    let url = args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone());
    let database = Database::from_url(url.as_deref(), &DataDir::new(data_dir).database())
        .map_err(anyhow::Error::msg)?;
    let name = args
        .coordinator_name
        .clone()
        .or_else(|| file.coordinator_name.clone());
    if let Some(name) = &name
        && (name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control))
    {
        bail!("coordinator_name must be 1 to 200 printable characters");
    }
    let ttl = match args
        .job_lease_ttl
        .clone()
        .or_else(|| file.job_lease_ttl.clone())
    {
        None => crate::jobs::lease::DEFAULT_TTL,
        Some(text) => plinth_common::timefmt::parse_duration(&text)
            .map_err(anyhow::Error::msg)
            .context("job_lease_ttl")?,
    };
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ttl) {
        bail!("job_lease_ttl is out of range (1s to 5m)");
    }
    let shared = args.images_dir.clone().or_else(|| file.images_dir.clone());
    if let Some(dir) = &shared
        && !dir.is_absolute()
    {
        bail!("images_dir must be an absolute path, not {}", dir.display());
    }
    Ok(StoreSettings {
        database,
        coordinator_name: name,
        job_lease_ttl: ttl,
        images_dir_shared: shared.is_some(),
        images_dir: shared.unwrap_or_else(|| DataDir::new(data_dir).images()),
    })
}
