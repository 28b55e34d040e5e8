//! Tenants: the owners of instances, images and addresses.

pub mod audit;
pub mod sessions;
pub mod tokens;

use crate::db::{Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::Tenant;
use plinth_common::timefmt::{now_ms, rfc3339};

fn tenant(row: &crate::db::Row) -> Result<Tenant, StoreError> {
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
        let row = crate::db::query(
            "INSERT INTO tenants (id, email, name, created_at) VALUES ($1, $2, $3, $4) \
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
        Ok(
            crate::db::query_scalar("SELECT id FROM tenants WHERE email = $1")
                .bind(email)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = crate::db::query("SELECT id, email, name, created_at FROM tenants WHERE id = $1")
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
        let total: i64 = crate::db::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(self.pool())
            .await?;
        let mut query =
            QueryBuilder::new("SELECT id, email, name, created_at FROM tenants WHERE 1 = 1");
        push_after(&mut query, "email", "id", Order::Asc, after);
        push_order(&mut query, "email", "id", Order::Asc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows.iter().map(tenant).collect::<Result<_, _>>()?;
        Ok((items, total as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{test_asc, test_walk};
    use crate::tenants::store::tokens::NewApiToken;
    use plinth_common::api::TokenRole;

    crate::db::store_test! {
    /// Tenants by email: one added between pages before the cursor is not shown, one after it
    /// is, once.
    async fn tenants_page_by_email_through_inserts(store, _dir) -> Result<(), StoreError> {
        for (id, email) in [
            ("t-1", "a@x"),
            ("t-2", "c@x"),
            ("t-3", "e@x"),
            ("t-4", "g@x"),
        ] {
            store.create_tenant(id, email, "T").await?;
        }
        let read = |limit, after: Option<(String, String)>| {
            let store = &store;
            async move {
                let (items, total) = store.list_tenants(limit, after.as_ref()).await?;
                let keyed = items
                    .into_iter()
                    .map(|t| ((t.email.clone(), t.id.clone()), t))
                    .collect();
                Ok((keyed, total))
            }
        };
        let between = || async {
            store.create_tenant("t-5", "b@x", "T").await?;
            store.create_tenant("t-6", "f@x", "T").await?;
            Ok(())
        };
        let (places, total) = test_walk(read, between, test_asc).await?;
        let emails: Vec<&str> = places.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            (emails, total),
            (vec!["a@x", "c@x", "e@x", "f@x", "g@x"], 6)
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    /// Live tokens oldest first, ties by id, one tenant's with a cursor; revoked ones never.
    async fn tokens_page_by_creation_through_inserts_and_filters(store, _dir) -> Result<(), StoreError> {
        store.create_tenant("t-1", "a@x", "T").await?;
        let token = |id: &'static str, tenant: Option<&'static str>, at: i64| {
            let store = &store;
            async move {
                let role = if tenant.is_some() {
                    TokenRole::Tenant
                } else {
                    TokenRole::Admin
                };
                let new = NewApiToken {
                    id,
                    secret_hash: "h",
                    role,
                    tenant_id: tenant,
                    name: "",
                    created_at: at,
                    expires_at: None,
                    created_by: "cli",
                };
                store.insert_api_token(&new).await.map(drop)
            }
        };
        for (id, tenant, at) in [
            ("k-1", None, 10),
            ("k-2", Some("t-1"), 20),
            ("k-3", None, 20),
        ] {
            token(id, tenant, at).await?;
        }
        token("k-4", Some("t-1"), 30).await?;
        let read = |limit, after: Option<(i64, String)>| {
            let store = &store;
            async move { store.list_api_tokens(None, limit, after.as_ref()).await }
        };
        let between = || async {
            token("k-0", None, 5).await?;
            token("k-5", Some("t-1"), 20).await?;
            Ok(())
        };
        let (places, total) = test_walk(read, between, test_asc).await?;
        let ids: Vec<&str> = places.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!((ids, total), (vec!["k-1", "k-2", "k-3", "k-5", "k-4"], 6));
        assert!(store.revoke_api_token("k-5", None, 40).await?);
        let after = (20, "k-2".to_string());
        let (rows, total) = store.list_api_tokens(Some("t-1"), 5, Some(&after)).await?;
        let ids: Vec<&str> = rows.iter().map(|(_, t)| t.id.as_str()).collect();
        assert_eq!((ids, total), (vec!["k-4"], 2));
        Ok(())
    }
    }

    crate::db::store_test! {
    /// The audit log newest first: entries written between pages are newer than the cursor,
    /// so the pages after it go on with the older ones, none twice.
    async fn audit_pages_go_on_from_the_cursor_while_entries_arrive(store, _dir) -> Result<(), StoreError> {
        for n in 0..5 {
            store.audit("cli", "act", &format!("old-{n}"), "").await?;
        }
        let read = |limit, after: Option<(String, String)>| {
            let store = &store;
            async move { store.list_audit(limit, after.as_ref()).await }
        };
        let between = || async {
            store.audit("cli", "act", "new", "").await?;
            Ok(())
        };
        let (places, total) = test_walk(read, between, |a, b| a.1 > b.1).await?;
        assert_eq!((places.len(), total), (5, 6));
        let (rows, _) = store.list_audit(10, None).await?;
        let targets: Vec<&str> = rows.iter().map(|(_, e)| e.target.as_str()).collect();
        assert_eq!(
            targets,
            ["new", "old-4", "old-3", "old-2", "old-1", "old-0"]
        );
        Ok(())
    }
    }
}
