//! OpenIPMI `ipmi_sim` BMCs for the bare-metal tests: each on its own 127.x.y.z at port 623
//! (as real BMCs listen), started by scripts/ipmi-sim.sh and stopped by the pids it wrote.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct SimBmc {
    pub dir: tempfile::TempDir,
    pub ip: String,
    pub password: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ipmi-sim.sh")
}

/// A loopback address unlikely to be anyone else's: pid, time and a counter mixed.
pub fn loopback_address() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = nanos ^ (std::process::id() << 12) ^ N.fetch_add(1, Ordering::Relaxed);
    x ^= x >> 13;
    x = x.wrapping_mul(0x5bd1_e995);
    x ^= x >> 15;
    format!(
        "127.{}.{}.{}",
        122 + x % 60,
        (x >> 8) & 0xff,
        1 + ((x >> 16) & 0xff) % 250
    )
}

impl SimBmc {
    /// A simulator whose admin user has `password`.
    pub fn start(password: &str) -> anyhow::Result<SimBmc> {
        SimBmc::start_on(&loopback_address(), password)
    }

    /// A simulator on `ip` (a test that must keep to an address range of its own).
    pub fn start_on(ip: &str, password: &str) -> anyhow::Result<SimBmc> {
        let dir = tempfile::tempdir()?;
        let ip = ip.to_string();
        let solport = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .arg("623")
            .arg(solport.to_string())
            .env("ADDR", &ip)
            .env("PASS", password)
            .output()?;
        let sim = SimBmc {
            dir,
            ip,
            password: password.into(),
        };
        anyhow::ensure!(
            out.status.success(),
            "ipmi_sim did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(sim)
    }

    /// The chassis helper's record: `power 1`, `reset 1`, `shutdown 1`, ...
    pub fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("state/actions"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
            .collect()
    }

    /// Changes the chassis power behind plinth's back, with ipmitool.
    pub fn ipmitool(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("ipmitool")
            .args([
                "-I", "lanplus", "-C", "3", "-H", &self.ip, "-U", "admin", "-P",
            ])
            .arg(&self.password)
            .args(args)
            .output()?;
        anyhow::ensure!(out.status.success(), "ipmitool {args:?} failed");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

impl Drop for SimBmc {
    fn drop(&mut self) {
        self.stop();
    }
}
