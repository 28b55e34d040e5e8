//! Clusters: the groups hosts enroll into and instances are scheduled within.

use crate::db::{Store, StoreError};
use plinth_common::api::Cluster;
use plinth_common::timefmt::{now_ms, rfc3339};
use sqlx::Row;

impl Store {
    /// Creates a cluster; `false` when the id is taken.
    pub async fn create_cluster(&self, id: &str, description: &str) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "INSERT INTO clusters (id, description, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(description)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn cluster_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM clusters WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    pub async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.description, c.created_at, \
                    (SELECT COUNT(*) FROM hosts h WHERE h.cluster_id = c.id) AS host_count \
             FROM clusters c ORDER BY c.id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Cluster {
                    id: row.try_get("id")?,
                    description: row.try_get("description")?,
                    host_count: row.try_get::<i64, _>("host_count")? as u64,
                    created_at: rfc3339(row.try_get("created_at")?),
                })
            })
            .collect()
    }
}
