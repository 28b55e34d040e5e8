//! The agent's enrolled identity on disk: which host it is, where its coordinator is, the CA
//! it pinned, and its certificate with the key that never leaves this host.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `agent.toml` in the data directory, written at enrollment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub host_id: String,
    /// `https://IP:PORT` of the coordinator.
    pub coordinator: String,
    pub cluster: String,
    /// The address the coordinator reaches this agent at (its certificate's SAN).
    pub address: std::net::IpAddr,
}

#[derive(Debug, Clone)]
pub struct AgentDir(PathBuf);

impl AgentDir {
    pub fn new(root: impl Into<PathBuf>) -> AgentDir {
        AgentDir(root.into())
    }
    pub fn root(&self) -> &Path {
        &self.0
    }
    pub fn enrollment(&self) -> PathBuf {
        self.0.join("agent.toml")
    }
    /// The highest epoch of the job lease a coordinator's call carried (`fence.rs`).
    pub fn job_epoch(&self) -> PathBuf {
        self.0.join("job-epoch")
    }

    pub fn ca(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    /// Certificate and private key in one file, so a renewal replaces both in one rename.
    pub fn credentials(&self) -> PathBuf {
        self.0.join("agent.pem")
    }

    pub fn load_enrollment(&self) -> anyhow::Result<Enrollment> {
        let path = self.enrollment();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (has this host enrolled? run `plinth-agent enroll`)",
                path.display()
            )
        })?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save_enrollment(&self, e: &Enrollment) -> anyhow::Result<()> {
        let text = toml::to_string(e)?;
        write_file(&self.enrollment(), text.as_bytes(), 0o644)
    }

    /// Serials of the coordinator's rotated-out certificates (from its heartbeat answers).
    pub fn revoked_coordinator(&self) -> PathBuf {
        self.0.join("revoked-coordinator.json")
    }

    /// The revoked coordinator serials with the time each is refused from; none before the
    /// coordinator first sent any.
    pub fn load_revoked_coordinator(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let path = self.revoked_coordinator();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save_revoked_coordinator(&self, serials: &[(String, i64)]) -> anyhow::Result<()> {
        let text = serde_json::to_string(serials)?;
        write_file(&self.revoked_coordinator(), text.as_bytes(), 0o600)
    }

    /// (certificate PEM, key PEM) from the credentials file.
    pub fn load_credentials(&self) -> anyhow::Result<(String, String)> {
        let path = self.credentials();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        split_credentials(&text)
            .with_context(|| format!("{} lacks a certificate or a key", path.display()))
    }

    pub fn save_credentials(&self, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
        let text = format!("{}\n{}", cert_pem.trim_end(), key_pem);
        write_file(&self.credentials(), text.as_bytes(), 0o600)
    }
}

fn split_credentials(text: &str) -> Option<(String, String)> {
    let key_start = text.find("-----BEGIN PRIVATE KEY-----")?;
    let (cert, key) = text.split_at(key_start);
    cert.contains("-----BEGIN CERTIFICATE-----")
        .then(|| (cert.trim_end().to_string() + "\n", key.to_string()))
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    plinth_common::fsutil::write_file(path, contents, mode)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_round_trip() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let agent = super::AgentDir::new(dir.path());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";
        agent.save_credentials(cert, key)?;
        assert_eq!(
            agent.load_credentials()?,
            (cert.to_string(), key.to_string())
        );
        Ok(())
    }
}
