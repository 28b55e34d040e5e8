//! Simulated BMCs for the dev region (and the bare-metal tests): OpenIPMI's `ipmi_sim`, each
//! on its own loopback address at port 623 as real BMCs listen, with a chassis that records
//! power actions and a serial console that greets and echoes, all set up by
//! `scripts/ipmi-sim.sh` (carried inside this binary) and stopped by the pids it wrote.

use anyhow::Context;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The simulator's set-up script, written into each BMC's directory.
const SCRIPT: &str = include_str!("../../../scripts/ipmi-sim.sh");
/// Where real BMCs listen.
pub const IPMI_PORT: u16 = 623;

/// Why this machine cannot run simulated BMCs here (no `ipmi_sim`, or not root for port
/// 623), if so.
pub fn unavailable() -> Option<String> {
    for bin in ["ipmi_sim", "ipmitool"] {
        if !on_path(bin) {
            return Some(format!("{bin} is not installed (scripts/install-deps.sh)"));
        }
    }
    match super::libvirtd::effective_uid() {
        Ok(0) => None,
        _ => Some("a BMC listens on port 623, which needs root".into()),
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(bin).is_file()))
}

/// One running `ipmi_sim` with its fake serial console.
pub struct Bmc {
    dir: PathBuf,
    ip: String,
    password: String,
    running: bool,
}

impl Bmc {
    /// Starts a simulator in `dir` (kept: its power state survives a restart) on `ip`:623
    /// whose `admin` user has `password` (at most 16 characters).
    pub fn start(dir: &Path, ip: &str, password: &str) -> anyhow::Result<Bmc> {
        Bmc::start_with_sensors(dir, ip, password, "temp")
    }

    /// [`Bmc::start`] with the sensors `SENSORS=<sensors>` of ipmi-sim.sh gives it (`temp`,
    /// `full` or `none`).
    pub fn start_with_sensors(
        dir: &Path,
        ip: &str,
        password: &str,
        sensors: &str,
    ) -> anyhow::Result<Bmc> {
        std::fs::create_dir_all(dir)?;
        let script = dir.join("ipmi-sim.sh");
        std::fs::write(&script, SCRIPT)?;
        let solport = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut bmc = Bmc {
            dir: dir.to_path_buf(),
            ip: ip.to_string(),
            password: password.to_string(),
            running: true,
        };
        // An earlier run's simulator, if one is left.
        bmc.stop();
        bmc.running = true;
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .arg(IPMI_PORT.to_string())
            .arg(solport.to_string())
            .env("ADDR", ip)
            .env("PASS", password)
            .env("SENSORS", sensors)
            .output()
            .context("running ipmi-sim.sh")?;
        anyhow::ensure!(
            out.status.success(),
            "ipmi_sim did not start on {ip}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(bmc)
    }

    pub fn ip(&self) -> &str {
        &self.ip
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The chassis helper's record: `power 1`, `reset 1`, `shutdown 1`, ...
    pub fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("state/actions"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
            .collect()
    }

    /// `ipmitool` against this BMC, as an operator would check it.
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

    /// Runs emulator commands on the simulator's console at `ip`:9625 (`sensor_set_value ...`,
    /// `sel_add ...`, `sel_clear ...`) and waits for its prompt after the last, so the change
    /// is in place on return.
    pub fn emu(&self, commands: &[&str]) -> anyhow::Result<()> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect((self.ip.as_str(), 9625))
            .with_context(|| format!("the emulator console of {}", self.ip))?;
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        for (prompts, cmd) in commands.iter().map(Some).chain([None]).enumerate() {
            // Each command is sent once the console shows its prompt ("> ").
            while seen.windows(2).filter(|w| w == b"> ").count() <= prompts {
                let n = c.read(&mut buf)?;
                anyhow::ensure!(
                    n > 0,
                    "the emulator console closed: {}",
                    String::from_utf8_lossy(&seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
            if let Some(cmd) = cmd {
                c.write_all(format!("{cmd}\n").as_bytes())?;
            }
        }
        Ok(())
    }

    /// Stops the simulator and its console by their pids. Idempotent.
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let _ = Command::new("bash")
            .arg(self.dir.join("ipmi-sim.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        self.stop();
    }
}
