//! External segments and who may use them. A segment is added or changed in one write
//! transaction that first reads the others, so the rules between segments (no overlap, one
//! segment per family on a NIC and VLAN) hold however many admins write at once.

use crate::db::{Order, QueryBuilder, Store, StoreError, push_after, push_order};
use crate::network::pool::Pool;
use crate::network::validate::{self, Clash, Existing, SegmentSpec};
use ipnet::IpNet;
use plinth_common::api::{PermittedTenant, RoutePolicy, Segment, SegmentPermission, SegmentState};
use plinth_common::timefmt::rfc3339;
use std::collections::HashMap;
use std::net::IpAddr;

pub(crate) const COLUMNS: &str = "s.id, s.name, s.cidr, s.gateway, s.nic, s.vlan, \
    s.route_policy, s.routes_json, s.all_tenants, s.state, s.allocated, s.created_at, s.updated_at";

/// A tenant may use a segment open to all, or one that lists it (`?` is the tenant).
pub(crate) const PERMITTED: &str = "(s.all_tenants = 1 OR EXISTS (SELECT 1 FROM segment_tenants \
    st WHERE st.segment_id = s.id AND st.tenant_id = $1))";

/// Appends ` WHERE` what `viewer` may see (all for an admin, `None`).
fn push_viewer(query: &mut QueryBuilder<'_>, viewer: Option<&str>) {
    query.push(" WHERE 1 = 1");
    if let Some(v) = viewer {
        // PERMITTED's one parameter is the tenant.
        let (before, after) = PERMITTED.split_once("$1").unwrap_or((PERMITTED, ""));
        query
            .push(format!(" AND {before}"))
            .push_bind(v.to_string())
            .push(after);
    }
}

