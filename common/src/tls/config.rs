//! rustls configurations. Every plinth TLS endpoint trusts exactly one root: the region's CA.

use super::TlsError;
use super::revocation::{CheckedServerVerifier, Revocations};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::{Arc, RwLock};

/// Installs ring as the process's crypto provider; call once at start-up (later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(format!("unreadable certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::Pem("no certificate in PEM".into()));
    }
    Ok(certs)
}

pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| TlsError::Pem(format!("unreadable key PEM: {e}")))?
        .ok_or_else(|| TlsError::Pem("no private key in PEM".into()))
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem)? {
        roots.add(cert)?;
    }
    Ok(Arc::new(roots))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server certificate that can be swapped while the server runs (agents renew theirs).
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Arc<ReloadableCert>, TlsError> {
        Ok(Arc::new(ReloadableCert {
            current: RwLock::new(certified_key(cert_pem, key_pem)?),
        }))
    }

    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let next = certified_key(cert_pem, key_pem)?;
        // A poisoned lock only means a panic elsewhere mid-swap; the value is still whole.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    let key = provider()
        .key_provider
        .load_private_key(key_from_pem(key_pem)?)?;
    Ok(Arc::new(CertifiedKey::new(certs_from_pem(cert_pem)?, key)))
}

/// A server config that serves `cert` and verifies client certificates against the CA.
/// `require_client_cert`: the agent API requires one; the coordinator's port also serves admins
/// with bearer tokens, so there a certificate is optional (but verified when sent).
pub fn server_config(
    ca_pem: &str,
    cert: Arc<ReloadableCert>,
    require_client_cert: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider());
    let verifier = if require_client_cert {
        builder.build()?
    } else {
        builder.allow_unauthenticated().build()?
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config trusting only the CA, with a client certificate when given.
pub fn client_config(
    ca_pem: &str,
    client_cert: Option<(&str, &str)>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?);
    finish_client(builder, client_cert)
}

/// [`client_config`] that also refuses a server whose certificate is in `revoked`: the
/// coordinator calling agents, agents calling the coordinator.
pub fn checked_client_config(
    ca_pem: &str,
    client_cert: Option<(&str, &str)>,
    revoked: Arc<Revocations>,
) -> Result<ClientConfig, TlsError> {
    let webpki = WebPkiServerVerifier::builder_with_provider(roots(ca_pem)?, provider())
        .build()
        .map_err(|e| TlsError::Pem(format!("server verifier: {e}")))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(CheckedServerVerifier::new(webpki, revoked)?);
    finish_client(builder, client_cert)
}

fn finish_client(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    client_cert: Option<(&str, &str)>,
) -> Result<ClientConfig, TlsError> {
    let mut config = match client_cert {
        Some((cert, key)) => {
            builder.with_client_auth_cert(certs_from_pem(cert)?, key_from_pem(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
