//! A private, privileged `libvirtd` per dev host: each in its own mount (and UTS) namespace
//! with private bind mounts over `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`,
//! `/var/cache/libvirt` and `/var/log/libvirt`, so several run at once on one machine (the
//! recipe in `shared/recipes/libvirt-two-hosts.sh`), each with its own `host_uuid` (libvirt
//! refuses to migrate between daemons that share one) and TCP on its own 127.0.x.y for
//! migrations. The end-to-end tests' hosts are the same daemons (tests/common/libvirtd.rs).
//!
//! Needs root. A daemon's tree survives it: started again on the same directory, it keeps
//! its host UUID, ports and defined domains.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often start-up and shutdown look again.
const POLL: Duration = Duration::from_millis(50);
/// How long the daemon may take to answer on its unix socket.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long SIGTERM is given before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How many migration ports each daemon gets.
pub const MIGRATION_PORTS: u16 = 64;
pub const LIBVIRTD: &str = "/usr/sbin/libvirtd";
pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";
/// The directories each daemon gets its own copy of (bind-mounted over these).
const MOUNTS: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
];

/// Polls `done` until it holds or `deadline` passes; whether it held.
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

/// Why this machine cannot run private daemons (not root, libvirtd or QEMU missing), if so.
pub fn unavailable() -> Option<String> {
    match effective_uid() {
        Ok(0) => {}
        Ok(_) => return Some("private libvirtd daemons need root".into()),
        Err(e) => return Some(format!("cannot tell this process's user: {e}")),
    }
    for bin in [LIBVIRTD, QEMU] {
        if !Path::new(bin).exists() {
            return Some(format!("{bin} is not installed (scripts/install-deps.sh)"));
        }
    }
    None
}

/// This process's effective uid (from /proc: nix's `user` feature is not enabled here).
pub fn effective_uid() -> anyhow::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .context("no effective uid in /proc/self/status")
}

/// How to start a [`PrivateLibvirtd`].
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The daemon's hostname (in its own UTS namespace).
    pub name: String,
    /// Its tree: `etc/`, `run/`, `lib/` (with `lib/images/`), `cache/`, `log/`; kept.
    pub dir: PathBuf,
    /// A loopback address for its TCP listener and QEMU's incoming migrations.
    pub listen_addr: Ipv4Addr,
    /// Its TCP port; `None`: the one an earlier start wrote, else a free one.
    pub tcp_port: Option<u16>,
    /// The first of its 64 migration ports; `None`: an earlier start's, else at random
    /// below 32768.
    pub migration_port_min: Option<u16>,
}

/// One running privileged `libvirtd` with its own config, state, sockets and logs.
pub struct PrivateLibvirtd {
    name: String,
    dir: PathBuf,
    listen_addr: Ipv4Addr,
    tcp_port: u16,
    migration_ports: (u16, u16),
    host_uuid: String,
    child: Option<Child>,
    pid: u32,
}

impl PrivateLibvirtd {
    /// Starts a daemon (as root) and waits until its unix socket answers.
    pub fn start(opts: DaemonOptions) -> anyhow::Result<PrivateLibvirtd> {
        if let Some(why) = unavailable() {
            bail!("{why}");
        }
        ensure_qemu_user()?;
        for (_, target) in MOUNTS {
            std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
        }
        let dir = opts.dir.clone();
        for (sub, _) in MOUNTS {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::create_dir_all(dir.join("lib/images"))?;
        // An earlier run's pid file and sockets would make this one refuse to start.
        let _ = std::fs::remove_dir_all(dir.join("run"));
        std::fs::create_dir_all(dir.join("run"))?;
        seed_qemu_caps(&dir);

        let earlier = std::fs::read_to_string(dir.join("etc/libvirtd.conf")).ok();
        let earlier_qemu = std::fs::read_to_string(dir.join("etc/qemu.conf")).ok();
        let setting = |text: &Option<String>, key: &str| -> Option<String> {
            text.as_deref()?.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let tcp_port = match opts.tcp_port {
            Some(p) => p,
            None => match setting(&earlier, "tcp_port").and_then(|p| p.parse().ok()) {
                Some(p) => p,
                None => free_port(opts.listen_addr)?,
            },
        };
        let mig_min = opts
            .migration_port_min
            .or_else(|| setting(&earlier_qemu, "migration_port_min").and_then(|p| p.parse().ok()))
            .unwrap_or_else(random_migration_base);
        let migration_ports = (mig_min, mig_min + MIGRATION_PORTS - 1);
        let host_uuid = match setting(&earlier, "host_uuid") {
            Some(u) => u,
            None => random_uuid()?,
        };
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
            " && exec {LIBVIRTD} --listen --config /etc/libvirt/libvirtd.conf \
             --pid-file /run/libvirt/libvirtd.pid"
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
        let mut daemon = PrivateLibvirtd {
            name: opts.name,
            dir,
            listen_addr: addr,
            tcp_port,
            migration_ports,
            host_uuid,
            child: Some(child),
            pid,
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let socket = self.dir.join("run/libvirt-sock");
        let until = Instant::now() + START_DEADLINE;
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
            let last_err = match UnixStream::connect(&socket) {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > until {
                bail!(
                    "libvirtd {} did not answer on {} within {START_DEADLINE:?} \
                     (last error: {last_err}):\n{}",
                    self.name,
                    socket.display(),
                    self.logs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

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

    /// `qemu+tcp://127.0.x.y:PORT/system` (no auth): the migration destination.
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

    /// Whether the daemon has exited (then it is reaped and [`pid`](Self::pid) is `None`).
    pub fn exited(&mut self) -> bool {
        let gone = self
            .child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
        if gone {
            self.child = None;
        }
        gone
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

    /// Stops libvirtd (SIGTERM, then SIGKILL after a grace period) and kills every QEMU it
    /// left running. Idempotent. Domains stay defined.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            save_qemu_caps(&self.dir);
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
            let exited = poll_until(STOP_GRACE, || matches!(child.try_wait(), Ok(Some(_))));
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Also after a crash of libvirtd itself: its guests are still ours to stop.
        self.kill_leftover_qemu();
    }

    /// QEMU outlives libvirtd by design; kill those whose pid files are still in our `run/`.
    fn kill_leftover_qemu(&self) {
        for pid in self.qemu_pids() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            poll_until(STOP_GRACE, || !process_running(pid));
        }
    }

    /// The QEMU processes this daemon's `run/qemu/*.pid` files name that still run.
    pub fn qemu_pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("run/qemu")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pid"))
            .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse::<u32>().ok())
            // Only a QEMU: the pid may have been reused since.
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains("qemu-system") && process_running(*pid)
            })
            .collect()
    }
}

impl Drop for PrivateLibvirtd {
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
        // Another process may win the race; only the outcome matters.
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
/// complete copy renamed into place, so parallel daemons never see half a store).
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
