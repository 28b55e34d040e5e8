//! Clusters, tenants and tokens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Cluster {
    pub id: String,
    pub description: String,
    pub host_count: u64,
    pub created_at: String,
}

/// `GET /v1/clusters`: a page of clusters, by id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterPage {
    pub items: Vec<Cluster>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// 1-63 of a-z, 0-9 and '-'; agents enroll with it.
    pub id: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

/// `GET /v1/tenants`: a page of tenants, by email.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<Tenant>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    Admin,
    Tenant,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub role: TokenRole,
    pub tenant_id: Option<String>,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub created_by: String,
}

/// `GET /v1/tokens`: a page of live tokens, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiTokenPage {
    pub items: Vec<ApiToken>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub role: TokenRole,
    /// Required for `tenant` tokens, refused for `admin` ones.
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub name: String,
    /// Lifetime such as `30d` or `12h`, at most the coordinator's `max_token_ttl` (365d by
    /// default); none means until revoked.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// The one response that carries a token's secret; it is not stored and not shown again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// Lifetime such as `1h` (at most 7d).
    pub ttl: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentToken {
    pub id: String,
    /// `<id>.<secret>`: pass it to `plinth-agent enroll --token`.
    pub token: String,
    pub expires_at: String,
    /// `sha256:<hex>` of the CA's public key, for `--ca-hash`.
    pub ca_hash: String,
    /// A re-enrollment token: only this host may use it, and its use revokes the host's
    /// earlier certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub at: String,
    /// `admin:<token>`, `tenant:<tenant>:<token>`, `agent:<host>` or `cli` (local commands).
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// `GET /v1/audit`: a page of audit entries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