/// A segment as stored, its settings parsed.
#[derive(Debug, Clone)]
pub struct SegmentRecord {
    pub id: String,
    pub spec: SegmentSpec,
    pub state: SegmentState,
    pub all_tenants: bool,
    pub allocated: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SegmentRecord {
    pub fn pool(&self) -> Pool {
        Pool::new(self.spec.net, self.spec.gateway)
    }

    /// The routes an instance gets through this segment's EIPs.
    pub fn routes(&self) -> Vec<String> {
        let s = &self.spec;
        validate::effective_routes(s.route_policy, &s.routes, &s.net)
            .iter()
            .map(IpNet::to_string)
            .collect()
    }

    fn to_api(&self, tenants: Vec<PermittedTenant>) -> Segment {
        let s = &self.spec;
        Segment {
            id: self.id.clone(),
            name: s.name.clone(),
            ip_version: validate::version(&s.net),
            cidr: s.net.to_string(),
            gateway: s.gateway.to_string(),
            nic: s.nic.clone(),
            vlan: s.vlan,
            route_policy: s.route_policy,
            routes: self.routes(),
            permission: SegmentPermission {
                all_tenants: self.all_tenants,
                tenants,
            },
            state: self.state,
            allocated: self.allocated,
            usable: self.pool().usable().to_string(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// Who may use a segment, tenants resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub all_tenants: bool,
    pub tenant_ids: Vec<String>,
}

/// A name in a segment permission that is neither a tenant's id nor its email (as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTenant(pub String);

/// Why a segment was not changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRefused {
    NotFound,
    Clash(Clash),
    /// The new gateway is an address a tenant holds.
    GatewayAllocated {
        eip: String,
    },
    /// Addresses are allocated from it (delete): the first [`SHOWN_HOLDERS`] of them as
    /// `eip-… (address)` or `eip-… (address, bound to instance inst-…)`, and how many in all.
    InUse {
        eips: Vec<String>,
        allocated: u64,
    },
}

/// How many of a segment's EIPs a refused delete names.
pub const SHOWN_HOLDERS: i64 = 5;

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt(format!("segment {what} '{text}'"))
}

pub(crate) fn record(row: &crate::db::Row) -> Result<SegmentRecord, StoreError> {
    let cidr: &str = row.try_get("cidr")?;
    let gateway: &str = row.try_get("gateway")?;
    let policy: &str = row.try_get("route_policy")?;
    let routes: &str = row.try_get("routes_json")?;
    let state: &str = row.try_get("state")?;
    let routes: Vec<String> =
        serde_json::from_str(routes).map_err(|_| corrupt("routes", routes))?;
    let spec = SegmentSpec {
        name: row.try_get("name")?,
        net: cidr.parse().map_err(|_| corrupt("cidr", cidr))?,
        gateway: gateway
            .parse::<IpAddr>()
            .map_err(|_| corrupt("gateway", gateway))?,
        nic: row.try_get("nic")?,
        vlan: row.try_get::<Option<i64>, _>("vlan")?.map(|v| v as u16),
        route_policy: RoutePolicy::parse(policy).ok_or_else(|| corrupt("route policy", policy))?,
        routes: routes
            .iter()
            .map(|r| r.parse().map_err(|_| corrupt("route", r)))
            .collect::<Result<_, _>>()?,
    };
    Ok(SegmentRecord {
        id: row.try_get("id")?,
        spec,
        state: SegmentState::parse(state).ok_or_else(|| corrupt("state", state))?,
        all_tenants: row.try_get::<i64, _>("all_tenants")? != 0,
        allocated: row.try_get::<i64, _>("allocated")?.max(0) as u64,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn routes_json(spec: &SegmentSpec) -> String {
    let routes: Vec<String> = spec.routes.iter().map(IpNet::to_string).collect();
    serde_json::Value::from(routes).to_string()
}

/// Every segment but `except`, as the rules between segments see them.
async fn others(
    conn: &mut crate::db::Tx,
    except: Option<&str>,
) -> Result<Vec<Existing>, StoreError> {
    let rows = crate::db::query(&format!(
        "SELECT {COLUMNS} FROM segments s WHERE s.id != $1"
    ))
    .bind(except.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let rec = record(r)?;
            Ok(Existing {
                id: rec.id,
                name: rec.spec.name,
                net: rec.spec.net,
                nic: rec.spec.nic,
                vlan: rec.spec.vlan,
            })
        })
        .collect()
}

async fn write_permission(
    conn: &mut crate::db::Tx,
    id: &str,
    p: &Permission,
) -> Result<(), StoreError> {
    crate::db::query("DELETE FROM segment_tenants WHERE segment_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if !p.all_tenants {
        for tenant in &p.tenant_ids {
            crate::db::query(
                "INSERT INTO segment_tenants (segment_id, tenant_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Adds a segment unless it clashes with one recorded.
    pub async fn create_segment(
        &self,
        id: &str,
        spec: &SegmentSpec,
        permission: &Permission,
        now: i64,
    ) -> Result<Result<Segment, SegmentRefused>, StoreError> {
        let mut tx = self.write().await?;
        if let Some(clash) = validate::clash(spec, &others(&mut tx, None).await?) {
            return Ok(Err(SegmentRefused::Clash(clash)));
        }
        crate::db::query(
            "INSERT INTO segments (id, name, ip_version, cidr, gateway, nic, vlan, route_policy, \
                routes_json, all_tenants, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(&spec.name)
        .bind(i64::from(validate::version(&spec.net)))
        .bind(spec.net.to_string())
        .bind(spec.gateway.to_string())
        .bind(&spec.nic)
        .bind(spec.vlan.map(i64::from))
        .bind(spec.route_policy.as_str())
        .bind(routes_json(spec))
        .bind(i64::from(permission.all_tenants))
        .bind(SegmentState::Available.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut tx)
        .await?;
        write_permission(&mut tx, id, permission).await?;
        let data = serde_json::json!({ "state": SegmentState::Available.as_str(), "created": true,
            "name": spec.name, "cidr": spec.net.to_string() });
        crate::events::record_change(&mut tx, crate::events::EventType::Segment, id, data).await?;
        tx.commit().await?;
        self.events_committed();
        self.segment_or_corrupt(id).await.map(Ok)
    }

    /// Replaces a segment's settings (its CIDR stays) and state.
    pub async fn update_segment(
        &self,
        id: &str,
        spec: &SegmentSpec,
        state: SegmentState,
        now: i64,
    ) -> Result<Result<Segment, SegmentRefused>, StoreError> {
        let mut tx = self.write().await?;
        let Some(current) = read(&mut tx, id).await? else {
            return Ok(Err(SegmentRefused::NotFound));
        };
        if let Some(clash) = validate::clash(spec, &others(&mut tx, Some(id)).await?) {
            return Ok(Err(SegmentRefused::Clash(clash)));
        }
        if spec.gateway != current.spec.gateway {
            let key = current
                .pool()
                .key(crate::network::pool::number(spec.gateway));
            let held =
                crate::db::query("SELECT id FROM eips WHERE segment_id = $1 AND address_key = $2")
                    .bind(id)
                    .bind(key)
                    .fetch_optional(&mut tx)
                    .await?;
            if let Some(row) = held {
                let eip = row.try_get("id")?;
                return Ok(Err(SegmentRefused::GatewayAllocated { eip }));
            }
        }
        crate::db::query(
            "UPDATE segments SET name = $1, gateway = $2, nic = $3, vlan = $4, route_policy = $5, \
                routes_json = $6, state = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&spec.name)
        .bind(spec.gateway.to_string())
        .bind(&spec.nic)
        .bind(spec.vlan.map(i64::from))
        .bind(spec.route_policy.as_str())
        .bind(routes_json(spec))
        .bind(state.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut tx)
        .await?;
        let data = serde_json::json!({ "state": state.as_str(), "from": current.state.as_str(),
            "name": spec.name });
        crate::events::record_change(&mut tx, crate::events::EventType::Segment, id, data).await?;
        tx.commit().await?;
        self.events_committed();
        self.segment_or_corrupt(id).await.map(Ok)
    }

    /// Sets who may use a segment; `None` when it does not exist. EIPs are not touched.
    pub async fn set_segment_permission(
        &self,
        id: &str,
        permission: &Permission,
        now: i64,
    ) -> Result<Option<Segment>, StoreError> {
        let mut tx = self.write().await?;
        let changed =
            crate::db::query("UPDATE segments SET all_tenants = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(permission.all_tenants))
                .bind(now)
                .bind(id)
                .execute(&mut tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        write_permission(&mut tx, id, permission).await?;
        let data = serde_json::json!({ "all_tenants": permission.all_tenants });
        crate::events::record_change(&mut tx, crate::events::EventType::Segment, id, data).await?;
        tx.commit().await?;
        self.events_committed();
        self.segment_or_corrupt(id).await.map(Some)
    }

    /// Deletes a segment from which nothing is allocated.
    pub async fn delete_segment(&self, id: &str) -> Result<Result<(), SegmentRefused>, StoreError> {
        let mut tx = self.write().await?;
        let Some(current) = read(&mut tx, id).await? else {
            return Ok(Err(SegmentRefused::NotFound));
        };
        if current.allocated > 0 {
            let rows = crate::db::query(
                "SELECT id, address, instance_id FROM eips WHERE segment_id = $1 \
                 ORDER BY created_at, id LIMIT $2",
            )
            .bind(id)
            .bind(SHOWN_HOLDERS)
            .fetch_all(&mut tx)
            .await?;
            let mut eips = Vec::with_capacity(rows.len());
            for row in &rows {
                let (eip, address): (String, String) =
                    (row.try_get("id")?, row.try_get("address")?);
                eips.push(match row.try_get::<Option<String>, _>("instance_id")? {
                    Some(instance) => format!("{eip} ({address}, bound to instance {instance})"),
                    None => format!("{eip} ({address})"),
                });
            }
            return Ok(Err(SegmentRefused::InUse {
                eips,
                allocated: current.allocated,
            }));
        }
        // The counter and the rows agree (one transaction changes both); the foreign key of
        // eips would refuse the delete anyway.
        crate::db::query(
            "DELETE FROM segments WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM eips WHERE segment_id = $2)",
        )
        .bind(id)
        .bind(id)
        .execute(&mut tx)
        .await?;
        crate::events::record_change(
            &mut tx,
            crate::events::EventType::Segment,
            id,
            serde_json::json!({ "deleted": true }),
        )
        .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(Ok(()))
    }

    /// The segment as `viewer` sees it: admins (`None`) any, with every permitted tenant; a
    /// tenant only one it may use, listing itself alone.
    pub async fn segment(
        &self,
        id: &str,
        viewer: Option<&str>,
    ) -> Result<Option<Segment>, StoreError> {
        Ok(self
            .segments_where(Some(id), viewer, None)
            .await?
            .into_iter()
            .next())
    }

    /// A page of the segments `viewer` may see (see [`Store::segment`]), by name (unique),
    /// after `after` (name, id), and how many it may see in all.
    pub async fn list_segments(
        &self,
        viewer: Option<&str>,
        limit: u32,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Segment>, u64), StoreError> {
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM segments s");
        push_viewer(&mut count, viewer);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;
        let items = self
            .segments_where(None, viewer, Some((limit, after)))
            .await?;
        Ok((items, total as u64))
    }

    /// The stored record of a segment, for checks.
    /// Every segment's uplink (NIC and VLAN), each once: what the agents keep bridges for.
    pub async fn segment_uplinks(&self) -> Result<Vec<plinth_common::api::Uplink>, StoreError> {
        let rows = crate::db::query("SELECT DISTINCT nic, vlan FROM segments ORDER BY nic, vlan")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(plinth_common::api::Uplink {
                    nic: r.try_get("nic")?,
                    vlan: r.try_get::<Option<i64>, _>("vlan")?.map(|v| v as u16),
                })
            })
            .collect()
    }

    pub async fn segment_record(&self, id: &str) -> Result<Option<SegmentRecord>, StoreError> {
        let mut conn = self.read().await?;
        read(&mut conn, id).await
    }

    async fn segment_or_corrupt(&self, id: &str) -> Result<Segment, StoreError> {
        self.segment(id, None)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("segment {id} vanished after a write")))
    }

    /// The segments `viewer` may see, by name: one (`id`), or a page of `limit` after
    /// (name, id), or all.
    async fn segments_where(
        &self,
        id: Option<&str>,
        viewer: Option<&str>,
        page: Option<(u32, Option<&(String, String)>)>,
    ) -> Result<Vec<Segment>, StoreError> {
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM segments s"));
        push_viewer(&mut query, viewer);
        if let Some(id) = id {
            query.push(" AND s.id = ").push_bind(id.to_string());
        }
        match page {
            Some((limit, after)) => {
                push_after(&mut query, "s.name", "s.id", Order::Asc, after);
                push_order(&mut query, "s.name", "s.id", Order::Asc, limit);
            }
            None => {
                query.push(" ORDER BY s.name, s.id");
            }
        }
        let rows = query.build().fetch_all(self.pool()).await?;
        let records: Vec<SegmentRecord> = rows.iter().map(record).collect::<Result<_, _>>()?;
        let mut permitted = self.permitted_tenants(id, viewer).await?;
        Ok(records
            .iter()
            .map(|r| r.to_api(permitted.remove(&r.id).unwrap_or_default()))
            .collect())
    }

    async fn permitted_tenants(
        &self,
        id: Option<&str>,
        viewer: Option<&str>,
    ) -> Result<HashMap<String, Vec<PermittedTenant>>, StoreError> {
        let rows = crate::db::query(
            "SELECT st.segment_id, t.id, t.email FROM segment_tenants st \
             JOIN tenants t ON t.id = st.tenant_id \
             WHERE ($1 IS NULL OR st.segment_id = $2) AND ($3 IS NULL OR st.tenant_id = $4) \
             ORDER BY t.email",
        )
        .bind(id)
        .bind(id)
        .bind(viewer)
        .bind(viewer)
        .fetch_all(self.pool())
        .await?;
        let mut map: HashMap<String, Vec<PermittedTenant>> = HashMap::new();
        for r in &rows {
            map.entry(r.try_get("segment_id")?)
                .or_default()
                .push(PermittedTenant {
                    id: r.try_get("id")?,
                    email: r.try_get("email")?,
                });
        }
        Ok(map)
    }

    /// Tenant ids for `names` (ids or emails), in order, repeats dropped; `Err` holds the
    /// first that is no tenant.
    pub async fn resolve_tenants(
        &self,
        names: &[String],
    ) -> Result<Result<Vec<String>, UnknownTenant>, StoreError> {
        let mut ids: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.trim();
            let row = crate::db::query("SELECT id FROM tenants WHERE id = $1 OR email = $2")
                .bind(name)
                .bind(name.to_lowercase())
                .fetch_optional(self.pool())
                .await?;
            let Some(row) = row else {
                return Ok(Err(UnknownTenant(name.to_string())));
            };
            let id: String = row.try_get("id")?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(Ok(ids))
    }
}

pub(crate) async fn read(
    conn: &mut crate::db::Tx,
    id: &str,
) -> Result<Option<SegmentRecord>, StoreError> {
    let row = crate::db::query(&format!("SELECT {COLUMNS} FROM segments s WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(record).transpose()
}
