//! `plinth-agent enroll`: trust the coordinator's CA only if its hash matches the one the admin
//! gave (as `kubeadm join` does), then trade the one-time token and a CSR for a certificate.
//! The private key is made here and never leaves the host.

use crate::facts::hostname;
use crate::identity::{AgentDir, Enrollment};
use anyhow::{Context, bail};
use plinth_common::api::{EnrollRequest, EnrollResponse, ErrorBody};
use plinth_common::tls::{ca_hash, client_config, new_key_and_csr};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// The coordinator, `https://IP:PORT`.
    #[arg(long, env = "PLINTH_AGENT_COORDINATOR")]
    pub coordinator: String,
    /// One-time enrollment token from `plinth-coordinator token create`.
    #[arg(long, env = "PLINTH_AGENT_TOKEN")]
    pub token: String,
    /// `sha256:<hex>` of the CA's public key, printed by `init` and `token create`.
    #[arg(long)]
    pub ca_hash: String,
    /// The cluster this host joins.
    #[arg(long)]
    pub cluster: String,
    /// Address the coordinator reaches this host at [default: the source address towards it].
    #[arg(long)]
    pub address: Option<IpAddr>,
    #[arg(long, env = "PLINTH_AGENT_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: std::path::PathBuf,
}

fn check_hash_format(hash: &str) -> anyhow::Result<String> {
    let hex = hash
        .strip_prefix("sha256:")
        .context("--ca-hash must look like sha256:<64 hex digits>")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--ca-hash must look like sha256:<64 hex digits>");
    }
    Ok(format!("sha256:{}", hex.to_lowercase()))
}

/// The local address the kernel would use towards the coordinator.
fn source_address(coordinator: &reqwest::Url) -> anyhow::Result<IpAddr> {
    let host = coordinator
        .host_str()
        .context("coordinator URL has no host")?;
    let port = coordinator.port_or_known_default().unwrap_or(443);
    let target: SocketAddr =
        std::net::ToSocketAddrs::to_socket_addrs(&(host.trim_matches(['[', ']']), port))?
            .next()
            .context("coordinator host does not resolve")?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()?;
    let socket = UdpSocket::bind(bind)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

/// Fetches the CA over an unauthenticated TLS connection and keeps it only if it hashes to
/// `want`: the hash, not the connection, is the trust anchor.
async fn fetch_pinned_ca(coordinator: &str, want: &str) -> anyhow::Result<String> {
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(15))
        .build()?;
    let ca_pem = insecure
        .get(format!("{coordinator}/v1/ca"))
        .send()
        .await
        .with_context(|| format!("fetching the CA from {coordinator}"))?
        .error_for_status()?
        .text()
        .await?;
    let got = ca_hash(&ca_pem).context("the coordinator's CA is not a certificate")?;
    if got != want {
        bail!("the coordinator's CA hashes to {got}, not {want}: refusing to trust it");
    }
    Ok(ca_pem)
}

pub async fn enroll(args: &EnrollArgs) -> anyhow::Result<Enrollment> {
    let want = check_hash_format(&args.ca_hash)?;
    let coordinator = args.coordinator.trim_end_matches('/').to_string();
    let url: reqwest::Url = coordinator
        .parse()
        .context("--coordinator must be a URL like https://IP:PORT")?;
    if url.scheme() != "https" {
        bail!("--coordinator must use https");
    }
    let address = match args.address {
        Some(a) => a,
        None => source_address(&url)?,
    };
    let ca_pem = fetch_pinned_ca(&coordinator, &want).await?;
    let (key_pem, csr_pem) = new_key_and_csr(&hostname())?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(&ca_pem, None)?)
        .timeout(Duration::from_secs(30))
        .build()?;
    let request = EnrollRequest {
        token: args.token.clone(),
        csr_pem,
        cluster_id: args.cluster.clone(),
        address,
        hostname: hostname(),
    };
    let resp = client
        .post(format!("{coordinator}/v1/enroll"))
        .json(&request)
        .send()
        .await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or(text);
        bail!("enrollment refused ({status}): {message}");
    }
    let enrolled: EnrollResponse = resp.json().await?;
    if ca_hash(&enrolled.ca_pem)? != want {
        bail!("the coordinator answered with a different CA than the pinned one");
    }

    let dir = AgentDir::new(&args.data_dir);
    plinth_common::fsutil::create_private_dir(dir.root())
        .with_context(|| format!("creating {}", dir.root().display()))?;
    plinth_common::fsutil::write_file(&dir.ca(), ca_pem.as_bytes(), 0o644)?;
    dir.save_credentials(&enrolled.certificate_pem, &key_pem)?;
    let enrollment = Enrollment {
        host_id: enrolled.host_id,
        coordinator,
        cluster: args.cluster.clone(),
        address,
    };
    dir.save_enrollment(&enrollment)?;
    // A new region's job lease counts its terms from the start.
    match std::fs::remove_file(dir.job_epoch()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", dir.job_epoch().display()));
        }
        _ => {}
    }
    Ok(enrollment)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_format() {
        let good = format!("sha256:{}", "A".repeat(64));
        assert_eq!(
            super::check_hash_format(&good).ok(),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        for bad in [
            "",
            "sha256:",
            "md5:00",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(super::check_hash_format(bad).is_err(), "{bad}");
        }
    }
}
