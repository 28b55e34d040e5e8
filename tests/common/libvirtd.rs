//! A real, privileged `libvirtd` for tests that run QEMU guests: one daemon per "host", each in
//! its own mount (and UTS) namespace with private bind mounts over `/etc/libvirt`,
//! `/run/libvirt`, `/var/lib/libvirt`, `/var/cache/libvirt` and `/var/log/libvirt`, so several
//! can run at once on one machine (the recipe in `shared/recipes/libvirt-two-hosts.sh`).
//!
//! It needs root. When not root, [`LibvirtDaemon::start`] fails the test, unless
//! `PLINTH_SKIP_REAL_LIBVIRT=1` is set: then it returns `Ok(None)` and the test skips.
//! The daemon and every QEMU it started are stopped by pid when the fixture is dropped.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use virt::connect::Connect;

/// How often start-up and shutdown look again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `done` until it holds or `deadline` passes; whether it held. For the blocking code
/// around processes (the async tests wait with `wait_for`).
pub fn poll_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
/// How long the daemon may take to answer on its unix socket.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long SIGTERM is given before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// The env var that turns "not root" from a test failure into a skip.
pub const SKIP_ENV: &str = "PLINTH_SKIP_REAL_LIBVIRT";
/// How many migration ports each daemon gets.
const MIGRATION_PORTS: u16 = 64;
/// The directories each daemon gets its own copy of (bind-mounted over these).
const MOUNTS: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
];

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

/// This process's effective uid (from /proc: nix's `user` feature is not enabled here).
fn effective_uid() -> anyhow::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .context("no effective uid in /proc/self/status")
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

