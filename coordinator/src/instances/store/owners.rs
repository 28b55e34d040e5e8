//! Which tenant owns each instance on a host: the agent labels per-instance metrics with it.

use crate::db::{Store, StoreError};
use plinth_common::api::InstanceOwner;

impl Store {
    /// Instances placed on `host` or migrating to it, with their tenants.
    pub async fn instance_owners(&self, host: &str) -> Result<Vec<InstanceOwner>, StoreError> {
        let rows = crate::db::query(
            "SELECT id, tenant_id FROM instances WHERE host_id = $1 OR migrating_to = $1 \
             ORDER BY id",
        )
        .bind(host)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InstanceOwner {
                    instance_id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                })
            })
            .collect()
    }
}
