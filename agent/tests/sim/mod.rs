//! OpenIPMI's `ipmi_sim` BMCs for tests: each on its own 127.x.y.z, port 623 as real BMCs
//! listen, started by scripts/ipmi-sim.sh and stopped by the pids it wrote.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct SimBmc {
    pub dir: tempfile::TempDir,
    pub ip: IpAddr,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ipmi-sim.sh")
}

/// A loopback address no other test picks (random third and fourth bytes).
pub fn loopback_address() -> IpAddr {
    let n: u32 = rand::random();
    IpAddr::from([
        127,
        61 + (n % 60) as u8,
        (n >> 8) as u8,
        1 + (n >> 16) as u8 % 250,
    ])
}

fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl SimBmc {
    pub fn start() -> SimBmc {
        SimBmc::start_at(loopback_address())
    }

    /// A simulator on `ip`, port 623.
    pub fn start_at(ip: IpAddr) -> SimBmc {
        SimBmc::start_with(ip, "temp")
    }

    /// A simulator with the sensors `SENSORS=<sensors>` of scripts/ipmi-sim.sh gives it.
    pub fn start_with(ip: IpAddr, sensors: &str) -> SimBmc {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script())
            .args(["start", &dir.path().display().to_string(), "623"])
            .arg(free_tcp_port().to_string())
            .env("ADDR", ip.to_string())
            .env("SENSORS", sensors)
            .output()
            .unwrap();
        let sim = SimBmc { dir, ip };
        assert!(
            out.status.success(),
            "ipmi_sim did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        sim
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 623)
    }

    /// The chassis helper's record of actions: `power 1`, `reset 1`, `shutdown 1`, ...
    pub fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("state/actions"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
            .collect()
    }

    pub fn power(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("state/power"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Runs emulator commands on the simulator's console (`sensor_set_value ...`, `sel_add
    /// ...`) and waits for its prompt after the last, so the change is in place on return.
    pub fn emu(&self, commands: &[&str]) {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect((self.ip, 9625)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        for (prompts, cmd) in commands.iter().map(Some).chain([None]).enumerate() {
            // Each command is sent once the console shows its prompt ("> ").
            while seen.windows(2).filter(|w| w == b"> ").count() <= prompts {
                let n = c.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "the emulator console closed: {}",
                    String::from_utf8_lossy(&seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
            if let Some(cmd) = cmd {
                c.write_all(format!("{cmd}\n").as_bytes()).unwrap();
            }
        }
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.dir.path().display().to_string()])
            .status();
    }
}

impl Drop for SimBmc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `check` answers true, looking every 50 ms, or panics after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut look = tokio::time::interval(Duration::from_millis(50));
    loop {
        look.tick().await;
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
    }
}

/// A benchmark knob from the environment.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The simulators' admin user at `ip`:623.
pub fn admin_at(ip: IpAddr) -> plinth_agent::ipmi::Target {
    plinth_agent::ipmi::Target {
        addr: SocketAddr::new(ip, 623),
        username: "admin".into(),
        password: plinth_agent::ipmi::Password::new("password"),
        suite: None,
    }
}

/// Starts `n` simulators with `sensors` on 127.200.x.y, eight at a time (each start waits for
/// its BMC to answer): the benchmarks' fleet.
pub fn start_fleet(n: usize, sensors: &str) -> Vec<SimBmc> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ips: Vec<IpAddr> = (0..n)
        .map(|i| IpAddr::from([127, 200, (i / 250) as u8, 1 + (i % 250) as u8]))
        .collect();
    let sims = Mutex::new(Vec::with_capacity(n));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ip) = ips.get(i) else { return };
                    let sim = SimBmc::start_with(*ip, sensors);
                    sims.lock().unwrap().push(sim);
                }
            });
        }
    });
    sims.into_inner().unwrap()
}
