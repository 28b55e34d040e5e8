//! `plinth-coordinator dev --listen` on a loopback address other than 127.0.0.1: the server
//! certificate names the address (made so at init, or re-issued for a region made without it),
//! so the dev region's own agent enrolls and comes online.

use plinth_common::tls::client_config;
use plinth_e2e::process::Daemon;
use plinth_e2e::{bin, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A port that was free on `ip` a moment ago.
fn free_port(ip: &str) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// `export NAME=value` from the dev.env the region writes once its agent is online.
fn env_value(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")))
        .map(str::to_string)
}

/// Starts `dev` on `ip` with `data`, waits until its agent's host is online at `host_ip`
/// through the API, and stops the region by its pid.
async fn dev_region_comes_up(
    root: &Path,
    data: &Path,
    ip: &str,
    host_ip: &str,
) -> anyhow::Result<()> {
    plinth_common::tls::install_crypto_provider();
    let listen = format!("{ip}:{}", free_port(ip)?);
    let mut cmd = Command::new(bin("plinth-coordinator"));
    cmd.arg("dev")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &listen, "--libvirt-uri", "test:///default"])
        // The region's address only: no BMCs and no demo (tests/dev_region.rs has those).
        .args(["--with-bmc", "0", "--empty"])
        .env("PLINTH_AGENT_BIN", bin("plinth-agent"));
    let env_file = data.join("dev.env");
    // An earlier run's, which this run replaces once it is up.
    let _ = std::fs::remove_file(&env_file);
    let log = root.join("dev.log");
    let mut dev = Daemon::spawn(cmd, &log)?;
    let env = wait_for("the dev region to be up", Duration::from_secs(90), || {
        let (env_file, log) = (env_file.clone(), log.clone());
        async move {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::ensure!(!text.contains("Error:"), "dev failed: {text}");
            Ok(std::fs::read_to_string(&env_file).ok())
        }
    })
    .await?;
    let url = env_value(&env, "PLINTH_URL").unwrap_or_default();
    let token = env_value(&env, "PLINTH_TOKEN").unwrap_or_default();
    assert_eq!(url, format!("https://{listen}"));

    let ca_pem = std::fs::read_to_string(data.join("ca.pem"))?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&ca_pem, None)?)
        .timeout(Duration::from_secs(10))
        .build()?;
    let hosts: Value = http
        .get(format!("{url}/v1/hosts"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let host = &hosts["items"][0];
    assert_eq!(hosts["total"], 1, "{hosts}");
    assert_eq!(host["ip"], host_ip, "{hosts}");
    assert_eq!(host["agent"], "online", "{hosts}");

    let status = dev.terminate(Duration::from_secs(30))?;
    assert!(
        status.success(),
        "dev exited with {status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    Ok(())
}

#[tokio::test]
async fn dev_on_another_loopback_address() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("region");
    dev_region_comes_up(root.path(), &data, "127.0.0.51", "127.0.0.51").await
}

#[tokio::test]
async fn dev_reissues_a_certificate_without_the_address() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("region");
    let out = Command::new(bin("plinth-coordinator"))
        .arg("init")
        .arg("--data-dir")
        .arg(&data)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dev_region_comes_up(root.path(), &data, "127.0.0.52", "127.0.0.52").await
}

/// A second run on another address: the certificate is re-issued, and the agent enrolled by
/// the first run follows the coordinator there (it keeps its own address).
#[tokio::test]
async fn dev_moves_to_another_address() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("region");
    dev_region_comes_up(root.path(), &data, "127.0.0.54", "127.0.0.54").await?;
    dev_region_comes_up(root.path(), &data, "127.0.0.55", "127.0.0.54").await
}
