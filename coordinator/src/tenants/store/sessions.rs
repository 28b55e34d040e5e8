//! Browser sessions (`sessions` table). Only SHA-256 hashes of the cookie secrets are stored;
//! a session's role and tenant are read from its API token on every use, so a revoked or
//! expired token ends its sessions without touching them.

use crate::db::{Store, StoreError};
use crate::tenants::store::tokens::TokenAuthRow;

/// A new session row.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub secret_hash: &'a str,
    pub token_id: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What authenticating a session cookie needs: the session's own times and its token's row.
#[derive(Debug, Clone)]
pub struct SessionAuthRow {
    pub secret_hash: String,
    pub token_id: String,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ended: bool,
    pub token: TokenAuthRow,
}

impl Store {
    pub async fn insert_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO sessions (id, secret_hash, token_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id)
        .bind(s.secret_hash)
        .bind(s.token_id)
        .bind(s.created_at)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn session_auth(&self, id: &str) -> Result<Option<SessionAuthRow>, StoreError> {
        let row = crate::db::query(
            "SELECT s.secret_hash, s.token_id, s.last_seen_at, s.expires_at, s.ended_at, \
                    t.secret_hash AS token_hash, t.role, t.tenant_id, \
                    t.expires_at AS token_expires_at, t.revoked_at \
             FROM sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(SessionAuthRow {
                secret_hash: row.try_get("secret_hash")?,
                token_id: row.try_get("token_id")?,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
                ended: row.try_get::<Option<i64>, _>("ended_at")?.is_some(),
                token: TokenAuthRow {
                    secret_hash: row.try_get("token_hash")?,
                    role: super::tokens::parse_role(row.try_get("role")?)?,
                    tenant_id: row.try_get("tenant_id")?,
                    expires_at: row.try_get("token_expires_at")?,
                    revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                },
            })
        })
        .transpose()
    }

    /// Records a request of live session `id` at `now` (idle expiry counts from it).
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<(), StoreError> {
        crate::db::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL AND last_seen_at < $3",
        )
        .bind(now)
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends session `id`; `false` if it was already ended (or never was).
    pub async fn end_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let res = crate::db::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Forgets sessions that ended or expired before `before` (they can never be used again).
    pub async fn prune_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let res = crate::db::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $2)",
        )
        .bind(before)
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected())
    }
}
