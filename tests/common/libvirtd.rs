//! A real, privileged `libvirtd` for tests that run QEMU guests: one daemon per "host", each in
//! its own mount (and UTS) namespace with private bind mounts over `/etc/libvirt`,
//! `/run/libvirt`, `/var/lib/libvirt`, `/var/cache/libvirt` and `/var/log/libvirt`, so several
//! can run at once on one machine (the recipe in `shared/recipes/libvirt-two-hosts.sh`).
//!
//! It needs root. When not root, [`LibvirtDaemon::start`] fails the test, unless
//! `PLINTH_SKIP_REAL_LIBVIRT=1` is set: then it returns `Ok(None)` and the test skips.
//! The daemon and every QEMU it started are stopped by pid when the fixture is dropped.

use anyhow::{Context, bail};
use plinth_coordinator::dev::libvirtd::{DaemonOptions, PrivateLibvirtd, effective_uid};
pub use plinth_coordinator::dev::libvirtd::{poll_until, process_running};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Once;
use tempfile::TempDir;
use virt::connect::Connect;

/// The env var that turns "not root" from a test failure into a skip.
pub const SKIP_ENV: &str = "PLINTH_SKIP_REAL_LIBVIRT";

/// Whether this process may run real libvirt tests: `Ok(true)` as root; `Ok(false)` (after
/// printing why) when not root and `PLINTH_SKIP_REAL_LIBVIRT=1`; an error otherwise, so a CI
/// run that lost its privileges fails instead of passing silently.
pub fn real_libvirt_allowed() -> anyhow::Result<bool> {
    if effective_uid()? == 0 {
        return Ok(true);
    }
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: real-libvirt test needs root ({SKIP_ENV}=1 is set)");
        return Ok(false);
    }
    bail!(
        "real-libvirt tests need root (they start privileged libvirtd daemons in mount \
         namespaces); run as root, or set {SKIP_ENV}=1 to skip them"
    )
}

/// How to start a [`LibvirtDaemon`].
#[derive(Debug, Clone)]
pub struct LibvirtDaemonOptions {
    /// The daemon's hostname (in its own UTS namespace) and its directory's name.
    pub name: String,
    /// A loopback address (`127.0.0.x`) for its TCP listener and QEMU's incoming migrations.
    pub listen_addr: Ipv4Addr,
    /// Its TCP port; `None`: a free one.
    pub tcp_port: Option<u16>,
    /// The first of its 64 migration ports; `None`: a range picked at random below 32768.
    pub migration_port_min: Option<u16>,
    /// The directory its tree goes under (`<parent>/<name>`); `None`: a temp dir of its own,
    /// removed on drop.
    pub parent_dir: Option<PathBuf>,
}

impl LibvirtDaemonOptions {
    pub fn new(name: &str, listen_addr: Ipv4Addr) -> LibvirtDaemonOptions {
        LibvirtDaemonOptions {
            name: name.to_string(),
            listen_addr,
            tcp_port: None,
            migration_port_min: None,
            parent_dir: None,
        }
    }
}

/// One running privileged `libvirtd` with its own config, state, sockets and logs: the dev
/// region's daemon, plus libvirt connections for the tests.
pub struct LibvirtDaemon {
    daemon: PrivateLibvirtd,
    // Last, so the tree is removed after the daemon has stopped.
    _tmp: Option<TempDir>,
}

impl LibvirtDaemon {
    /// Starts a daemon and waits until its unix socket answers. `Ok(None)`: the test should
    /// skip (see [`real_libvirt_allowed`]).
    pub fn start(opts: LibvirtDaemonOptions) -> anyhow::Result<Option<LibvirtDaemon>> {
        if !real_libvirt_allowed()? {
            return Ok(None);
        }
        // libvirt's default error handler prints every failed poll to stderr.
        static QUIET: Once = Once::new();
        QUIET.call_once(virt::error::clear_error_callback);
        let (tmp, parent) = match &opts.parent_dir {
            Some(p) => (None, p.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("plinth-libvirtd-")
                    .tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let dir = parent.join(&opts.name);
        anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
        let daemon = PrivateLibvirtd::start(DaemonOptions {
            name: opts.name,
            dir,
            listen_addr: opts.listen_addr,
            tcp_port: opts.tcp_port,
            migration_port_min: opts.migration_port_min,
        })?;
        Ok(Some(LibvirtDaemon { daemon, _tmp: tmp }))
    }

    pub fn name(&self) -> &str {
        self.daemon.name()
    }

    /// This daemon's tree: `etc/`, `run/`, `lib/` (with `lib/images/`), `cache/`, `log/`.
    pub fn dir(&self) -> &Path {
        self.daemon.dir()
    }

    /// `qemu+unix:///system?socket=<dir>/run/libvirt-sock`.
    pub fn unix_uri(&self) -> String {
        self.daemon.unix_uri()
    }

    /// `qemu+tcp://127.0.0.x:PORT/system` (no auth), e.g. as a migration destination.
    pub fn tcp_uri(&self) -> String {
        self.daemon.tcp_uri()
    }

    pub fn listen_addr(&self) -> Ipv4Addr {
        self.daemon.listen_addr()
    }

    pub fn tcp_port(&self) -> u16 {
        self.daemon.tcp_port()
    }

    /// Inclusive range QEMU listens on for incoming migrations (on `listen_addr`).
    pub fn migration_ports(&self) -> (u16, u16) {
        self.daemon.migration_ports()
    }

    pub fn host_uuid(&self) -> &str {
        self.daemon.host_uuid()
    }

    /// libvirtd's pid while it runs (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// A new connection on the unix socket.
    pub fn connect(&self) -> anyhow::Result<Connect> {
        Connect::open(Some(&self.unix_uri()))
            .with_context(|| format!("connecting to {}", self.unix_uri()))
    }

    /// The daemon's log file and its stdout/stderr, for failure messages.
    pub fn logs(&self) -> String {
        self.daemon.logs()
    }

    /// Destroys every running domain, stops libvirtd (SIGTERM, then SIGKILL after a grace
    /// period) and kills any QEMU it left behind. Idempotent.
    pub fn stop(&mut self) {
        if !self.daemon.exited() {
            self.destroy_domains();
        }
        self.daemon.stop();
    }

    fn destroy_domains(&self) {
        let Ok(conn) = Connect::open(Some(&self.unix_uri())) else {
            return;
        };
        if let Ok(doms) = conn.list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE) {
            for dom in doms {
                let _ = dom.destroy();
            }
        }
    }
}

impl Drop for LibvirtDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
