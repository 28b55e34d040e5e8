//! Clusters: the groups hosts enroll into and instances are scheduled within.

use crate::db::{Order, QueryBuilder, Store, StoreError, push_after, push_order};
use plinth_common::api::Cluster;
use plinth_common::timefmt::{now_ms, rfc3339};

const SELECT: &str = "SELECT c.id, c.description, c.created_at, \
    (SELECT COUNT(*) FROM hosts h WHERE h.cluster_id = c.id) AS host_count FROM clusters c";

fn cluster(row: &crate::db::Row) -> Result<Cluster, StoreError> {
    Ok(Cluster {
        id: row.try_get("id")?,
        description: row.try_get("description")?,
        host_count: row.try_get::<i64, _>("host_count")? as u64,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

impl Store {
    /// Creates a cluster; `false` when the id is taken.
    pub async fn create_cluster(&self, id: &str, description: &str) -> Result<bool, StoreError> {
        let res = crate::db::query(
            "INSERT INTO clusters (id, description, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(description)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn cluster_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row = crate::db::query("SELECT 1 FROM clusters WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// A page of clusters (by id, after `after`) and how many there are in all.
    pub async fn list_clusters(
        &self,
        limit: u32,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Cluster>, u64), StoreError> {
        let total: i64 = crate::db::query_scalar("SELECT COUNT(*) FROM clusters")
            .fetch_one(self.pool())
            .await?;
        let mut query = QueryBuilder::new(format!("{SELECT} WHERE 1 = 1"));
        push_after(&mut query, "c.id", "c.id", Order::Asc, after);
        push_order(&mut query, "c.id", "c.id", Order::Asc, limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows.iter().map(cluster).collect::<Result<_, _>>()?;
        Ok((items, total as u64))
    }

    pub async fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError> {
        let row = crate::db::query(&format!("{SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(cluster).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{test_asc, test_walk};

    crate::db::store_test! {
    /// Clusters by id, through one created between pages on each side of the cursor.
    async fn clusters_page_by_id_through_inserts(store, _dir) -> Result<(), StoreError> {
        for id in ["b", "d", "f"] {
            assert!(store.create_cluster(id, "").await?);
        }
        let read = |limit, after: Option<(String, String)>| {
            let store = &store;
            async move {
                let (items, total) = store.list_clusters(limit, after.as_ref()).await?;
                let keyed = items
                    .into_iter()
                    .map(|c| ((c.id.clone(), c.id.clone()), c))
                    .collect();
                Ok((keyed, total))
            }
        };
        let between = || async {
            store.create_cluster("a", "").await?;
            store.create_cluster("e", "").await?;
            Ok(())
        };
        let (places, total) = test_walk(read, between, test_asc).await?;
        let ids: Vec<&str> = places.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!((ids, total), (vec!["b", "d", "e", "f"], 5));
        assert_eq!(store.cluster("e").await?.map(|c| c.host_count), Some(0));
        assert!(store.cluster("z").await?.is_none());
        Ok(())
    }
    }
}
