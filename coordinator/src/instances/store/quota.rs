//! Tenant quotas as instances use them: the limits and usage rows, the check a create makes
//! before it schedules, and the share an instance gives back when it goes.

use crate::db::{Store, StoreError};
use plinth_common::api::{Quota, QuotaUsage};

#[derive(Debug, Clone, PartialEq)]
pub struct QuotaExceeded {
    pub resource: &'static str,
    pub limit: u64,
    pub used: u64,
    pub asked: u64,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the tenant's {} quota is {}; {} in use and {} more asked",
            self.resource, self.limit, self.used, self.asked
        )
    }
}

/// Gives an instance's share of its tenant's quota back (before the instance row goes).
pub(crate) async fn release_quota(conn: &mut crate::db::Tx, id: &str) -> Result<(), StoreError> {
    crate::db::query(
        "UPDATE tenant_quotas SET \
            used_cores = CASE WHEN used_cores > i.vcpus THEN used_cores - i.vcpus ELSE 0 END, \
            used_memory_bytes = CASE WHEN used_memory_bytes > i.memory_bytes \
                THEN used_memory_bytes - i.memory_bytes ELSE 0 END, \
            used_instances = CASE WHEN used_instances > 1 THEN used_instances - 1 ELSE 0 END \
         FROM instances i WHERE i.id = $1 AND tenant_quotas.tenant_id = i.tenant_id",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The first limit that holding `cores`, `memory` and one instance more would exceed.
pub(crate) fn exceeded(
    quota: &Quota,
    usage: &QuotaUsage,
    cores: u64,
    memory: u64,
) -> Option<QuotaExceeded> {
    let checks = [
        ("cores", quota.cores, usage.cores, cores),
        (
            "memory_bytes",
            quota.memory_bytes,
            usage.memory_bytes,
            memory,
        ),
        ("instances", quota.instances, usage.instances, 1),
    ];
    checks
        .into_iter()
        .find(|(_, limit, used, asked)| {
            limit.is_some_and(|limit| *asked > 0 && used.saturating_add(*asked) > limit)
        })
        .map(|(resource, limit, used, asked)| QuotaExceeded {
            resource,
            limit: limit.unwrap_or_default(),
            used,
            asked,
        })
}

/// A tenant's limits and what it holds (nothing and none for a tenant without a row).
pub(crate) async fn read_quota(
    conn: &mut crate::db::Tx,
    tenant: &str,
) -> Result<(Quota, QuotaUsage), StoreError> {
    let row = crate::db::query(
        "SELECT cores, memory_bytes, instances, used_cores, used_memory_bytes, used_instances \
         FROM tenant_quotas WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(Default::default());
    };
    let limit = |c: &str| -> Result<Option<u64>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(c)?.map(|v| v as u64))
    };
    let used = |c: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(c)? as u64) };
    Ok((
        Quota {
            cores: limit("cores")?,
            memory_bytes: limit("memory_bytes")?,
            instances: limit("instances")?,
        },
        QuotaUsage {
            cores: used("used_cores")?,
            memory_bytes: used("used_memory_bytes")?,
            instances: used("used_instances")?,
        },
    ))
}

impl Store {
    /// The tenant's quota and what it holds now.
    pub async fn quota(&self, tenant: &str) -> Result<(Quota, QuotaUsage), StoreError> {
        let mut conn = self.read().await?;
        read_quota(&mut conn, tenant).await
    }

    pub async fn set_quota(&self, tenant: &str, q: &Quota) -> Result<(), StoreError> {
        let as_i64 = |v: Option<u64>| v.map(|v| v.min(i64::MAX as u64) as i64);
        crate::db::query(
            "INSERT INTO tenant_quotas (tenant_id, cores, memory_bytes, instances) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET cores = excluded.cores, \
                memory_bytes = excluded.memory_bytes, instances = excluded.instances",
        )
        .bind(tenant)
        .bind(as_i64(q.cores))
        .bind(as_i64(q.memory_bytes))
        .bind(as_i64(q.instances))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Checks the quota without claiming anything (a create asks before it schedules; the
    /// claim checks again, atomically).
    pub async fn quota_allows(
        &self,
        tenant: &str,
        cores: u64,
        memory: u64,
    ) -> Result<Result<(), QuotaExceeded>, StoreError> {
        let (quota, usage) = self.quota(tenant).await?;
        Ok(exceeded(&quota, &usage, cores, memory).map_or(Ok(()), Err))
    }
}
