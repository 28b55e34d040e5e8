//! Who a certificate speaks for. plinth puts the role in a URI SAN, SPIFFE style:
//! `spiffe://plinth/coordinator` or `spiffe://plinth/agent/<host-id>`. The CA writes it; the
//! servers read it from the verified peer certificate and check it on every call.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const PREFIX: &str = "spiffe://plinth/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Agent { host_id: String },
}

impl Role {
    pub fn uri(&self) -> String {
        match self {
            Role::Coordinator => format!("{PREFIX}coordinator"),
            Role::Agent { host_id } => format!("{PREFIX}agent/{host_id}"),
        }
    }

    fn from_uri(uri: &str) -> Option<Role> {
        let rest = uri.strip_prefix(PREFIX)?;
        if rest == "coordinator" {
            return Some(Role::Coordinator);
        }
        let host_id = rest.strip_prefix("agent/")?;
        crate::ids::is_id("host", host_id).then(|| Role::Agent {
            host_id: host_id.to_string(),
        })
    }

    /// The role a DER certificate carries, if any.
    pub fn of_certificate(der: &[u8]) -> Option<Role> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|name| match name {
            GeneralName::URI(uri) => Role::from_uri(uri),
            _ => None,
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Coordinator => f.write_str("coordinator"),
            Role::Agent { host_id } => write!(f, "agent {host_id}"),
        }
    }
}

/// The verified client certificate of a connection, as a request extension. `role` is `None`
/// when the client sent no certificate (admins and tenants use bearer tokens) or one without a
/// plinth role. `serial` (lowercase hex) and `not_after_ms` (Unix ms) say which certificate it
/// was, so a server can refuse a revoked one on every request, not only at the handshake.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    pub role: Option<Role>,
    pub serial: Option<String>,
    pub not_after_ms: Option<i64>,
}

impl PeerIdentity {
    /// The identity a verified leaf certificate (DER) carries; empty without one.
    pub fn of_leaf(der: Option<&[u8]>) -> PeerIdentity {
        let Some(der) = der else {
            return PeerIdentity::default();
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return PeerIdentity::default();
        };
        PeerIdentity {
            role: Role::of_certificate(der),
            serial: Some(hex::encode(cert.raw_serial())),
            not_after_ms: Some(cert.validity().not_after.timestamp().saturating_mul(1000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for role in [
            Role::Coordinator,
            Role::Agent {
                host_id: "host-00aa11bb22cc".into(),
            },
        ] {
            assert_eq!(Role::from_uri(&role.uri()), Some(role));
        }
        for bad in [
            "spiffe://other/coordinator",
            "spiffe://plinth/agent/",
            "spiffe://plinth/agent/host-xyz",
            "spiffe://plinth/admin",
        ] {
            assert_eq!(Role::from_uri(bad), None, "{bad}");
        }
    }
}
