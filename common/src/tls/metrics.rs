//! TLS for a `/metrics` listener (the agent's and the coordinator's): Prometheus has no region
//! certificate, so the operator gives a certificate, and optionally the CA whose client
//! certificates scrapers must present.

use super::config::{certs_from_pem, key_from_pem};
use anyhow::Context;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::path::PathBuf;
use std::sync::Arc;

/// TLS for `/metrics`: PEM files read at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, scrapers must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

impl MetricsTls {
    /// The server configuration (h2 and HTTP/1.1) from the files.
    pub fn server_config(&self) -> anyhow::Result<Arc<ServerConfig>> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let certs = certs_from_pem(&read(&self.cert)?)?;
        let key = key_from_pem(&read(&self.key)?)?;
        let builder = ServerConfig::builder();
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs_from_pem(&read(ca)?)? {
                    roots.add(cert)?;
                }
                builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder(Arc::new(roots)).build()?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .context("the metrics certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
