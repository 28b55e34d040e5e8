//! EIPs: addresses tenants hold, drawn from the segments they may use. An allocation is one
//! write transaction that checks the permission, finds a free address and inserts it, so no
//! address is handed out twice (the UNIQUE (segment_id, address_key) constraint stands behind
//! that). Finding a free address never enumerates the segment: it starts at a random address
//! and reads the taken ones after it in key order until a gap, so the work is bounded by the
//! addresses taken (an IPv6 /64 costs what an IPv4 /28 does); a segment's `allocated` counter
//! says it is full without reading its addresses.

use crate::db::{Keyed, Order, QueryBuilder, Store, StoreError, push_after, push_order};
use crate::network::pool::{Pool, Scan, number};
use crate::network::store::segments::{self, PERMITTED, SegmentRecord};
use crate::network::validate::version;
use plinth_common::api::{Eip, EipState, SegmentState};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::rfc3339;
use rand::Rng;
use std::net::IpAddr;

pub use super::nics::{InstancesOf, new_mac};

/// Taken addresses read by the first query looking for a gap: in a sparse segment the first
/// one already lies past the start. Each further query reads twice as many, up to `MAX_PAGE`.
const FIRST_PAGE: i64 = 4;
const MAX_PAGE: i64 = 1024;

const COLUMNS: &str = "e.id, e.address, e.segment_id, s.name AS segment_name, s.ip_version, \
    e.tenant_id, t.email AS tenant_email, e.instance_id, e.created_at, e.updated_at";
const FROM: &str =
    "FROM eips e JOIN segments s ON s.id = e.segment_id JOIN tenants t ON t.id = e.tenant_id";

/// What a tenant asked for.
#[derive(Debug, Clone)]
pub struct Allocation<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub segment_id: Option<&'a str>,
    pub ip_version: Option<u8>,
    pub address: Option<IpAddr>,
    pub now: i64,
}

/// A segment that had no free address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullSegment {
    pub id: String,
    pub cidr: String,
    pub usable: String,
}

/// Why nothing was allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocRefused {
    /// The segment named does not exist or the tenant may not use it.
    SegmentNotFound,
    SegmentDisabled {
        id: String,
    },
    /// The segment named is of the other family than the version asked for.
    WrongVersion {
        id: String,
        version: u8,
    },
    /// No available segment of that version the tenant may use.
    NoSegment {
        version: u8,
    },
    /// Every segment tried is full.
    Full(Vec<FullSegment>),
    /// The address asked for lies in no segment the tenant may use (or not in the one named).
    AddressOutside,
    /// The address asked for is the network, gateway, broadcast or a reserved one.
    AddressReserved {
        why: &'static str,
    },
    /// Another EIP holds the address asked for: `eip`, of tenant `tenant_id`.
    AddressTaken {
        eip: String,
        tenant_id: String,
    },
}

/// Why a bind did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindRefused {
    EipNotFound,
    InstanceNotFound,
    /// The instance belongs to another tenant than the EIP.
    OtherTenant,
    InstanceDeleting,
    BoundElsewhere {
        instance_id: String,
    },
}

/// Why a release did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseRefused {
    NotFound,
    Bound { instance_id: String },
}

#[derive(Debug, Clone, Default)]
pub struct EipFilter {
    pub tenant: Option<String>,
    pub segment: Option<String>,
    pub instance: Option<String>,
    /// How many EIPs to read (a page request's `fetch`).
    pub limit: u32,
    /// The last EIP shown, (segment name, address key): the page holds those after it.
    pub after: Option<(String, String)>,
}

fn eip(row: &crate::db::Row) -> Result<Eip, StoreError> {
    let instance_id: Option<String> = row.try_get("instance_id")?;
    Ok(Eip {
        id: row.try_get("id")?,
        address: row.try_get("address")?,
        ip_version: row.try_get::<i64, _>("ip_version")? as u8,
        segment_id: row.try_get("segment_id")?,
        segment_name: row.try_get("segment_name")?,
        tenant_id: row.try_get("tenant_id")?,
        tenant_email: row.try_get("tenant_email")?,
        state: if instance_id.is_some() {
            EipState::Bound
        } else {
            EipState::Allocated
        },
        instance_id,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    })
}

