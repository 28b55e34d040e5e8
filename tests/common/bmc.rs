//! OpenIPMI `ipmi_sim` BMCs for the bare-metal tests: each on its own 127.x.y.z at port 623
//! (as real BMCs listen): the dev region's simulator (plinth_coordinator::dev::bmc) in a temp
//! dir; and a recorded Redfish service to stand beside one, for the hardware inventory.

use crate::process::Daemon;
use plinth_common::tls::{Ca, LeafSpec, Role};
use plinth_coordinator::dev::bmc::Bmc;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct SimBmc {
    pub ip: String,
    pub password: String,
    bmc: Bmc,
    // After `bmc`, so the directory is removed once the simulator has stopped.
    pub dir: tempfile::TempDir,
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
        SimBmc::start_with_sensors(ip, password, "temp")
    }

    /// A simulator on `ip` with the sensors `SENSORS=<sensors>` of scripts/ipmi-sim.sh gives
    /// it (`temp`, `full`, `none`).
    pub fn start_with_sensors(ip: &str, password: &str, sensors: &str) -> anyhow::Result<SimBmc> {
        let dir = tempfile::tempdir()?;
        let bmc = Bmc::start_with_sensors(dir.path(), ip, password, sensors)?;
        Ok(SimBmc {
            ip: ip.to_string(),
            password: password.into(),
            bmc,
            dir,
        })
    }

    /// The chassis helper's record: `power 1`, `reset 1`, `shutdown 1`, ...
    pub fn actions(&self) -> Vec<String> {
        self.bmc.actions()
    }

    /// Changes the chassis power behind plinth's back, with ipmitool.
    pub fn ipmitool(&self, args: &[&str]) -> anyhow::Result<String> {
        self.bmc.ipmitool(args)
    }

    /// Emulator commands on the simulator's console (`sensor_set_value ...`, `sel_add ...`).
    pub fn emu(&self, commands: &[&str]) -> anyhow::Result<()> {
        self.bmc.emu(commands)
    }

    pub fn stop(&mut self) {
        self.bmc.stop();
    }
}

/// A server certificate for the BMC at `ip` from a CA of its own (as BMCs carry), written to
/// `dir` as bmc.pem and bmc.key, with the CA as bmc-ca.pem (the agent's --redfish-ca-file).
/// Returns the CA's PEM.
pub fn bmc_certificate(dir: &Path, ip: &str) -> anyhow::Result<String> {
    let (ca, _) = Ca::generate("bmc-ca")?;
    let mut spec = LeafSpec::new("bmc", Role::Coordinator, Duration::from_secs(3600));
    spec.server = true;
    spec.ips = vec![ip.parse()?];
    let (cert, key) = ca.issue_with_new_key(&spec)?;
    let ca_pem = ca.cert_pem().to_string();
    for (name, text) in [
        ("bmc.pem", &cert),
        ("bmc.key", &key),
        ("bmc-ca.pem", &ca_pem),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(ca_pem)
}

/// Recorded Redfish answers of a two-socket server (one DIMM slot empty), served by Python's
/// http.server over TLS, behind basic auth with the BMC's credentials.
pub const REDFISH_SERVER: &str = r#"
import base64, http.server, json, ssl, sys
addr, cert, key, user, password = sys.argv[1:6]
R = "/redfish/v1"
cpu = lambda n: {"Id": n, "ProcessorType": "CPU", "Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
    "TotalCores": 32, "MaxTDPWatts": 205, "ProcessorMemory": [
        {"MemoryType": "L1Cache", "CapacityMiB": 2.5}, {"MemoryType": "L2Cache", "CapacityMiB": 40},
        {"MemoryType": "L3Cache", "CapacityMiB": 48}]}
pages = {
    R + "/Systems": {"Members": [{"@odata.id": R + "/Systems/1"}]},
    R + "/Systems/1": {"Processors": {"@odata.id": R + "/Systems/1/Processors"},
        "Memory": {"@odata.id": R + "/Systems/1/Memory"},
        "PCIeDevices": [{"@odata.id": R + "/Chassis/1/PCIeDevices/NIC1"}]},
    R + "/Systems/1/Processors": {"Members": [{"@odata.id": R + "/Systems/1/Processors/CPU0"},
        {"@odata.id": R + "/Systems/1/Processors/CPU1"}]},
    R + "/Systems/1/Processors/CPU0": cpu("CPU0"),
    R + "/Systems/1/Processors/CPU1": cpu("CPU1"),
    R + "/Systems/1/Memory": {"Members": [{"@odata.id": R + "/Systems/1/Memory/A1"},
        {"@odata.id": R + "/Systems/1/Memory/A2"}]},
    R + "/Systems/1/Memory/A1": {"Manufacturer": "Samsung", "SerialNumber": "DIMM-SN-A1",
        "CapacityMiB": 32768, "OperatingSpeedMhz": 3200, "Status": {"State": "Enabled"}},
    R + "/Systems/1/Memory/A2": {"Status": {"State": "Absent"}},
    R + "/Chassis/1/PCIeDevices/NIC1": {"Name": "NIC1", "Manufacturer": "Mellanox", "Model": "ConnectX-6"},
}
want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401); self.end_headers(); return
        page = pages.get(self.path.rstrip("/"))
        body = json.dumps(page).encode() if page is not None else b"{}"
        self.send_response(200 if page is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((addr, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

/// [`REDFISH_SERVER`] on `ip`:443 with a certificate from [`bmc_certificate`] (in `dir`; the
/// agent trusts it with `--redfish-ca-file <dir>/bmc-ca.pem`), admitting `admin`/`password`.
pub fn recorded_redfish(dir: &Path, ip: &str, password: &str) -> anyhow::Result<Daemon> {
    bmc_certificate(dir, ip)?;
    std::fs::write(dir.join("redfish.py"), REDFISH_SERVER)?;
    let mut cmd = Command::new("python3");
    cmd.arg(dir.join("redfish.py"))
        .arg(ip)
        .arg(dir.join("bmc.pem"))
        .arg(dir.join("bmc.key"))
        .args(["admin", password]);
    Daemon::spawn(cmd, &dir.join("redfish.log"))
}
