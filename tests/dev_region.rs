//! `plinth-coordinator dev --hosts 2 --with-bmc 1`, README command 1's region: two hosts on
//! private libvirtd daemons with QEMU, a simulated BMC and the demo. Through the CLI, as the
//! dev mode's closing lines suggest: the drain plan, entering maintenance (the demo's guests
//! really live-migrate to the other host), powering the demo server off (ipmitool agrees).
//! Then Ctrl-C (SIGINT) stops every process the region started; a second start resumes it.

use plinth_e2e::libvirtd::{process_running, real_libvirt_allowed};
use plinth_e2e::process::Daemon;
use plinth_e2e::{bin, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The demo: an image import, two TCG guests booting, a BMC prepared.
const UP: Duration = Duration::from_secs(300);

fn free_port(ip: &str) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// `export NAME=value` lines of dev.env.
fn env_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "PATH")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `plinth ARGS` with the region's environment; its stdout, or a failure with its output.
fn cli(env: &[(String, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin("plinth"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "plinth {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

fn cli_json(env: &[(String, String)], args: &[&str]) -> anyhow::Result<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    Ok(serde_json::from_str(&cli(env, &all)?)?)
}

/// Starts `dev` on `data` and waits for dev.env (written once the region is up).
async fn start(data: &Path, listen: &str, log: &Path) -> anyhow::Result<(Daemon, String)> {
    let env_file = data.join("dev.env");
    let _ = std::fs::remove_file(&env_file);
    let mut cmd = Command::new(bin("plinth-coordinator"));
    cmd.arg("dev")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", listen, "--hosts", "2", "--with-bmc", "1"])
        .env("PLINTH_AGENT_BIN", bin("plinth-agent"));
    let dev = Daemon::spawn(cmd, log)?;
    let env = wait_for("the dev region to be up", UP, || {
        let (env_file, log) = (env_file.clone(), log.to_path_buf());
        async move {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::ensure!(!text.contains("Error:"), "dev failed: {text}");
            Ok(std::fs::read_to_string(&env_file).ok())
        }
    })
    .await?;
    Ok((dev, env))
}

/// The pids of every process the region started: the agents, libvirtd daemons and their
/// QEMU, the BMC simulator (and its console).
fn region_pids(data: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for pidfile in [
        "hosts/hv1/libvirt/run/libvirtd.pid",
        "hosts/hv2/libvirt/run/libvirtd.pid",
        "bmcs/bmc1/sim.pid",
        "bmcs/bmc1/console.pid",
    ] {
        if let Some(pid) = std::fs::read_to_string(data.join(pidfile))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            pids.push(pid);
        }
    }
    for hv in ["hv1", "hv2"] {
        let dir = data.join(format!("hosts/{hv}/libvirt/run/qemu"));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "pid")
                && let Some(pid) = std::fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|p| p.trim().parse().ok())
            {
                pids.push(pid);
            }
        }
    }
    // The agents: every process whose command line names the data directory.
    let mark = data.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains(&mark) && cmdline.contains("plinth-agent") {
            pids.push(pid);
        }
    }
    pids
}

/// SIGINT, as Ctrl-C sends; the region must exit cleanly and leave none of its processes.
fn interrupt(mut dev: Daemon, data: &Path, log: &Path) -> anyhow::Result<()> {
    let pids = region_pids(data);
    assert!(pids.len() >= 6, "agents, daemons, guests, BMC: {pids:?}");
    let pid = dev.pid().expect("dev runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )?;
    let status = dev.wait(Duration::from_secs(90))?;
    assert!(
        status.success(),
        "dev exited with {status}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let left: Vec<u32> = pids.into_iter().filter(|p| process_running(*p)).collect();
    assert!(left.is_empty(), "still running after Ctrl-C: {left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_region_drains_for_real_and_powers_its_server() -> anyhow::Result<()> {
    if !real_libvirt_allowed()? {
        return Ok(());
    }
    let root = tempfile::tempdir()?;
    let data = root.path().join("region");
    let listen = format!("127.0.0.61:{}", free_port("127.0.0.61")?);
    let log = root.path().join("dev.log");
    let (dev, text) = start(&data, &listen, &log).await?;
    let printed = std::fs::read_to_string(&log)?;
    for line in [
        "The web console: https://",
        "source ",
        "plinth hosts maintenance plan",
    ] {
        assert!(
            printed.contains(line),
            "dev printed no {line:?}:\n{printed}"
        );
    }
    let env = env_of(&text);

    // The demo: two running instances on one host, one server of the demo tenant.
    let instances = cli_json(&env, &["instances", "list"])?;
    let items = instances["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{instances}");
    assert!(items.iter().all(|i| i["state"] == "running"), "{instances}");
    // The host of the first: its guests are the ones the drain moves.
    let from = items[0]["host_id"].as_str().unwrap_or_default().to_string();
    let on_it: Vec<&Value> = items
        .iter()
        .filter(|i| i["host_id"] == from.as_str())
        .collect();
    let hosts = cli_json(&env, &["hosts", "list"])?;
    assert_eq!(hosts["total"], 2, "{hosts}");

    // The three commands dev mode suggests.
    let plan = cli(&env, &["hosts", "maintenance", "plan", &from])?;
    for i in &on_it {
        let id = i["id"].as_str().unwrap_or_default();
        assert!(plan.contains(id), "the plan names {id}:\n{plan}");
    }
    cli(&env, &["hosts", "lock", &from])?;
    cli(&env, &["hosts", "maintenance", "enter", &from, "--wait"])?;
    let after = cli_json(&env, &["instances", "list"])?;
    for i in after["items"].as_array().into_iter().flatten() {
        assert_eq!(i["state"], "running", "{i}");
        assert_ne!(i["host_id"], from.as_str(), "moved off the host: {i}");
    }
    let servers = cli_json(&env, &["baremetal", "list"])?;
    let bm = servers["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!bm.is_empty(), "{servers}");
    cli(
        &env,
        &["baremetal", "power", &bm, "on", "--wait-timeout", "2m"],
    )?;
    cli(
        &env,
        &["baremetal", "power", &bm, "off", "--wait-timeout", "2m"],
    )?;
    let ipmi = Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.20.1",
            "-U",
            "admin",
        ])
        .args(["-P", "dev-bmc-pass", "chassis", "power", "status"])
        .output()?;
    let said = String::from_utf8_lossy(&ipmi.stdout);
    assert!(said.contains("is off"), "ipmitool: {said}");

    interrupt(dev, &data, &log)?;

    // A second start resumes the same region: the same hosts, no second demo.
    let (dev, text) = start(&data, &listen, &log).await?;
    let env = env_of(&text);
    let again = cli_json(&env, &["hosts", "list"])?;
    assert_eq!(again["total"], 2, "{again}");
    let tenants = cli_json(&env, &["tenants", "list"])?;
    assert_eq!(tenants["total"], 1, "one demo tenant: {tenants}");
    interrupt(dev, &data, &log)?;
    // The demo segments' uplink (a veth) and the bridge the agents made on it stay with a
    // region's data; this region's data goes now.
    for link in ["pldev0", "pl-pldev0"] {
        let _ = Command::new("ip").args(["link", "del", link]).output();
    }
    Ok(())
}