/// One running privileged `libvirtd` with its own config, state, sockets and logs.
pub struct LibvirtDaemon {
    name: String,
    dir: PathBuf,
    listen_addr: Ipv4Addr,
    tcp_port: u16,
    migration_ports: (u16, u16),
    host_uuid: String,
    child: Option<Child>,
    pid: u32,
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
        let libvirtd = Path::new("/usr/sbin/libvirtd");
        anyhow::ensure!(
            libvirtd.exists() && Path::new("/usr/bin/qemu-system-x86_64").exists(),
            "libvirtd or qemu-system-x86_64 is missing: run scripts/install-deps.sh"
        );
        // libvirt's default error handler prints every failed poll to stderr.
        static QUIET: Once = Once::new();
        QUIET.call_once(virt::error::clear_error_callback);
        ensure_qemu_user()?;
        for (_, target) in MOUNTS {
            std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
        }

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
        for (sub, _) in MOUNTS {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::create_dir_all(dir.join("lib/images"))?;
        seed_qemu_caps(&dir);

        let tcp_port = match opts.tcp_port {
            Some(p) => p,
            None => free_port(opts.listen_addr)?,
        };
        let mig_min = opts
            .migration_port_min
            .unwrap_or_else(random_migration_base);
        let migration_ports = (mig_min, mig_min + MIGRATION_PORTS - 1);
        let host_uuid = random_uuid()?;
        let addr = opts.listen_addr;
        std::fs::write(
            dir.join("etc/libvirtd.conf"),
            format!(
                "listen_tls = 0\nlisten_tcp = 1\nlisten_addr = \"{addr}\"\n\
                 tcp_port = \"{tcp_port}\"\nauth_tcp = \"none\"\nauth_unix_rw = \"none\"\n\
                 unix_sock_rw_perms = \"0770\"\nhost_uuid = \"{host_uuid}\"\n\
                 log_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n"
            ),
        )?;
        std::fs::write(
            dir.join("etc/qemu.conf"),
            format!(
                "user = \"root\"\ngroup = \"root\"\ndynamic_ownership = 0\nremember_owner = 0\n\
                 security_driver = \"none\"\nstdio_handler = \"file\"\ncgroup_controllers = [ ]\n\
                 migration_address = \"{addr}\"\nmigration_host = \"{addr}\"\n\
                 migration_port_min = {}\nmigration_port_max = {}\n",
                migration_ports.0, migration_ports.1
            ),
        )?;

        let mut script = format!("hostname '{}'", opts.name);
        for (sub, target) in MOUNTS {
            script.push_str(&format!(
                " && mount --bind '{}' {target}",
                dir.join(sub).display()
            ));
        }
        script.push_str(&format!(
            " && exec {} --listen --config /etc/libvirt/libvirtd.conf \
             --pid-file /run/libvirt/libvirtd.pid",
            libvirtd.display()
        ));
        let log = std::fs::File::create(dir.join("stdout.log"))?;
        // setsid (not a group leader here, so it does not fork), unshare (no --fork) and
        // `exec` all keep the one pid: the child's pid is libvirtd's.
        let child = Command::new("setsid")
            .args(["unshare", "--mount", "--uts", "--propagation", "private"])
            .args(["--", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning setsid unshare libvirtd")?;
        let pid = child.id();
        let mut daemon = LibvirtDaemon {
            name: opts.name,
            dir,
            listen_addr: addr,
            tcp_port,
            migration_ports,
            host_uuid,
            child: Some(child),
            pid,
            _tmp: tmp,
        };
        daemon.wait_ready()?;
        Ok(Some(daemon))
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let uri = self.unix_uri();
        let until = Instant::now() + START_DEADLINE;
        let mut last_err = String::new();
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                bail!(
                    "libvirtd {} exited at start-up ({status}):\n{}",
                    self.name,
                    self.logs()
                );
            }
            if self.dir.join("run/libvirt-sock").exists() {
                match Connect::open(Some(&uri)) {
                    Ok(conn) => {
                        drop(conn);
                        return Ok(());
                    }
                    Err(e) => last_err = e.to_string(),
                }
            }
            if Instant::now() > until {
                bail!(
                    "libvirtd {} did not answer on {uri} within {START_DEADLINE:?} \
                     (last error: {last_err}):\n{}",
                    self.name,
                    self.logs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// This daemon's tree: `etc/`, `run/`, `lib/` (with `lib/images/`), `cache/`, `log/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `qemu+unix:///system?socket=<dir>/run/libvirt-sock`.
    pub fn unix_uri(&self) -> String {
        format!(
            "qemu+unix:///system?socket={}",
            self.dir.join("run/libvirt-sock").display()
        )
    }

    /// `qemu+tcp://127.0.0.x:PORT/system` (no auth), e.g. as a migration destination.
    pub fn tcp_uri(&self) -> String {
        format!("qemu+tcp://{}:{}/system", self.listen_addr, self.tcp_port)
    }

    pub fn listen_addr(&self) -> Ipv4Addr {
        self.listen_addr
    }

    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// Inclusive range QEMU listens on for incoming migrations (on `listen_addr`).
    pub fn migration_ports(&self) -> (u16, u16) {
        self.migration_ports
    }

    pub fn host_uuid(&self) -> &str {
        &self.host_uuid
    }

    /// libvirtd's pid while it runs (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|_| self.pid)
    }

    /// A new connection on the unix socket.
    pub fn connect(&self) -> anyhow::Result<Connect> {
        Connect::open(Some(&self.unix_uri()))
            .with_context(|| format!("connecting to {}", self.unix_uri()))
    }

    /// The daemon's log file and its stdout/stderr, for failure messages.
    pub fn logs(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_default();
        format!(
            "--- {}/log/libvirtd.log ---\n{}--- stdout.log ---\n{}",
            self.dir.display(),
            tail(&read(self.dir.join("log/libvirtd.log")), 60),
            tail(&read(self.dir.join("stdout.log")), 20),
        )
    }

    /// Destroys every running domain, stops libvirtd (SIGTERM, then SIGKILL after a grace
    /// period) and kills any QEMU it left behind. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            self.destroy_domains();
        }
        save_qemu_caps(&self.dir);
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let exited = poll_until(STOP_GRACE, || matches!(child.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.kill_leftover_qemu();
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

    /// QEMU outlives libvirtd by design; kill those whose pid files are still in our `run/`.
    fn kill_leftover_qemu(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("run/qemu")) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "pid") {
                continue;
            }
            let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            // Only a QEMU: the pid may have been reused since.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmdline).contains("qemu-system") {
                continue;
            }
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            poll_until(STOP_GRACE, || !process_running(pid as u32));
        }
    }
}

