//! Hardware inventory from a real Redfish service: sushy-tools' emulator (its libvirt driver
//! over libvirt's test driver) on a BMC's own address, port 443, TLS and basic auth, beside an
//! `ipmi_sim` BMC on that address. What the agent reads must be what sushy serves, and what
//! sushy lacks (memory modules, PCIe devices, power, caches) must show as unknown. Skipped
//! where sushy-emulator is not installed (scripts/install-deps.sh puts it in SUSHY_VENV).

use plinth_common::tls::{Ca, LeafSpec, Role};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::tenant;
use plinth_e2e::process::Daemon;
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where scripts/install-deps.sh installs the pinned sushy-tools (and libvirt-python).
const SUSHY_VENV: &str = "/opt/plinth-test/sushy";
const SECRET: &str = "Zq7-sEcReT-91x";
const WAIT: Duration = Duration::from_secs(60);
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
    let (ca, _) = Ca::generate("bmc-ca")?;
    let mut spec = LeafSpec::new("bmc", Role::Coordinator, Duration::from_secs(3600));
    spec.server = true;
    spec.ips = vec![bmc.ip.parse()?];
    let (cert, key) = ca.issue_with_new_key(&spec)?;
    let dir = r.dir.path();
    std::fs::write(dir.join("bmc.pem"), &cert)?;
    std::fs::write(dir.join("bmc.key"), &key)?;
    std::fs::write(dir.join("bmc-ca.pem"), ca.cert_pem())?;
    let _sushy = start_sushy(&emulator, dir, &bmc.ip, SECRET)?;
    let sushy = Sushy {
        http: reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes())?)
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
    let server = wait_for("the inventory to be read", WAIT, || async {
        let (status, v) = r.get(&format!("/v1/baremetal/{id}")).await?;
        anyhow::ensure!(status == 200, "GET {id}: {status} {v}");
        let read = v["inventory"]["note"]
            .as_str()
            .is_none_or(|n| !n.starts_with("not read yet"));
        Ok(read.then_some(v))
    })
    .await?;
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
