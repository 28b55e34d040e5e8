//! `/metrics` TLS settings: the certificate and key to serve with, and the CA whose client
//! certificates scrapers must show. Flag (or environment) over file; both or neither of
//! certificate and key.

use crate::config::FileConfig;
use anyhow::bail;
use plinth_common::tls::metrics::MetricsTls;
use std::path::PathBuf;

#[derive(Debug, Default, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve `/metrics` over TLS with this certificate (PEM; needs --metrics-tls-key).
    #[arg(long, env = "PLINTH_METRICS_TLS_CERT")]
    pub metrics_tls_cert: Option<PathBuf>,
    /// The key of --metrics-tls-cert (PEM).
    #[arg(long, env = "PLINTH_METRICS_TLS_KEY")]
    pub metrics_tls_key: Option<PathBuf>,
    /// Scrapers must present a certificate this CA (PEM) signed.
    #[arg(long, env = "PLINTH_METRICS_TLS_CLIENT_CA")]
    pub metrics_tls_client_ca: Option<PathBuf>,
}

pub fn tls(args: &TlsArgs, file: &FileConfig) -> anyhow::Result<Option<MetricsTls>> {
    let pick = |a: &Option<PathBuf>, f: &Option<PathBuf>| a.clone().or_else(|| f.clone());
    let cert = pick(&args.metrics_tls_cert, &file.metrics_tls_cert);
    let key = pick(&args.metrics_tls_key, &file.metrics_tls_key);
    let client_ca = pick(&args.metrics_tls_client_ca, &file.metrics_tls_client_ca);
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(MetricsTls {
            cert,
            key,
            client_ca,
        })),
        (None, None) if client_ca.is_some() => {
            bail!("metrics_tls_client_ca needs metrics_tls_cert and metrics_tls_key")
        }
        (None, None) => Ok(None),
        _ => bail!("metrics_tls_cert and metrics_tls_key go together: give both or neither"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_and_key_go_together() {
        let file = FileConfig {
            metrics_tls_key: Some("/k.pem".into()),
            ..FileConfig::default()
        };
        let half = TlsArgs::default();
        assert!(tls(&half, &file).is_err(), "a key alone");
        let whole = TlsArgs {
            metrics_tls_cert: Some("/c.pem".into()),
            ..TlsArgs::default()
        };
        let got = tls(&whole, &file).expect("both").expect("tls");
        assert_eq!((got.cert, got.key), ("/c.pem".into(), "/k.pem".into()));
        assert!(
            tls(&TlsArgs::default(), &FileConfig::default())
                .expect("none")
                .is_none()
        );
    }
}
