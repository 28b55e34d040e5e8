//! The coordinator's certificate authority: it makes itself once at `init`, then issues the
//! coordinator's server and client certificates and signs agents' CSRs. Only the public key of
//! a CSR is used: names, roles and lifetimes are the CA's decision, never the requester's.

use super::{Role, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What a leaf certificate says.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub common_name: String,
    pub role: Role,
    pub ips: Vec<IpAddr>,
    pub dns_names: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// serverAuth and/or clientAuth.
    pub server: bool,
    pub client: bool,
}

impl LeafSpec {
    /// A spec valid for `lifetime` from now, backdated a little for clock skew (a minute, or a
    /// tenth of a short lifetime, so renewal at two thirds still falls after issuance).
    pub fn new(common_name: &str, role: Role, lifetime: std::time::Duration) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        let skew = (lifetime / 10).min(std::time::Duration::from_secs(60));
        LeafSpec {
            common_name: common_name.to_string(),
            role,
            ips: Vec::new(),
            dns_names: Vec::new(),
            not_before: now - skew,
            not_after: now + lifetime,
            server: false,
            client: false,
        }
    }
}

impl Ca {
    /// A new self-signed CA (ECDSA P-256), valid ten years.
    pub fn generate(name: &str) -> Result<(Ca, String), TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "plinth");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::days(3650);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        let ca = Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        };
        Ok((ca, key_pem))
    }

    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `public_key` as `spec` says; returns its PEM.
    pub fn issue(
        &self,
        public_key: &impl PublicKeyData,
        spec: &LeafSpec,
    ) -> Result<String, TlsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        dn.push(DnType::OrganizationName, "plinth");
        params.distinguished_name = dn;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.subject_alt_names.push(SanType::URI(
            spec.role.uri().try_into().map_err(TlsError::Rcgen)?,
        ));
        for ip in &spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for dns in &spec.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.clone().try_into()?));
        }
        Ok(params.signed_by(public_key, &self.issuer)?.pem())
    }

    /// Verifies a PEM CSR's signature and issues a certificate for its key.
    pub fn sign_csr(&self, csr_pem: &str, spec: &LeafSpec) -> Result<String, TlsError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        self.issue(&csr.public_key, spec)
    }

    /// Makes a key here and issues its certificate: for the coordinator's own certificates and
    /// for tests. Returns (certificate PEM, key PEM).
    pub fn issue_with_new_key(&self, spec: &LeafSpec) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate()?;
        let cert = self.issue(&key, spec)?;
        Ok((cert, key.serialize_pem()))
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

/// A new key (ECDSA P-256) and a CSR for it. Returns (key PEM, CSR PEM).
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

fn first_pem_der(pem: &str) -> Result<Vec<u8>, TlsError> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or_else(|| TlsError::Pem("no certificate in PEM".into()))?
        .map(|der| der.to_vec())
        .map_err(|e| TlsError::Pem(format!("unreadable PEM: {e}")))
}

fn with_certificate<T>(
    pem: &str,
    f: impl FnOnce(&X509Certificate<'_>) -> T,
) -> Result<T, TlsError> {
    let der = first_pem_der(pem)?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| TlsError::Pem(format!("not an X.509 certificate: {e}")))?;
    Ok(f(&cert))
}

/// `sha256:<hex>` of the certificate's SubjectPublicKeyInfo, as kubeadm pins its CA: it stays
/// the same if the CA is re-issued with the same key.
pub fn ca_hash(cert_pem: &str) -> Result<String, TlsError> {
    with_certificate(cert_pem, |cert| {
        let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
        format!("sha256:{}", hex::encode(digest))
    })
}

/// A certificate's serial number as lowercase hex: how the store and the revocation lists name
/// it.
pub fn cert_serial(cert_pem: &str) -> Result<String, TlsError> {
    with_certificate(cert_pem, |cert| hex::encode(cert.raw_serial()))
}

/// The addresses and DNS names a PEM certificate's SAN lists (to issue its successor for the
/// same names).
pub fn cert_names(cert_pem: &str) -> Result<(Vec<IpAddr>, Vec<String>), TlsError> {
    use x509_parser::extensions::GeneralName;
    with_certificate(cert_pem, |cert| {
        let (mut ips, mut dns) = (Vec::new(), Vec::new());
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()));
                    }
                    GeneralName::IPAddress(b) if b.len() == 16 => {
                        ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()));
                    }
                    GeneralName::DNSName(n) => dns.push((*n).to_string()),
                    _ => {}
                }
            }
        }
        (ips, dns)
    })
}

/// When a PEM certificate stops being valid, and when it started.
pub fn cert_not_after(cert_pem: &str) -> Result<(OffsetDateTime, OffsetDateTime), TlsError> {
    with_certificate(cert_pem, |cert| {
        (
            cert.validity().not_before.to_datetime(),
            cert.validity().not_after.to_datetime(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn csr_names_are_ignored_and_role_is_the_cas() -> Result<(), TlsError> {
        let (ca, key_pem) = Ca::generate("test CA")?;
        let (_key, csr) = new_key_and_csr("evil")?;
        let role = Role::Agent {
            host_id: "host-0123456789ab".into(),
        };
        let mut spec = LeafSpec::new("host-0123456789ab", role.clone(), Duration::from_secs(60));
        spec.ips.push(
            "127.0.0.2"
                .parse()
                .map_err(|_| TlsError::Pem("ip".into()))?,
        );
        spec.client = true;
        let cert = ca.sign_csr(&csr, &spec)?;
        let der = first_pem_der(&cert)?;
        assert_eq!(Role::of_certificate(&der), Some(role));
        assert_eq!(cert_names(&cert)?, (spec.ips.clone(), Vec::new()));
        let serial = cert_serial(&cert)?;
        assert_eq!(serial.len(), 32, "16 random bytes: {serial}");
        assert_ne!(cert_serial(&ca.sign_csr(&csr, &spec)?)?, serial);

        // A CA loaded back from disk signs for the same issuer and hash.
        let again = Ca::load(ca.cert_pem(), &key_pem)?;
        assert_eq!(ca_hash(again.cert_pem())?, ca_hash(ca.cert_pem())?);
        assert!(ca_hash(ca.cert_pem())?.starts_with("sha256:"));
        Ok(())
    }

    #[test]
    fn tampered_csr_is_refused() -> Result<(), TlsError> {
        let (ca, _) = Ca::generate("test CA")?;
        let (_key, csr) = new_key_and_csr("x")?;
        let mut lines: Vec<String> = csr.lines().map(str::to_string).collect();
        // Flip a character in the body: the signature no longer verifies (or it no longer parses).
        let body = &mut lines[2];
        let c = if body.starts_with('A') { "B" } else { "A" };
        body.replace_range(0..1, c);
        let spec = LeafSpec::new("x", Role::Coordinator, Duration::from_secs(60));
        assert!(ca.sign_csr(&lines.join("\n"), &spec).is_err());
        Ok(())
    }
}
