//! Hardware inventory from Redfish end to end (SPEC §4): the agent reads CPUs, memory modules
//! and PCIe devices from the BMC's Redfish service on its IPMI address (port 443, TLS, basic
//! auth with the IPMI credentials), or shows them as unknown.
//!
//! Two services: recorded Redfish answers of a real two-socket server served by Python, and
//! sushy-tools' emulator (its libvirt driver over libvirt's test driver) beside an `ipmi_sim`
//! BMC on the same address, whose answers the agent must read as served, with what sushy lacks
//! (memory modules, PCIe devices, power, caches) unknown. The sushy test is skipped where
//! sushy-emulator is not installed (scripts/install-deps.sh puts it in SUSHY_VENV).

use plinth_e2e::baremetal::{
    SECRET, Seen, WAIT, add_body, assert_no_secret, inventory_read, region,
};
use plinth_e2e::bmc::{SimBmc, bmc_certificate, recorded_redfish};
use plinth_e2e::instances::tenant;
use plinth_e2e::process::Daemon;
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where scripts/install-deps.sh installs the pinned sushy-tools (and libvirt-python).
const SUSHY_VENV: &str = "/opt/plinth-test/sushy";
/// The CPU the emulated system has; sushy names it as the processors' model.
const CPU_MODEL: &str = "Skylake-Server";

/// libvirt's test driver reads its domains from this file; sushy lists each as a system.
const NODE_XML: &str = r#"<node>
  <domain type='test'>
    <name>bm-sushy</name>
    <uuid>4f2a8e1c-3b7d-4c59-9e0a-6d1f2b3c4d5e</uuid>
    <memory unit='GiB'>8</memory>
    <vcpu>4</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <cpu mode='custom' match='exact'>
      <model>Skylake-Server</model>
      <vendor>Intel</vendor>
      <topology sockets='2' cores='2' threads='1'/>
    </cpu>
  </domain>
</node>
"#;

/// The venv's sushy-emulator, else one on PATH.
fn sushy_emulator() -> Option<PathBuf> {
    let venv = Path::new(SUSHY_VENV).join("bin/sushy-emulator");
    if venv.exists() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("sushy-emulator"))
        .find(|p| p.exists())
}

/// The interpreter sushy-emulator runs with (its `#!` line), which has sushy's `bcrypt`.
fn sushy_python(emulator: &Path) -> anyhow::Result<PathBuf> {
    let script = std::fs::read_to_string(emulator)?;
    let interpreter = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("{} has no #! line", emulator.display()))?;
    Ok(PathBuf::from(interpreter))
}

/// A real sushy-emulator on `ip`:443 with `cert`/`key`, admitting `admin`/`password` only.
fn start_sushy(emulator: &Path, dir: &Path, ip: &str, password: &str) -> anyhow::Result<Daemon> {
    // sushy reads htpasswd files with bcrypt digests only; the lowest cost keeps each
    // authenticated request quick.
    let out = Command::new(sushy_python(emulator)?)
        .args([
            "-c",
            "import bcrypt, sys; print('admin:' + bcrypt.hashpw(sys.stdin.read().encode(), \
             bcrypt.gensalt(4)).decode())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(password.as_bytes())?;
            child.wait_with_output()
        })?;
    anyhow::ensure!(out.status.success(), "hashing the sushy password failed");
    std::fs::write(dir.join("htpasswd"), &out.stdout)?;
    std::fs::write(dir.join("node.xml"), NODE_XML)?;
    let config = [
        ("SUSHY_EMULATOR_LISTEN_IP", json!(ip)),
        ("SUSHY_EMULATOR_LISTEN_PORT", json!(443)),
        ("SUSHY_EMULATOR_SSL_CERT", path(&dir.join("bmc.pem"))),
        ("SUSHY_EMULATOR_SSL_KEY", path(&dir.join("bmc.key"))),
        ("SUSHY_EMULATOR_AUTH_FILE", path(&dir.join("htpasswd"))),
        (
            "SUSHY_EMULATOR_LIBVIRT_URI",
            json!(format!("test://{}", dir.join("node.xml").display())),
        ),
        ("SUSHY_EMULATOR_STATE_DIR", path(&dir.join("sushy-state"))),
    ];
    // A Python file; JSON strings and numbers are Python literals too.
    let text: String = config.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    std::fs::write(dir.join("sushy.conf"), text)?;
    let mut cmd = Command::new(emulator);
    cmd.arg("--config").arg(dir.join("sushy.conf"));
    Daemon::spawn(cmd, &dir.join("sushy.log"))
}

