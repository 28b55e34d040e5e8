//! API tokens (admins and tenants) and one-time enrollment tokens. Only SHA-256 hashes of the
//! secrets are stored; the secret is shown once, when the token is made.

use crate::db::{Keyed, Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::{ApiToken, TokenRole};
use plinth_common::timefmt::rfc3339;

/// What authenticating a bearer token needs.
#[derive(Debug, Clone)]
pub struct TokenAuthRow {
    pub secret_hash: String,
    pub role: TokenRole,
    pub tenant_id: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub id: &'a str,
    pub secret_hash: &'a str,
    pub role: TokenRole,
    pub tenant_id: Option<&'a str>,
    pub name: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub created_by: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentTokenStatus {
    /// Usable; a re-enrollment token names the one host it is for.
    Valid {
        host: Option<String>,
    },
    /// No such token, or the secret does not match.
    Invalid,
    Used,
    Expired,
}

pub(crate) fn role_name(role: TokenRole) -> &'static str {
    match role {
        TokenRole::Admin => "admin",
        TokenRole::Tenant => "tenant",
    }
}

pub(crate) fn parse_role(text: &str) -> Result<TokenRole, StoreError> {
    match text {
        "admin" => Ok(TokenRole::Admin),
        "tenant" => Ok(TokenRole::Tenant),
        other => Err(StoreError::Corrupt(format!("token role '{other}'"))),
    }
}

fn api_token(row: &crate::db::Row) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        role: parse_role(row.try_get("role")?)?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        created_at: rfc3339(row.try_get("created_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(rfc3339),
        created_by: row.try_get("created_by")?,
    })
}

impl Store {
    pub async fn insert_api_token(&self, t: &NewApiToken<'_>) -> Result<ApiToken, StoreError> {
        let row = crate::db::query(
            "INSERT INTO api_tokens (id, secret_hash, role, tenant_id, name, created_at, expires_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id, role, tenant_id, name, created_at, expires_at, created_by",
        )
        .bind(t.id)
        .bind(t.secret_hash)
        .bind(role_name(t.role))
        .bind(t.tenant_id)
        .bind(t.name)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.created_by)
        .fetch_one(self.pool())
        .await?;
        api_token(&row)
    }

    pub async fn api_token_auth(&self, id: &str) -> Result<Option<TokenAuthRow>, StoreError> {
        let row = crate::db::query(
            "SELECT secret_hash, role, tenant_id, expires_at, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(TokenAuthRow {
                secret_hash: row.try_get("secret_hash")?,
                role: parse_role(row.try_get("role")?)?,
                tenant_id: row.try_get("tenant_id")?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    /// A page of live tokens, all of them or one tenant's (oldest first, after `after`
    /// (created_at, id), each beside that place), and how many there are in all.
    pub async fn list_api_tokens(
        &self,
        tenant_id: Option<&str>,
        limit: u32,
        after: Option<&(i64, String)>,
    ) -> Result<(Vec<Keyed<i64, ApiToken>>, u64), StoreError> {
        let filters = |q: &mut QueryBuilder<'_>| {
            q.push(" WHERE revoked_at IS NULL");
            if let Some(t) = tenant_id {
                q.push(" AND tenant_id = ").push_bind(t.to_string());
            }
        };
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM api_tokens");
        filters(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;
        let mut query = QueryBuilder::new(
            "SELECT id, role, tenant_id, name, created_at, expires_at, created_by FROM api_tokens",
        );
        filters(&mut query);
        push_after(&mut query, "created_at", "id", Order::Asc, after);
        push_order(&mut query, "created_at", "id", Order::Asc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| Ok(((r.try_get("created_at")?, r.try_get("id")?), api_token(r)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }

    /// Revokes a token (within one tenant's when `tenant_id` is given); `false` if none matched.
    pub async fn revoke_api_token(
        &self,
        id: &str,
        tenant_id: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = crate::db::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR tenant_id = $4)",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .bind(tenant_id)
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn insert_enrollment_token(
        &self,
        id: &str,
        secret_hash: &str,
        description: &str,
        created_at: i64,
        expires_at: i64,
        host_id: Option<&str>,
    ) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO enrollment_tokens (id, secret_hash, description, created_at, expires_at, host_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(secret_hash)
        .bind(description)
        .bind(created_at)
        .bind(expires_at)
        .bind(host_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether an enrollment token can be used now; changes nothing (the use is taken inside
    /// the enrollment transaction).
    pub async fn enrollment_token_status(
        &self,
        id: &str,
        secret_hash: &str,
        now: i64,
    ) -> Result<EnrollmentTokenStatus, StoreError> {
        let row = crate::db::query(
            "SELECT secret_hash, expires_at, used_at, host_id FROM enrollment_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(EnrollmentTokenStatus::Invalid);
        };
        let stored: String = row.try_get("secret_hash")?;
        if !crate::http::auth::hashes_equal(&stored, secret_hash) {
            return Ok(EnrollmentTokenStatus::Invalid);
        }
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(EnrollmentTokenStatus::Used);
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(EnrollmentTokenStatus::Expired);
        }
        Ok(EnrollmentTokenStatus::Valid {
            host: row.try_get("host_id")?,
        })
    }
}