impl Drop for LibvirtDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `pid` exists and is not a zombie. A QEMU that libvirt daemonized is re-parented
/// to pid 1, which may reap it late (seconds, in some sandboxes): a zombie has ended.
pub fn process_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// The qemu driver looks up its compiled-in default user (`libvirt-qemu`) before it reads
/// qemu.conf, so the user and group must exist even though guests run as root.
fn ensure_qemu_user() -> anyhow::Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let exists = |db: &str| {
        Command::new("getent")
            .args([db, "libvirt-qemu"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists("group") {
        // Another test process may win the race; only the outcome matters.
        let _ = Command::new("groupadd")
            .args(["-r", "libvirt-qemu"])
            .status();
        anyhow::ensure!(exists("group"), "could not create group libvirt-qemu");
    }
    if !exists("passwd") {
        let _ = Command::new("useradd")
            .args(["-r", "-g", "libvirt-qemu", "-M", "-d", "/var/lib/libvirt"])
            .args(["-s", "/usr/sbin/nologin", "libvirt-qemu"])
            .status();
        anyhow::ensure!(exists("passwd"), "could not create user libvirt-qemu");
    }
    Ok(())
}

/// Where a probed QEMU capabilities cache is kept for later daemons (probing costs seconds
/// per daemon). libvirt re-validates the cache (QEMU/libvirtd ctime, kernel, CPU) and
/// re-probes when it is stale, so a seed can only save time.
fn qemu_caps_store() -> PathBuf {
    std::env::var_os("PLINTH_QEMU_CAPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("plinth-qemu-caps"))
}

fn seed_qemu_caps(dir: &Path) {
    let store = qemu_caps_store();
    if store.is_dir() {
        let _ = copy_dir(&store, &dir.join("cache/qemu/capabilities"));
    }
}

/// Keeps this daemon's probed capabilities when there is no store yet (atomically: a
/// complete copy renamed into place, so parallel tests never see half a store).
fn save_qemu_caps(dir: &Path) {
    let store = qemu_caps_store();
    let caps = dir.join("cache/qemu/capabilities");
    let probed = std::fs::read_dir(&caps).is_ok_and(|mut d| d.next().is_some());
    if store.exists() || !probed {
        return;
    }
    let staging = store.with_extension(format!("tmp-{}", std::process::id()));
    if copy_dir(&caps, &staging).is_ok() && std::fs::rename(&staging, &store).is_ok() {
        return;
    }
    let _ = std::fs::remove_dir_all(&staging);
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A port free on `addr` now (the kernel's pick; libvirtd binds it moments later).
fn free_port(addr: Ipv4Addr) -> anyhow::Result<u16> {
    let l = TcpListener::bind((addr, 0)).with_context(|| format!("binding {addr}:0"))?;
    Ok(l.local_addr()?.port())
}

/// A 64-port range in 20000..32000, below the kernel's ephemeral range. libvirt skips ports
/// in use, so a clash with another daemon costs nothing but a port.
fn random_migration_base() -> u16 {
    let seed = std::fs::read("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let n = seed
        .iter()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(*b as u32));
    20000 + (n % (12000 / MIGRATION_PORTS as u32)) as u16 * MIGRATION_PORTS
}

/// A random (v4) UUID: libvirt refuses to migrate between daemons with the same host UUID.
fn random_uuid() -> anyhow::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")?
        .trim()
        .to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}
