//! The agent certificates the region CA signs: what one says (its host, its address, the agent
//! role, server and client use) and what the store records of it.

use crate::hosts::HostError;
use crate::hosts::store::certificates::{CertKind, Issued};
use crate::state::AppState;
use plinth_common::tls::{LeafSpec, Role, cert_not_after, cert_serial};
use std::net::IpAddr;
use std::time::Duration;

/// What an agent certificate says: its host, its address, agent role; server and client use.
pub fn agent_leaf_spec(host_id: &str, ip: IpAddr, ttl: Duration) -> LeafSpec {
    let mut spec = LeafSpec::new(
        host_id,
        Role::Agent {
            host_id: host_id.to_string(),
        },
        ttl,
    );
    spec.ips.push(ip);
    spec.server = true;
    spec.client = true;
    spec
}

/// An agent certificate as signed: what the store records of it.
pub struct SignedAgentCert {
    pub pem: String,
    pub serial: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl SignedAgentCert {
    pub fn issued<'a>(&'a self, host_id: &'a str) -> Issued<'a> {
        Issued {
            serial: &self.serial,
            kind: CertKind::Agent,
            host_id: Some(host_id),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

/// Signs an agent CSR for `host_id` at `ip`.
pub fn sign_agent_csr(
    st: &AppState,
    csr_pem: &str,
    host_id: &str,
    ip: IpAddr,
) -> Result<SignedAgentCert, HostError> {
    let spec = agent_leaf_spec(host_id, ip, st.settings.agent_cert_ttl);
    let pem = st.ca.sign_csr(csr_pem, &spec).map_err(|_| {
        HostError::invalid(
            "csr_pem",
            "is not a valid, self-signed PEM certificate request",
        )
    })?;
    let internal = |e: plinth_common::tls::TlsError| HostError::Internal(e.into());
    let (_, not_after) = cert_not_after(&pem).map_err(internal)?;
    let serial = cert_serial(&pem).map_err(internal)?;
    Ok(SignedAgentCert {
        pem,
        serial,
        // When it was signed (its notBefore is backdated for clock skew, to the second).
        issued_at: plinth_common::timefmt::now_ms(),
        expires_at: not_after.unix_timestamp().saturating_mul(1000),
    })
}
