//! Tenants: the owners of instances, images and addresses.

pub mod audit;
pub mod sessions;
pub mod tokens;

use crate::db::{Order, Store, StoreError, push_after, push_order};
use plinth_common::api::Tenant;
use plinth_common::timefmt::{now_ms, rfc3339};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

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

    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, email, name, created_at FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    /// A page of tenants (by email, which is unique, after `after` (email, id)) and how many
    /// there are in all.
    pub async fn list_tenants(
        &self,
        limit: u32,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Tenant>, u64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(self.pool())
            .await?;
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, email, name, created_at FROM tenants WHERE 1 = 1",
        );
        push_after(&mut query, "email", "id", Order::Asc, after);
        push_order(&mut query, "email", "id", Order::Asc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows.iter().map(tenant).collect::<Result<_, _>>()?;
        Ok((items, total as u64))
    }
}