/// The segments `tenant` may use that could serve `a`, in the order they are tried: the one
/// named, else those of the version asked for (or the address's), most free addresses first.
async fn candidates(
    conn: &mut crate::db::Tx,
    a: &Allocation<'_>,
) -> Result<Result<Vec<SegmentRecord>, AllocRefused>, StoreError> {
    let rows = crate::db::query(&format!(
        "SELECT {} FROM segments s WHERE {PERMITTED} AND ($2 IS NULL OR s.id = $2) ORDER BY s.name",
        segments::COLUMNS
    ))
    .bind(a.tenant_id)
    .bind(a.segment_id)
    .fetch_all(&mut *conn)
    .await?;
    let all: Vec<SegmentRecord> = rows
        .iter()
        .map(segments::record)
        .collect::<Result<_, _>>()?;
    let asked = a
        .ip_version
        .or(a.address.map(|ip| if ip.is_ipv4() { 4 } else { 6 }));
    if a.segment_id.is_some() {
        let Some(named) = all.into_iter().next() else {
            return Ok(Err(AllocRefused::SegmentNotFound));
        };
        let its = version(&named.spec.net);
        if let Some(v) = asked.filter(|v| *v != its) {
            return Ok(Err(AllocRefused::WrongVersion {
                id: named.id,
                version: v,
            }));
        }
        if named.state != SegmentState::Available {
            return Ok(Err(AllocRefused::SegmentDisabled { id: named.id }));
        }
        return Ok(Ok(vec![named]));
    }
    let wanted = asked.unwrap_or(4);
    let mut usable: Vec<SegmentRecord> = all
        .into_iter()
        .filter(|s| s.state == SegmentState::Available && version(&s.spec.net) == wanted)
        .collect();
    if usable.is_empty() {
        return Ok(Err(AllocRefused::NoSegment { version: wanted }));
    }
    let free = |s: &SegmentRecord| s.pool().usable().saturating_sub(u128::from(s.allocated));
    usable.sort_by_key(|s| std::cmp::Reverse(free(s)));
    Ok(Ok(usable))
}

/// A free address of `segment`, or `None` when it has none. Reads the taken addresses from a
/// random start in key order, wrapping around once.
async fn free_address(
    conn: &mut crate::db::Tx,
    segment: &SegmentRecord,
) -> Result<Option<u128>, StoreError> {
    let pool = segment.pool();
    if u128::from(segment.allocated) >= pool.usable() {
        return Ok(None);
    }
    let start = rand::thread_rng().gen_range(pool.first()..=pool.last());
    let mut passes = vec![(start, pool.last())];
    if start > pool.first() {
        passes.push((pool.first(), start - 1));
    }
    for (from, to) in passes {
        let mut next = from;
        let mut page = FIRST_PAGE;
        loop {
            let rows = crate::db::query(
                "SELECT address_key FROM eips WHERE segment_id = $1 AND address_key >= $2 \
                 AND address_key <= $3 ORDER BY address_key LIMIT $4",
            )
            .bind(&segment.id)
            .bind(pool.key(next))
            .bind(pool.key(to))
            .bind(page)
            .fetch_all(&mut *conn)
            .await?;
            let taken = rows
                .iter()
                .map(|r| {
                    let key: &str = r.try_get("address_key")?;
                    Pool::parse_key(key)
                        .ok_or_else(|| StoreError::Corrupt(format!("EIP address key '{key}'")))
                })
                .collect::<Result<Vec<u128>, StoreError>>()?;
            match pool.scan(next, to, &taken, rows.len() as i64 == page) {
                Scan::Found(n) => return Ok(Some(n)),
                Scan::Continue(n) => {
                    next = n;
                    page = (page * 2).min(MAX_PAGE);
                }
                Scan::Exhausted => break,
            }
        }
    }
    Ok(None)
}

