//! Tenants: the owners of instances, images and addresses.

pub mod audit;
pub mod sessions;
pub mod tokens;

use crate::db::{Store, StoreError};
use plinth_common::api::Tenant;
use plinth_common::timefmt::{now_ms, rfc3339};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

fn tenant(row: &SqliteRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

impl Store {
    /// Creates a tenant; `None` when the email is taken.
    pub async fn create_tenant(
        &self,
        id: &str,
        email: &str,
        name: &str,
    ) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(
            "INSERT INTO tenants (id, email, name, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (email) DO NOTHING RETURNING id, email, name, created_at",
        )
        .bind(id)
        .bind(email)
        .bind(name)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(tenant).transpose()
    }

    /// The id of the tenant with `email` (as stored: lower case).
    pub async fn tenant_id_with_email(&self, email: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM tenants WHERE email = ?")
            .bind(email)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, email, name, created_at FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, email, name, created_at FROM tenants ORDER BY email")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(tenant).collect()
    }
}
