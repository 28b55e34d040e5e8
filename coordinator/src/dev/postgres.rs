//! A throwaway PostgreSQL server in a temporary directory (`initdb` + `postgres`, Debian's
//! package, as the `postgres` user when run as root), for the store's tests on PostgreSQL and
//! the HA tests. It listens on one loopback address and a free port, trusts local clients, and
//! skips fsync (its data dies with it). The postmaster is started from a thread of its own
//! that never ends, with the parent-death signal set: if the process that owns it dies in any
//! way, the kernel stops the server too; [`TempPostgres::stop`] stops it by pid first.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a fast shutdown (SIGINT) is given before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// The directory of PostgreSQL's server programs: the newest under /usr/lib/postgresql.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (scripts/install-deps.sh)")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no PostgreSQL server under /usr/lib/postgresql (scripts/install-deps.sh)")
}

/// Why this machine cannot start a [`TempPostgres`], if so.
pub fn unavailable() -> Option<String> {
    bin_dir().err().map(|e| e.to_string())
}

/// A running throwaway server; stopped when dropped.
pub struct TempPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    address: Ipv4Addr,
    port: u16,
    child: Option<Child>,
}

/// The user the server runs as: `postgres` when this process is root (initdb refuses root).
pub fn server_user() -> anyhow::Result<Option<(u32, u32)>> {
    if super::libvirtd::effective_uid()? != 0 {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")?
        .context("no postgres user (install Debian's postgresql package)")?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

fn as_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

impl TempPostgres {
    /// Makes a new cluster and starts it on `address` (a free port).
    pub fn start(address: Ipv4Addr) -> anyhow::Result<TempPostgres> {
        let bin = bin_dir()?;
        let user = server_user()?;
        let dir = tempfile::Builder::new().prefix("plinth-pg-").tempdir()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        let out = as_user(&mut Command::new(bin.join("initdb")), user)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let port = TcpListener::bind((address, 0))?.local_addr()?.port();
        let mut server = TempPostgres {
            bin: bin.clone(),
            dir,
            address,
            port,
            child: None,
        };
        server.child = Some(spawn_detached_from_thread(
            server.command(&bin, &data, user),
        )?);
        server.wait_ready()?;
        Ok(server)
    }

    fn command(&self, bin: &Path, data: &Path, user: Option<(u32, u32)>) -> Command {
        let mut command = Command::new(bin.join("postgres"));
        as_user(&mut command, user)
            .arg("-D")
            .arg(data)
            .args(["-c", &format!("listen_addresses={}", self.address)])
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("server.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            );
        // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec,
        // after its user changed (a change of user clears the parent-death signal).
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let until = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "postgres exited at start-up ({status}): {}",
                    self.log_tail()
                );
            }
            if self.accepts() {
                return Ok(());
            }
            if Instant::now() >= until {
                bail!(
                    "postgres did not start in {START_DEADLINE:?}: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether `pg_isready` says the server accepts connections.
    fn accepts(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", &self.address.to_string()])
            .args(["-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" / ")
    }

    /// The server's pid (the postmaster's).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `postgres://` URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@{}:{}/{name}", self.address, self.port)
    }

    /// Creates database `name` and answers its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        create_database(&self.url("postgres"), name).await?;
        Ok(self.url(name))
    }

    /// Stops the server by pid: SIGINT (fast shutdown), then SIGKILL after a grace.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGINT);
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates database `name` through the server's administrative database at `admin_url`.
pub async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .with_context(|| format!("creating database {name}"))?;
    admin.close().await?;
    Ok(())
}

/// Spawns `command` from a thread that lives as long as the process, so the child's
/// parent-death signal fires when the process ends, not when the calling thread does.
fn spawn_detached_from_thread(mut command: Command) -> anyhow::Result<Child> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("postgres-parent".into())
        .spawn(move || {
            let _ = tx.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    Ok(rx.recv().context("the postgres starter thread ended")??)
}