/// Inserts the EIP and counts it on its segment; `false` when the address is taken.
async fn insert(
    conn: &mut crate::db::Tx,
    a: &Allocation<'_>,
    segment: &SegmentRecord,
    n: u128,
) -> Result<bool, StoreError> {
    let pool = segment.pool();
    let inserted = crate::db::query(
        "INSERT INTO eips (id, segment_id, address, address_key, tenant_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (segment_id, address_key) DO NOTHING",
    )
    .bind(a.id)
    .bind(&segment.id)
    .bind(pool.address(n).to_string())
    .bind(pool.key(n))
    .bind(a.tenant_id)
    .bind(a.now)
    .bind(a.now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    crate::db::query("UPDATE segments SET allocated = allocated + 1 WHERE id = $1")
        .bind(&segment.id)
        .execute(&mut *conn)
        .await?;
    let data = serde_json::json!({ "allocated": true, "segment_id": segment.id,
        "address": pool.address(n).to_string() });
    crate::events::record_change(conn, crate::events::EventType::Eip, a.id, data).await?;
    Ok(true)
}

impl Store {
    /// Allocates an address for a tenant from a segment it may use.
    pub async fn allocate_eip(
        &self,
        a: &Allocation<'_>,
    ) -> Result<Result<Eip, AllocRefused>, StoreError> {
        // Allocations queue here rather than on SQLite's write lock (see `Store::claims`).
        let turn = self.eips.lock().await;
        let mut tx = self.write().await?;
        let segments = match candidates(&mut tx, a).await? {
            Ok(s) => s,
            Err(refused) => return Ok(Err(refused)),
        };
        if let Some(addr) = a.address {
            let Some(segment) = segments.iter().find(|s| s.spec.net.contains(&addr)) else {
                return Ok(Err(AllocRefused::AddressOutside));
            };
            if let Some(why) = segment.pool().reserved(addr) {
                return Ok(Err(AllocRefused::AddressReserved { why }));
            }
            if !insert(&mut tx, a, segment, number(addr)).await? {
                let key = segment.pool().key(number(addr));
                let holder = crate::db::query(
                    "SELECT id, tenant_id FROM eips WHERE segment_id = $1 AND address_key = $2",
                )
                .bind(&segment.id)
                .bind(key)
                .fetch_one(&mut tx)
                .await?;
                return Ok(Err(AllocRefused::AddressTaken {
                    eip: holder.try_get("id")?,
                    tenant_id: holder.try_get("tenant_id")?,
                }));
            }
        } else {
            let mut full = Vec::new();
            let mut done = false;
            for segment in &segments {
                match free_address(&mut tx, segment).await? {
                    Some(n) => {
                        // Free as read under the write lock: the insert cannot conflict.
                        if insert(&mut tx, a, segment, n).await? {
                            done = true;
                            break;
                        }
                    }
                    None => full.push(FullSegment {
                        id: segment.id.clone(),
                        cidr: segment.spec.net.to_string(),
                        usable: segment.pool().usable().to_string(),
                    }),
                }
            }
            if !done {
                return Ok(Err(AllocRefused::Full(full)));
            }
        }
        tx.commit().await?;
        self.events_committed();
        drop(turn);
        let made = self.eip(a.id).await?;
        made.map(Ok)
            .ok_or_else(|| StoreError::Corrupt(format!("EIP {} vanished after a write", a.id)))
    }

    pub async fn eip(&self, id: &str) -> Result<Option<Eip>, StoreError> {
        let row = crate::db::query(&format!("SELECT {COLUMNS} {FROM} WHERE e.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(eip).transpose()
    }

    /// A page of EIPs (by segment name, then address, each beside that place) and how many
    /// match the filter in all.
    pub async fn list_eips(
        &self,
        f: &EipFilter,
    ) -> Result<(Vec<Keyed<String, Eip>>, u64), StoreError> {
        let filters = |q: &mut QueryBuilder<'_>| {
            q.push(" WHERE 1 = 1");
            for (column, value) in [
                ("e.tenant_id", &f.tenant),
                ("e.segment_id", &f.segment),
                ("e.instance_id", &f.instance),
            ] {
                if let Some(v) = value {
                    q.push(format!(" AND {column} = ")).push_bind(v.clone());
                }
            }
        };
        let mut count = QueryBuilder::new(format!("SELECT COUNT(*) {FROM}"));
        filters(&mut count);
        let total: i64 = count.build().fetch_one(self.pool()).await?.try_get(0)?;
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS}, e.address_key {FROM}"));
        filters(&mut query);
        // Segment names are unique and an address is in one segment: the order is total.
        let (key, id) = ("s.name", "e.address_key");
        push_after(&mut query, key, id, Order::Asc, f.after.as_ref());
        push_order(&mut query, key, id, Order::Asc, f.limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| {
                let place = (r.try_get("segment_name")?, r.try_get("address_key")?);
                Ok((place, eip(r)?))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total.max(0) as u64))
    }

    /// Binds an EIP to an instance of the same tenant that is not being deleted. Binding it
    /// again to the instance it is bound to changes nothing.
    pub async fn bind_eip(
        &self,
        id: &str,
        instance_id: &str,
        now: i64,
    ) -> Result<Result<Eip, BindRefused>, StoreError> {
        let mut tx = self.write().await?;
        let Some(row) = crate::db::query("SELECT tenant_id, instance_id FROM eips WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut tx)
            .await?
        else {
            return Ok(Err(BindRefused::EipNotFound));
        };
        let (tenant, bound): (String, Option<String>) =
            (row.try_get("tenant_id")?, row.try_get("instance_id")?);
        let Some(inst) = crate::db::query("SELECT tenant_id, state FROM instances WHERE id = $1")
            .bind(instance_id)
            .fetch_optional(&mut tx)
            .await?
        else {
            return Ok(Err(BindRefused::InstanceNotFound));
        };
        if inst.try_get::<String, _>("tenant_id")? != tenant {
            return Ok(Err(BindRefused::OtherTenant));
        }
        if inst.try_get::<String, _>("state")? == InstanceState::Deleting.as_str() {
            return Ok(Err(BindRefused::InstanceDeleting));
        }
        match bound {
            Some(other) if other != instance_id => {
                return Ok(Err(BindRefused::BoundElsewhere { instance_id: other }));
            }
            Some(_) => {}
            None => {
                crate::db::query(
                    "UPDATE eips SET instance_id = $1, updated_at = $2, mac = $3 WHERE id = $4",
                )
                .bind(instance_id)
                .bind(now)
                .bind(new_mac())
                .bind(id)
                .execute(&mut tx)
                .await?;
                let data = serde_json::json!({ "instance_id": instance_id });
                crate::events::record_change(&mut tx, crate::events::EventType::Eip, id, data)
                    .await?;
            }
        }
        tx.commit().await?;
        self.events_committed();
        self.eip_or_corrupt(id).await.map(Ok)
    }

    /// Unbinds an EIP (one not bound stays so); `None` when it does not exist.
    pub async fn unbind_eip(&self, id: &str, now: i64) -> Result<Option<Eip>, StoreError> {
        let mut tx = self.write().await?;
        let n = crate::db::query(
            "UPDATE eips SET instance_id = NULL, mac = NULL, updated_at = $1 \
             WHERE id = $2 AND instance_id IS NOT NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut tx)
        .await?
        .rows_affected();
        if n == 1 {
            let data = serde_json::json!({ "instance_id": null });
            crate::events::record_change(&mut tx, crate::events::EventType::Eip, id, data).await?;
        }
        tx.commit().await?;
        self.events_committed();
        self.eip(id).await
    }

    /// Gives an unbound EIP back to its segment.
    pub async fn release_eip(&self, id: &str) -> Result<Result<(), ReleaseRefused>, StoreError> {
        let _turn = self.eips.lock().await;
        let mut tx = self.write().await?;
        let Some(row) = crate::db::query("SELECT segment_id, instance_id FROM eips WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut tx)
            .await?
        else {
            return Ok(Err(ReleaseRefused::NotFound));
        };
        if let Some(instance_id) = row.try_get::<Option<String>, _>("instance_id")? {
            return Ok(Err(ReleaseRefused::Bound { instance_id }));
        }
        let segment: String = row.try_get("segment_id")?;
        let data = serde_json::json!({ "deleted": true, "released": true, "segment_id": segment });
        crate::events::record_change(&mut tx, crate::events::EventType::Eip, id, data).await?;
        crate::db::query("DELETE FROM eips WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        crate::db::query(
            "UPDATE segments SET allocated = CASE WHEN allocated > 1 THEN allocated - 1 ELSE 0 END \
             WHERE id = $1",
        )
        .bind(&segment)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(Ok(()))
    }

    /// The MAC of bound EIP `id`'s NIC, given now if it has none (it was bound before NICs).
    pub async fn give_mac(&self, id: &str) -> Result<String, StoreError> {
        let mut tx = self.write().await?;
        let sql = "UPDATE eips SET mac = COALESCE(mac, $1) WHERE id = $2 RETURNING mac";
        let row = crate::db::query(sql)
            .bind(new_mac())
            .bind(id)
            .fetch_one(&mut tx);
        let mac: Option<String> = row.await?.try_get("mac")?;
        tx.commit().await?;
        mac.ok_or_else(|| StoreError::Corrupt(format!("EIP {id} has no MAC after one was given")))
    }

    async fn eip_or_corrupt(&self, id: &str) -> Result<Eip, StoreError> {
        self.eip(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("EIP {id} vanished after a write")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::network::store::segments::{Permission, SegmentRefused};
    use crate::network::validate::{self, SegmentInput};
    use std::collections::HashSet;

    const A: &str = "tenant-00000000000a";
    const B: &str = "tenant-00000000000b";

    async fn setup(store: &Store) -> Result<(), StoreError> {
        store.create_tenant(A, "a@example.com", "A").await?;
        store.create_tenant(B, "b@example.com", "B").await?;
        Ok(())
    }

    fn everyone() -> Permission {
        Permission {
            all_tenants: true,
            tenant_ids: Vec::new(),
        }
    }

    async fn segment(
        store: &Store,
        id: &str,
        cidr: &str,
        gateway: &str,
        permission: &Permission,
    ) -> Result<(), StoreError> {
        let spec = validate::spec(&SegmentInput {
            name: id,
            cidr,
            gateway,
            nic: "bond1",
            vlan: Some(100),
            ..SegmentInput::default()
        })
        .expect("a valid segment");
        let made = store.create_segment(id, &spec, permission, 1).await?;
        assert!(made.is_ok(), "{id}: {made:?}");
        Ok(())
    }

    /// `seg-1`, 203.0.113.0/28 with gateway .1, open to every tenant.
    async fn small(store: &Store) -> Result<(), StoreError> {
        segment(store, "seg-1", "203.0.113.0/28", "203.0.113.1", &everyone()).await
    }

    fn ask<'a>(id: &'a str, tenant: &'a str) -> Allocation<'a> {
        Allocation {
            id,
            tenant_id: tenant,
            segment_id: None,
            ip_version: None,
            address: None,
            now: 2,
        }
    }

    crate::db::store_test! {
    async fn a_28_hands_out_13_addresses_to_100_concurrent_callers(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        small(&store).await?;
        let mut tasks = Vec::new();
        for n in 0..100 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("eip-{n:012x}");
                store.allocate_eip(&ask(&id, A)).await
            }));
        }
        let mut got = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("the task ends")? {
                Ok(eip) => got.push(eip.address),
                Err(AllocRefused::Full(full)) => {
                    assert_eq!(full[0].usable, "13");
                    refused += 1;
                }
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
        assert_eq!((got.len(), refused), (13, 87));
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), 13, "{got:?}");
        for never in ["203.0.113.0", "203.0.113.1", "203.0.113.15"] {
            assert!(
                !distinct.contains(&never.to_string()),
                "{never} was handed out"
            );
        }
        // Released, an address can be had again; it is the only free one.
        let (items, total) = store
            .list_eips(&EipFilter {
                limit: 100,
                ..EipFilter::default()
            })
            .await?;
        assert_eq!(total, 13);
        assert_eq!(store.release_eip(&items[4].1.id).await?, Ok(()));
        let again = store.allocate_eip(&ask("eip-0000000000ff", A)).await?;
        assert_eq!(again.map(|e| e.address), Ok(items[4].1.address.clone()));
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn a_64_allocates_10000_distinct_addresses(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        segment(
            &store,
            "seg-6",
            "2001:db8:1::/64",
            "2001:db8:1::1",
            &everyone(),
        )
        .await?;
        let mut seen = HashSet::new();
        for n in 0..10_000u32 {
            let id = format!("eip-{n:012x}");
            let mut a = ask(&id, A);
            a.ip_version = Some(6);
            let eip = store.allocate_eip(&a).await?.expect("an address");
            assert!(seen.insert(eip.address), "an address twice");
        }
        let seg = store.segment("seg-6", None).await?.expect("the segment");
        assert_eq!(seg.allocated, 10_000);
        assert_eq!(seg.usable, ((1u128 << 64) - 130).to_string());
        assert!(!seen.contains("2001:db8:1::") && !seen.contains("2001:db8:1::1"));
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn specific_addresses(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        small(&store).await?;
        let at = |id: &'static str, addr: &str| Allocation {
            address: Some(addr.parse().expect("an address")),
            ..ask(id, A)
        };
        let cases: &[(&str, AllocRefused)] = &[
            (
                "203.0.113.0",
                AllocRefused::AddressReserved {
                    why: "the segment's network address",
                },
            ),
            (
                "203.0.113.1",
                AllocRefused::AddressReserved {
                    why: "the segment's gateway",
                },
            ),
            (
                "203.0.113.15",
                AllocRefused::AddressReserved {
                    why: "the segment's broadcast address",
                },
            ),
            ("203.0.113.16", AllocRefused::AddressOutside),
            ("2001:db8::5", AllocRefused::NoSegment { version: 6 }),
        ];
        for (addr, want) in cases {
            assert_eq!(
                store
                    .allocate_eip(&at("eip-000000000001", addr))
                    .await?
                    .err(),
                Some(want.clone()),
                "{addr}"
            );
        }
        let got = store
            .allocate_eip(&at("eip-000000000001", "203.0.113.7"))
            .await?;
        assert_eq!(got.map(|e| e.address), Ok("203.0.113.7".to_string()));
        let again = store
            .allocate_eip(&at("eip-000000000002", "203.0.113.7"))
            .await?;
        let holder = AllocRefused::AddressTaken {
            eip: "eip-000000000001".into(),
            tenant_id: A.into(),
        };
        assert_eq!(again.err(), Some(holder));
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn permission_decides_who_allocates_and_never_takes_addresses_back(store, _dir)
    -> Result<(), StoreError> {
        setup(&store).await?;
        let only_a = Permission {
            all_tenants: false,
            tenant_ids: vec![A.to_string()],
        };
        segment(&store, "seg-1", "203.0.113.0/28", "203.0.113.1", &only_a).await?;
        assert!(store.list_segments(Some(B), 10, None).await?.0.is_empty());
        assert_eq!(store.list_segments(Some(A), 10, None).await?.0.len(), 1);
        let named = Allocation {
            segment_id: Some("seg-1"),
            ..ask("eip-000000000001", B)
        };
        assert_eq!(
            store.allocate_eip(&named).await?.err(),
            Some(AllocRefused::SegmentNotFound)
        );
        assert_eq!(
            store.allocate_eip(&ask("eip-000000000001", B)).await?.err(),
            Some(AllocRefused::NoSegment { version: 4 })
        );
        let held = store
            .allocate_eip(&ask("eip-00000000000a", A))
            .await?
            .expect("A may");

        let only_b = Permission {
            all_tenants: false,
            tenant_ids: vec![B.to_string()],
        };
        store
            .set_segment_permission("seg-1", &only_b, 3)
            .await?
            .expect("the segment");
        // A keeps what it holds and sees it, but cannot allocate there any more.
        let still = store.eip(&held.id).await?.expect("A's EIP stays");
        assert_eq!(
            (still.tenant_id.as_str(), still.address.as_str()),
            (A, held.address.as_str())
        );
        assert!(store.list_segments(Some(A), 10, None).await?.0.is_empty());
        assert_eq!(
            store.allocate_eip(&ask("eip-00000000000b", A)).await?.err(),
            Some(AllocRefused::NoSegment { version: 4 })
        );
        assert!(
            store
                .allocate_eip(&ask("eip-00000000000c", B))
                .await?
                .is_ok()
        );
        // A tenant sees only itself among the permitted.
        let seen_by_b = store.segment("seg-1", Some(B)).await?.expect("B sees it");
        assert_eq!(seen_by_b.permission.tenants.len(), 1);
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn delete_waits_for_every_release(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        small(&store).await?;
        let eip = store
            .allocate_eip(&ask("eip-000000000001", A))
            .await?
            .expect("an address");
        let second = store
            .allocate_eip(&ask("eip-000000000002", A))
            .await?
            .expect("an address");
        instance(&store, "inst-a", A, "running").await?;
        store
            .bind_eip(&second.id, "inst-a", 3)
            .await?
            .expect("bound");
        // The refusal names the EIPs that hold the segment, and the instance one is bound to.
        assert_eq!(
            store.delete_segment("seg-1").await?,
            Err(SegmentRefused::InUse {
                eips: vec![
                    format!("{} ({})", eip.id, eip.address),
                    format!(
                        "{} ({}, bound to instance inst-a)",
                        second.id, second.address
                    ),
                ],
                allocated: 2
            })
        );
        store.unbind_eip(&second.id, 4).await?.expect("unbound");
        store.release_eip(&second.id).await?.expect("released");
        store.release_eip(&eip.id).await?.expect("released");
        assert_eq!(store.delete_segment("seg-1").await?, Ok(()));
        assert!(store.segment("seg-1", None).await?.is_none());
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn overlapping_segments_are_refused(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        segment(
            &store,
            "seg-1",
            "203.0.113.0/24",
            "203.0.113.1",
            &everyone(),
        )
        .await?;
        let spec = validate::spec(&SegmentInput {
            name: "inner",
            cidr: "203.0.113.64/26",
            gateway: "203.0.113.65",
            nic: "bond2",
            ..SegmentInput::default()
        })
        .expect("valid alone");
        let made = store.create_segment("seg-2", &spec, &everyone(), 1).await?;
        assert!(
            matches!(
                made,
                Err(SegmentRefused::Clash(validate::Clash::Overlap { .. }))
            ),
            "{made:?}"
        );
        Ok(())
    }
    }

    async fn instance(
        store: &Store,
        id: &str,
        tenant: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, vcpus, memory_bytes, disk_bytes, \
                state, search_text, created_at, updated_at) \
             VALUES ($1, $2, 'vm', $3, 1, 67108864, 1073741824, $4, '', 0, 0)",
        )
        .bind(id)
        .bind(id)
        .bind(tenant)
        .bind(state)
        .execute(store.pool())
        .await?;
        Ok(())
    }

    crate::db::store_test! {
    async fn binds_follow_the_tenant_and_the_instance(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        small(&store).await?;
        instance(&store, "inst-a", A, "running").await?;
        instance(&store, "inst-a2", A, "deleting").await?;
        instance(&store, "inst-b", B, "running").await?;
        let eip = store
            .allocate_eip(&ask("eip-000000000001", A))
            .await?
            .expect("an address");
        let bind = |inst: &'static str| store.bind_eip(&eip.id, inst, 3);
        assert_eq!(bind("inst-b").await?.err(), Some(BindRefused::OtherTenant));
        assert_eq!(
            bind("inst-a2").await?.err(),
            Some(BindRefused::InstanceDeleting)
        );
        assert_eq!(
            bind("inst-x").await?.err(),
            Some(BindRefused::InstanceNotFound)
        );
        let bound = bind("inst-a").await?.expect("bound");
        assert_eq!(
            (bound.instance_id.as_deref(), bound.state),
            (Some("inst-a"), EipState::Bound)
        );
        assert!(bind("inst-a").await?.is_ok(), "binding again is no change");
        let addresses = store.instance_addresses("inst-a").await?;
        assert_eq!(addresses.len(), 1);
        assert_eq!(addresses[0].routes, vec!["0.0.0.0/0".to_string()]);
        assert_eq!(
            (addresses[0].gateway.as_str(), addresses[0].prefix_len),
            ("203.0.113.1", 28)
        );
        // The bind gave its NIC a MAC, which stays what it is when asked for again.
        let mac = addresses[0].mac.clone().expect("a MAC with the binding");
        assert!(mac.starts_with("52:54:00:"), "{mac}");
        assert_eq!(store.give_mac(&eip.id).await?, mac);
        // One bound before NICs had none: it gets one, once.
        crate::db::query("UPDATE eips SET mac = NULL")
            .execute(store.pool())
            .await?;
        let given = store.give_mac(&eip.id).await?;
        assert!(given.starts_with("52:54:00:"), "{given}");
        assert_eq!(store.give_mac(&eip.id).await?, given);
        assert_eq!(
            store.release_eip(&eip.id).await?,
            Err(ReleaseRefused::Bound {
                instance_id: "inst-a".into()
            })
        );
        // Deleting the instance unbinds its EIPs.
        crate::db::query("DELETE FROM instances WHERE id = 'inst-a'")
            .execute(store.pool())
            .await?;
        let after = store.eip(&eip.id).await?.expect("the EIP stays");
        assert_eq!(
            (after.instance_id, after.state),
            (None, EipState::Allocated)
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    /// EIPs by segment name then address, through addresses taken between pages on either
    /// side of the cursor; a tenant filter with a cursor. Segments page by name.
    async fn eips_and_segments_page_in_order_through_inserts(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        small(&store).await?;
        // Another VLAN: a NIC and VLAN carry one IPv4 segment.
        let other_vlan = validate::spec(&SegmentInput {
            name: "seg-0",
            cidr: "198.51.100.0/28",
            gateway: "198.51.100.1",
            nic: "bond1",
            vlan: Some(200),
            ..SegmentInput::default()
        })
        .expect("a valid segment");
        let made = store
            .create_segment("seg-0", &other_vlan, &everyone(), 1)
            .await?;
        assert!(made.is_ok(), "{made:?}");
        let take = |id: &'static str, tenant: &'static str, ip: &'static str| {
            let store = &store;
            async move {
                let at = Allocation {
                    address: Some(ip.parse().expect("an address")),
                    ..ask(id, tenant)
                };
                assert!(store.allocate_eip(&at).await?.is_ok(), "{ip}");
                Ok::<_, StoreError>(())
            }
        };
        for (id, tenant, ip) in [
            ("eip-000000000001", A, "203.0.113.5"),
            ("eip-000000000002", B, "198.51.100.9"),
            ("eip-000000000003", A, "203.0.113.3"),
            ("eip-000000000004", B, "198.51.100.4"),
        ] {
            take(id, tenant, ip).await?;
        }
        let read = |limit, after| {
            let filter = EipFilter {
                limit,
                after,
                ..Default::default()
            };
            let store = &store;
            async move { store.list_eips(&filter).await }
        };
        let between = || async {
            take("eip-000000000005", A, "198.51.100.2").await?;
            take("eip-000000000006", A, "203.0.113.4").await
        };
        let (places, total) = crate::db::test_walk(read, between, crate::db::test_asc).await?;
        let segments: Vec<&str> = places.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(segments, ["seg-0", "seg-0", "seg-1", "seg-1", "seg-1"]);
        assert_eq!(total, 6, "198.51.100.2 came before the cursor");
        let only_a = EipFilter {
            tenant: Some(A.into()),
            limit: 10,
            after: places.get(2).cloned(),
            ..Default::default()
        };
        let (rows, total) = store.list_eips(&only_a).await?;
        let ips: Vec<&str> = rows.iter().map(|(_, e)| e.address.as_str()).collect();
        assert_eq!((ips, total), (vec!["203.0.113.4", "203.0.113.5"], 4));

        let (first, total) = store.list_segments(None, 1, None).await?;
        assert_eq!((first[0].name.as_str(), total), ("seg-0", 2));
        let after = (first[0].name.clone(), first[0].id.clone());
        let (next, _) = store.list_segments(None, 1, Some(&after)).await?;
        assert_eq!(next[0].name, "seg-1");
        assert!(
            store
                .list_segments(None, 1, Some(&(next[0].name.clone(), next[0].id.clone())))
                .await?
                .0
                .is_empty()
        );
        Ok(())
    }
    }
}