fn path(p: &Path) -> Value {
    json!(p.display().to_string())
}

/// Reads Redfish JSON from sushy directly, as the test's reference.
struct Sushy {
    http: reqwest::Client,
    base: String,
    password: String,
}

impl Sushy {
    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth("admin", Some(&self.password))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, v) = self.get(path).await?;
        anyhow::ensure!(status == 200, "sushy GET {path}: {status} {v}");
        Ok(v)
    }

    /// The members of the collection at `path`, each read.
    async fn members(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        for m in self.ok(path).await?["Members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let link = m["@odata.id"].as_str().unwrap_or_default();
            out.push(self.ok(link).await?);
        }
        Ok(out)
    }
}

/// A Redfish count, which sushy writes as a string ("2").
fn count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

#[tokio::test]
async fn inventory_matches_what_sushy_serves() -> anyhow::Result<()> {
    let Some(emulator) = sushy_emulator() else {
        eprintln!(
            "SKIPPED: sushy-emulator is not installed (not in {SUSHY_VENV}/bin nor on PATH); \
             scripts/install-deps.sh installs it"
        );
        return Ok(());
    };
    let r = Region::start().await?;
    r.create_cluster("az1").await?;
    // The BMC: IPMI from ipmi_sim and Redfish from sushy, on one address as real BMCs have.
    let bmc = SimBmc::start(SECRET)?;
    let dir = r.dir.path();
    let ca_pem = bmc_certificate(dir, &bmc.ip)?;
    let _sushy = start_sushy(&emulator, dir, &bmc.ip, SECRET)?;
    let sushy = Sushy {
        http: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
            .timeout(Duration::from_secs(10))
            .build()?,
        base: format!("https://{}", bmc.ip),
        password: SECRET.into(),
    };
    let systems = wait_for("sushy-emulator to serve", WAIT, || async {
        Ok(sushy
            .get("/redfish/v1/Systems")
            .await
            .ok()
            .and_then(|(status, v)| (status == 200).then_some(v)))
    })
    .await
    .map_err(|e| {
        let log = std::fs::read_to_string(dir.join("sushy.log")).unwrap_or_default();
        e.context(format!("sushy.log:\n{log}"))
    })?;
    // Basic auth is in force: the agent's reads below pass it.
    let anonymous = sushy.http.get(format!("{}/redfish/v1/Systems", sushy.base));
    assert_eq!(anonymous.send().await?.status().as_u16(), 401);

    // The reference: what sushy serves for the system the agent reads (the first listed).
    let system_path = systems["Members"][0]["@odata.id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("sushy lists no system: {systems}"))?
        .to_string();
    let system = sushy.ok(&system_path).await?;
    let processors_path = system["Processors"]["@odata.id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("sushy links no processors: {system}"))?;
    let processors = sushy.members(processors_path).await?;
    assert!(!processors.is_empty(), "sushy serves no processors");
    let memory_path = system["Memory"]["@odata.id"].as_str().unwrap_or_default();
    let (memory_status, memory) = if memory_path.is_empty() {
        (404, Value::Null)
    } else {
        sushy.get(memory_path).await?
    };

    let ca_file = dir.join("bmc-ca.pem").display().to_string();
    let _agent = r
        .start_agent_with_flags("127.0.88.1", "az1", &["--redfish-ca-file", &ca_file])
        .await?;
    tenant(&r, "a@example.com").await?;
    let body = json!({
        "name": "sushy", "ipmi_ip": bmc.ip, "ipmi_username": "admin", "ipmi_password": SECRET,
        "rack_location": "R7-U14", "label": "redfish", "tenant_email": "a@example.com",
    });
    let (status, added) = r.post("/v1/baremetal", body).await?;
    assert_eq!(status, 202, "{added}");
    let id = added["id"].as_str().unwrap_or_default().to_string();
    let server = inventory_read(&r, &id).await?;
    assert_eq!(server["state"], "running", "IPMI answered: {server}");
    let inv = &server["inventory"];
    assert_eq!(inv["source"], "redfish", "{inv}");

    // Processors: one entry per CPU sushy lists, its model and cores; sushy has no power or
    // cache sizes, so neither has plinth.
    let cpus = inv["cpus"].as_array().cloned().unwrap_or_default();
    assert_eq!(cpus.len(), processors.len(), "{inv}");
    for (got, served) in cpus.iter().zip(&processors) {
        assert_eq!(served["Model"], CPU_MODEL, "sushy names the domain's CPU");
        assert_eq!(got["model"], served["Model"], "{got} vs {served}");
        assert!(count(&served["TotalCores"]).is_some(), "{served}");
        assert_eq!(got["cores"].as_u64(), count(&served["TotalCores"]), "{got}");
        for (field, redfish) in [
            ("rated_power_watts", "TDPWatts"),
            ("rated_power_watts", "MaxTDPWatts"),
            ("l1_cache_kb", "ProcessorMemory"),
            ("l2_cache_kb", "ProcessorMemory"),
            ("l3_cache_kb", "ProcessorMemory"),
        ] {
            assert!(served.get(redfish).is_none(), "sushy now serves {redfish}");
            assert!(got[field].is_null(), "{field} is unknown: {got}");
        }
    }

    // Memory: sushy links a collection it does not serve; plinth says it does not know, and
    // why, rather than losing the processors too.
    if memory_status == 200 {
        let modules = sushy.members(memory_path).await?;
        let present = modules
            .iter()
            .filter(|m| m["Status"]["State"] != "Absent")
            .count();
        assert_eq!(
            inv["memory"].as_array().map(Vec::len),
            Some(present),
            "{inv}"
        );
    } else {
        assert_eq!(memory_status, 404, "{memory}");
        assert!(inv["memory"].is_null(), "memory is unknown: {inv}");
        let note = inv["note"].as_str().unwrap_or_default();
        assert!(
            note.contains(memory_path) && note.contains("404"),
            "the note says why: {inv}"
        );
    }

    // PCIe devices: sushy links none, so they are unknown, not an empty list.
    assert!(system.get("PCIeDevices").is_none(), "{system}");
    assert!(inv["pcie_devices"].is_null(), "{inv}");
    Ok(())
}

#[tokio::test]
async fn inventory_comes_from_redfish_or_is_unknown() -> anyhow::Result<()> {
    let r = region().await?;
    let with_redfish = SimBmc::start(SECRET)?;
    let ipmi_only = SimBmc::start(SECRET)?;
    let dir = r.dir.path();
    let _redfish = recorded_redfish(dir, &with_redfish.ip, SECRET)?;
    let ca_file = dir.join("bmc-ca.pem").display().to_string();
    let _agent = r
        .start_agent_with_flags("127.0.87.1", "az1", &["--redfish-ca-file", &ca_file])
        .await?;
    tenant(&r, "a@example.com").await?;
    let mut seen = Seen::default();
    let mut ids = Vec::new();
    for (name, sim) in [("rf", &with_redfish), ("plain", &ipmi_only)] {
        let body = add_body(name, &sim.ip, SECRET, Some("a@example.com"));
        let (status, v) = seen.post(&r, "/v1/baremetal", body).await?;
        assert_eq!(status, 202, "{v}");
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    let rf = seen.keep(&inventory_read(&r, &ids[0]).await?);
    let inv = &rf["inventory"];
    assert_eq!(inv["source"], "redfish", "{rf}");
    assert_eq!(inv["cpus"].as_array().map(Vec::len), Some(2), "{inv}");
    let cpu = &inv["cpus"][0];
    assert_eq!(cpu["model"], "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
    assert_eq!(
        (cpu["cores"].as_u64(), cpu["rated_power_watts"].as_u64()),
        (Some(32), Some(205))
    );
    assert_eq!(
        (
            cpu["l1_cache_kb"].as_u64(),
            cpu["l2_cache_kb"].as_u64(),
            cpu["l3_cache_kb"].as_u64()
        ),
        (Some(2560), Some(40960), Some(49152))
    );
    let memory = inv["memory"].as_array().cloned().unwrap_or_default();
    assert_eq!(memory.len(), 1, "the empty slot is left out: {inv}");
    assert_eq!(memory[0]["vendor"], "Samsung");
    assert_eq!(memory[0]["serial"], "DIMM-SN-A1");
    assert_eq!(
        (
            memory[0]["capacity_gb"].as_f64(),
            memory[0]["speed_mhz"].as_u64()
        ),
        (Some(32.0), Some(3200))
    );
    assert_eq!(inv["pcie_devices"][0]["model"], "ConnectX-6", "{inv}");

    let plain = seen.keep(&inventory_read(&r, &ids[1]).await?);
    assert_eq!(plain["state"], "running");
    assert_eq!(plain["inventory"]["source"], "unknown", "{plain}");
    assert!(
        plain["inventory"]["note"]
            .as_str()
            .unwrap_or("")
            .contains("no Redfish service"),
        "{plain}"
    );
    assert_no_secret(&r, &seen, SECRET)
}
