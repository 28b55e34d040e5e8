//! Revoked certificates, by serial. The region CA issues short-lived certificates and publishes
//! no CRL: each side keeps the serials the coordinator revoked (agents' certificates in the
//! coordinator, the coordinator's own in every agent) and refuses them as a TLS peer, both when
//! it connects (the server's certificate) and on every request it serves (the client's).

use super::TlsError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Serials (lowercase hex) and the Unix ms from which each is refused. A revocation may take
/// effect later than it is recorded: a renewed certificate keeps working for a short grace.
#[derive(Debug, Default)]
pub struct Revocations {
    serials: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    pub fn new() -> Arc<Revocations> {
        Arc::default()
    }

    /// Whether `serial` is refused at `now_ms`.
    pub fn is_revoked(&self, serial: &str, now_ms: i64) -> bool {
        // A poisoned lock means a panic mid-insert of plain data; the map is still whole.
        let map = self.serials.read().unwrap_or_else(|p| p.into_inner());
        map.get(serial).is_some_and(|from| *from <= now_ms)
    }

    /// Refuses `serial` from `from_ms` on (an earlier time recorded before wins).
    pub fn revoke(&self, serial: &str, from_ms: i64) {
        let mut map = self.serials.write().unwrap_or_else(|p| p.into_inner());
        let at = map.entry(serial.to_string()).or_insert(from_ms);
        *at = (*at).min(from_ms);
    }

    /// Replaces the whole set (loaded from the store or a file).
    pub fn replace(&self, serials: impl IntoIterator<Item = (String, i64)>) {
        let next: HashMap<String, i64> = serials.into_iter().collect();
        *self.serials.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Every serial with the time it is refused from.
    pub fn snapshot(&self) -> Vec<(String, i64)> {
        let map = self.serials.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map.iter().map(|(s, t)| (s.clone(), *t)).collect();
        all.sort();
        all
    }
}

fn now_ms(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
}

fn serial_of(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(hex::encode(cert.raw_serial()))
}

/// The CA's own verification, then the serial against the revocations.
#[derive(Debug)]
pub(super) struct CheckedServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    revoked: Arc<Revocations>,
}

impl CheckedServerVerifier {
    pub(super) fn new(
        inner: Arc<WebPkiServerVerifier>,
        revoked: Arc<Revocations>,
    ) -> Result<Arc<CheckedServerVerifier>, TlsError> {
        Ok(Arc::new(CheckedServerVerifier { inner, revoked }))
    }
}

impl ServerCertVerifier for CheckedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match serial_of(end_entity) {
            Some(serial) if self.revoked.is_revoked(&serial, now_ms(now)) => {
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            Some(_) => Ok(verified),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_takes_effect_at_its_time() {
        let r = Revocations::new();
        assert!(!r.is_revoked("aa", 0), "nothing revoked yet");
        r.revoke("aa", 1_000);
        assert!(!r.is_revoked("aa", 999), "inside the grace");
        assert!(r.is_revoked("aa", 1_000), "from its time on");
        r.revoke("aa", 5_000);
        assert!(
            r.is_revoked("aa", 1_000),
            "a later time does not undo an earlier one"
        );
        r.revoke("aa", 10);
        assert!(r.is_revoked("aa", 10), "an earlier time wins");
        assert!(!r.is_revoked("bb", i64::MAX), "another serial");
        r.replace([("cc".to_string(), 0)]);
        assert_eq!(r.snapshot(), vec![("cc".to_string(), 0)]);
    }
}
