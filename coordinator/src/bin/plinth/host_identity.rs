//! `plinth hosts delete | certs | revoke-certs | reenroll`: a host's identity in the region.

use crate::client::Client;
use crate::format::{or_dash, when};
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::Table;
use anyhow::Context;
use plinth_common::api::{
    CertificateStatus, EnrollmentToken, HostCertificate, HostCertificatePage, HostRemoved,
    ReenrollHost, RevokeCertificates,
};

/// `plinth hosts delete`.
pub async fn delete(
    client: &Client,
    out: &Output,
    id: &str,
    force: bool,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if force {
        query.push(("force", "true".to_string()));
    }
    query.extend(reason.map(|r| ("reason", r)));
    let removed = client
        .delete_with(&["v1", "hosts", id], &query)
        .await?
        .context("the coordinator answered with an empty body")?;
    out.emit(removed, render_removed)
}

fn render_removed(r: &HostRemoved) -> String {
    let mut text = format!(
        "host {} removed; {} certificate(s) revoked: its agent is refused from its next call\n",
        r.id, r.revoked_certificates
    );
    if !r.orphaned_instances.is_empty() {
        text.push_str(&format!(
            "{} instance(s) left in error: {}\n",
            r.orphaned_instances.len(),
            r.orphaned_instances.join(", ")
        ));
    }
    if r.reassigned_baremetal > 0 {
        text.push_str(&format!(
            "{} bare-metal server(s) move to another agent\n",
            r.reassigned_baremetal
        ));
    }
    text
}

/// `plinth hosts certs`.
pub async fn certs(client: &Client, out: &Output, id: &str, page: &PageArgs) -> anyhow::Result<()> {
    out.emit(
        client
            .list(&["v1", "hosts", id, "certificates"], &[], page)
            .await?,
        |p: &HostCertificatePage| {
            let more = p.next_cursor.as_deref();
            render_certs(&p.items) + &footer(p.items.len(), p.total, "certificates", more)
        },
    )
}

/// `plinth hosts revoke-certs`.
pub async fn revoke(client: &Client, out: &Output, id: &str, reason: String) -> anyhow::Result<()> {
    out.emit(
        client
            .post(
                &["v1", "hosts", id, "certificates", "revoke"],
                &RevokeCertificates { reason },
            )
            .await?,
        |certs: &Vec<HostCertificate>| render_certs(certs),
    )
}

/// `plinth hosts reenroll`.
pub async fn reenroll(client: &Client, out: &Output, id: &str, ttl: String) -> anyhow::Result<()> {
    let issued = client
        .post(
            &["v1", "hosts", id, "reenroll"],
            &ReenrollHost { ttl: Some(ttl) },
        )
        .await?;
    let coordinator = client.base().to_string();
    out.emit(issued, |t: &EnrollmentToken| {
        format!(
            "{}Its use revokes every earlier certificate of {id}; the host keeps its id and cluster.\n",
            crate::tokens::render_enrollment(t, &coordinator).replace(
                "On the new host",
                &format!("On {id}, with its agent stopped")
            )
        )
    })
}

fn render_certs(certs: &[HostCertificate]) -> String {
    let mut table = Table::new(&["serial", "status", "issued", "expires", "revoked", "reason"]);
    for c in certs {
        let status = match c.status {
            CertificateStatus::Current => "current",
            CertificateStatus::Revoking => "revoking",
            CertificateStatus::Revoked => "revoked",
            CertificateStatus::Expired => "expired",
        };
        table.row(vec![
            c.serial.clone(),
            status.to_string(),
            when(Some(&c.issued_at)),
            when(Some(&c.expires_at)),
            when(c.revoked_at.as_deref()),
            or_dash(c.reason.as_deref()),
        ]);
    }
    table.render()
}
