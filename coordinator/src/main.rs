//! `plinth-coordinator`: init a region, serve it, issue enrollment tokens, or run a whole dev
//! region on this machine.

use anyhow::Context;
use clap::{Parser, Subcommand};
use plinth_coordinator::config::{Config, DEFAULT_LISTEN, ServeArgs};
use plinth_coordinator::paths::DataDir;
use plinth_coordinator::serve;
use plinth_coordinator::tenants::api::tokens;
use plinth_coordinator::{api, dev, init, shutdown};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "plinth-coordinator",
    version,
    about = "plinth coordinator: API, store, CA for agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a region: CA, coordinator certificates, database, first admin token.
    Init {
        #[arg(long, env = "PLINTH_DATA_DIR")]
        data_dir: PathBuf,
        /// Extra names or IPs for the server certificate (agents connect by these).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Listen address written into the generated config.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
        /// The store: `postgres://USER@HOST/DB` (an existing, empty database) or
        /// `sqlite://PATH`, written into the generated config [default: DATA_DIR/plinth.db].
        #[arg(long, env = "PLINTH_DATABASE_URL")]
        database_url: Option<String>,
        /// A region for several coordinators (PostgreSQL): also print a join key for
        /// `plinth-coordinator join` on the others.
        #[arg(long)]
        ha: bool,
    },
    /// Make this machine one more coordinator of a region in PostgreSQL, with a join key from
    /// `init --ha` or `join-key`.
    Join {
        #[arg(long, env = "PLINTH_DATA_DIR")]
        data_dir: PathBuf,
        /// The region's database, as its other coordinators have it.
        #[arg(long, env = "PLINTH_DATABASE_URL")]
        database_url: String,
        /// The join key (`pjk-...`).
        #[arg(long, env = "PLINTH_JOIN_KEY")]
        key: String,
        /// Extra names or IPs for this coordinator's server certificate.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Listen address written into the generated config.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
    },
    /// Print a new join key for the region of this coordinator (the previous one stops
    /// working).
    JoinKey {
        #[arg(long, env = "PLINTH_DATA_DIR")]
        data_dir: PathBuf,
        /// How long the key lasts (1m to 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The store [default: the data directory's coordinator.toml's database_url].
        #[arg(long, env = "PLINTH_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Serve the HTTPS API.
    Serve(ServeArgs),
    /// Enrollment tokens for agents.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Issue new coordinator server and client certificates (same names, plus any --san); a
    /// running coordinator switches to them within seconds, and agents refuse the old ones
    /// after the grace.
    RotateCerts {
        #[arg(long, env = "PLINTH_DATA_DIR")]
        data_dir: PathBuf,
        /// Extra names or IPs for the new server certificate (e.g. a new listen address).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// How long agents still accept the old certificates (10s to 7d).
        #[arg(long, default_value = "10m")]
        grace: String,
        /// The store [default: the data directory's coordinator.toml's database_url, else its
        /// plinth.db].
        #[arg(long, env = "PLINTH_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Start a whole region on this machine (any loopback address, 127.0.0.1 by default):
    /// coordinator, hosts on private libvirtd daemons, simulated BMCs and a demo.
    Dev(dev::DevArgs),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a one-time enrollment token.
    Create {
        /// How long the token stays valid (at most 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Makes and prints a join key for the region of `dir`.
async fn print_join_key(
    dir: &DataDir,
    database_url: Option<String>,
    ttl: std::time::Duration,
) -> anyhow::Result<()> {
    let database = plinth_coordinator::config::database_in(dir, database_url)?;
    if !matches!(database, plinth_coordinator::db::Database::Postgres(_)) {
        anyhow::bail!("a SQLite region has one coordinator: nothing can join it");
    }
    let store =
        plinth_coordinator::db::Store::connect(&database, &plinth_coordinator::jobs::Jobs::new())
            .await?;
    let key = plinth_coordinator::join::issue(dir, &store, ttl).await?;
    let until = plinth_common::timefmt::expiry_after(plinth_common::timefmt::now_ms(), ttl)
        .map(plinth_common::timefmt::rfc3339)
        .unwrap_or_default();
    println!("Join key (shown once, valid until {until}):\n  {key}");
    println!(
        "On each other coordinator: plinth-coordinator join --data-dir DIR --database-url URL --key <the key above>"
    );
    Ok(())
}

/// Agents dial the listen address and check it against the server certificate: say so when
/// the certificate does not name it, with the command that adds it.
fn warn_unnamed_listen(config: &Config) {
    let dir = DataDir::new(&config.data_dir);
    let ip = config.listen.ip();
    if let Ok(false) = plinth_coordinator::own_certs::server_cert_names(&dir, ip) {
        tracing::warn!(
            listen = %config.listen,
            "The server certificate does not name the listen address, so agents that dial it \
             refuse the connection. Add it: plinth-coordinator rotate-certs --data-dir {} --san {ip}",
            config.data_dir.display()
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plinth_common::fsutil::private_umask();
    plinth_common::tls::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => print!("{}", api::openapi_json()),
        Command::Init {
            data_dir,
            sans,
            listen,
            database_url,
            ha,
        } => {
            let dir = DataDir::new(&data_dir);
            if ha && !database_url.as_deref().is_some_and(is_postgres) {
                anyhow::bail!(
                    "--ha needs --database-url postgres://...: coordinators share the region through PostgreSQL"
                );
            }
            let done = init::init(&dir, &sans, &listen, database_url.as_deref()).await?;
            println!("Initialised {}.", data_dir.display());
            println!(
                "Admin token (shown once, store it now):\n  {}",
                done.admin_token
            );
            println!("CA hash for agents: {}", done.ca_hash);
            if ha {
                print_join_key(&dir, database_url, plinth_coordinator::join::DEFAULT_TTL).await?;
            }
            println!(
                "Next: plinth-coordinator serve --config {}",
                dir.config().display()
            );
        }
        Command::Join {
            data_dir,
            database_url,
            key,
            sans,
            listen,
        } => {
            let dir = DataDir::new(&data_dir);
            let member = plinth_coordinator::init::Member {
                dir: &dir,
                sans: &sans,
                listen: &listen,
                database_url: Some(&database_url),
            };
            let ca_hash = plinth_coordinator::join::join(&member, &key).await?;
            println!("Joined the region in {}.", data_dir.display());
            println!("CA hash for agents: {ca_hash}");
            println!(
                "Next: plinth-coordinator serve --config {}",
                dir.config().display()
            );
        }
        Command::JoinKey {
            data_dir,
            ttl,
            database_url,
        } => {
            let ttl = plinth_common::timefmt::parse_duration(&ttl)
                .map_err(anyhow::Error::msg)
                .context("--ttl")?;
            if !(std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(7 * 86_400))
                .contains(&ttl)
            {
                anyhow::bail!("--ttl must be 1m to 7d");
            }
            let dir = DataDir::new(&data_dir);
            if !dir.is_initialised() {
                anyhow::bail!("{} is not initialised", data_dir.display());
            }
            print_join_key(&dir, database_url, ttl).await?;
        }
        Command::Serve(args) => {
            plinth_common::logging::init();
            let mut config = Config::resolve(&args)?;
            plinth_common::serve::fit_to_fd_limit(&mut [
                &mut config.limits,
                &mut config.metrics_limits,
            ]);
            warn_unnamed_listen(&config);
            let running = serve::start(&config).await?;
            // Readiness for systemd (Type=notify): the listener is bound and the store open.
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            shutdown::signalled().await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
            tracing::info!(deadline = ?config.shutdown_timeout, "Shutting down.");
            running.shutdown(config.shutdown_timeout).await;
            tracing::info!("Shut down.");
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    ttl,
                    description,
                    serve,
                },
        } => {
            let config = Config::resolve(&serve)?;
            let state = serve::load_state(&config).await?;
            let ttl = tokens::bounded_ttl(&ttl, tokens::MAX_ENROLLMENT_TTL)
                .map_err(|m| anyhow::anyhow!("--ttl {m}"))?;
            let description = plinth_common::text::check(plinth_common::text::NOTE, &description)
                .map_err(|m| anyhow::anyhow!("--description {m}"))?;
            let token = tokens::issue_enrollment_token(
                &state,
                // At most 7 days: the milliseconds fit.
                i64::try_from(ttl.as_millis())?,
                description,
                "cli",
                None,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", token.token);
            eprintln!("Expires {}. On the host:", token.expires_at);
            eprintln!(
                "  plinth-agent enroll --coordinator https://<coordinator-address>:{} --token {} --ca-hash {} --cluster <cluster>",
                config.listen.port(),
                token.token,
                token.ca_hash
            );
        }
        Command::RotateCerts {
            data_dir,
            sans,
            grace,
            database_url,
        } => {
            let grace = plinth_common::timefmt::parse_duration(&grace)
                .map_err(anyhow::Error::msg)
                .context("--grace")?;
            // A running coordinator looks for new files every 5 s: it must have switched
            // before agents refuse the old ones.
            if !(std::time::Duration::from_secs(10)..=std::time::Duration::from_secs(7 * 86_400))
                .contains(&grace)
            {
                anyhow::bail!("--grace must be 10s to 7d");
            }
            let dir = DataDir::new(&data_dir);
            if !dir.is_initialised() {
                anyhow::bail!("{} is not initialised", data_dir.display());
            }
            let database = plinth_coordinator::config::database_in(&dir, database_url)?;
            let done = plinth_coordinator::own_certs::rotate(&dir, &database, grace, &sans).await?;
            println!(
                "New server certificate {}, client certificate {}.",
                done.server_serial, done.client_serial
            );
            println!(
                "A running coordinator uses them within seconds; agents refuse the {} earlier one(s) from {} (their next heartbeat after that).",
                done.revoked,
                plinth_common::timefmt::rfc3339(done.refused_from)
            );
        }
        Command::Dev(args) => {
            plinth_common::logging::init();
            dev::run(args).await?;
        }
    }
    Ok(())
}
