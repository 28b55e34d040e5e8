//! TLS for plinth: the coordinator's CA and the certificates it issues, the role each
//! certificate carries, rustls configurations, and serving an axum router over (m)TLS.

pub mod ca;
pub mod config;
pub mod identity;
pub mod metrics;
pub mod revocation;
pub mod serve;

pub use ca::{Ca, LeafSpec, ca_hash, cert_names, cert_not_after, cert_serial, new_key_and_csr};
pub use config::{
    ReloadableCert, checked_client_config, client_config, install_crypto_provider, server_config,
};
pub use identity::{PeerIdentity, Role};
pub use revocation::Revocations;
pub use serve::serve_tls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration is invalid")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier could not be built")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{0}")]
    Pem(String),
}
