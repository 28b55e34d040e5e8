//! Group commit for instance creation. Each create is a claim on a host plus the tenant's share
//! of its quota plus the instance and operation rows; one SQLite statement costs ~0.1 ms
//! through sqlx however small it is, so a create per transaction tops out near 1,000/s. Creates
//! therefore queue to one writer task that takes every claim waiting and writes them in one
//! transaction of set-based statements over a JSON array (one statement per step, whatever
//! the batch size). A batch holds at most one claim per host and one per tenant, so each
//! conditional update decides exactly as it would alone; a batch whose transaction fails is
//! written again claim by claim, so one bad claim cannot fail its neighbours. On PostgreSQL,
//! where each statement is a round trip made holding the store's writer lock, the rows that
//! follow the claims (instances, operations, their steps and events) go as one statement
//! ([`crate::db::Writes`]): a batch is five round trips, whatever its size.

use crate::db::{Store, StoreError};
use crate::instances::store::{ClaimRefused, NewInstanceRow, read_quota, search_text};
use crate::jobs::Jobs;
use crate::jobs::operations::NewOperation;
use crate::scheduler::Overcommit;
use plinth_common::host::HostState;
use plinth_common::instance::InstanceState;
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Claims written in one transaction at most.
const MAX_BATCH: usize = 128;

pub(crate) type ClaimResult = Result<Result<(), ClaimRefused>, StoreError>;

/// One create as the writer task receives it.
pub(crate) struct Claim {
    /// The instance row as a JSON object, as `host_claims`, `quota_claims` and
    /// `insert_instances` read it (serialized once, here, not per statement).
    row: String,
    /// The instance's id.
    id: String,
    /// The create operation's row, as `operations::insert_operations` reads it.
    op: String,
    host: String,
    tenant: String,
    /// EIPs bound in the claim's transaction, with their NICs' MACs: such a claim is written
    /// in a batch of its own, so that one taken meanwhile refuses it alone.
    eips: Vec<(String, String)>,
    cores: u64,
    memory: u64,
    oc: Overcommit,
    reply: oneshot::Sender<ClaimResult>,
}

pub(crate) type ClaimSender = mpsc::UnboundedSender<Claim>;

impl Claim {
    pub(crate) fn new(
        new: &NewInstanceRow<'_>,
        host: &str,
        oc: Overcommit,
        op: &NewOperation<'_>,
    ) -> (Claim, oneshot::Receiver<ClaimResult>) {
        let (reply, answer) = oneshot::channel();
        let row = json!({
            "id": new.id,
            "name": new.name,
            "kind": new.kind.as_str(),
            "tenant": new.tenant_id,
            "host": host,
            "image": new.image_id,
            "cores": new.vcpus,
            "memory": new.memory_bytes,
            "disk": new.disk_bytes,
            "gpu_type": new.gpu_type,
            "sealed": new.admin_password_sealed,
            "op": op.id,
            "search": search_text(new.name, new.id, new.tenant_email, new.image_id),
            "now": op.now,
        })
        .to_string();
        let claim = Claim {
            row,
            id: new.id.to_string(),
            op: op.to_json().to_string(),
            host: host.to_string(),
            tenant: new.tenant_id.to_string(),
            eips: new.eips.to_vec(),
            cores: u64::from(new.vcpus),
            memory: new.memory_bytes,
            oc,
            reply,
        };
        (claim, answer)
    }
}

/// Starts the writer of the claims sent on `queue` on `jobs`; it ends when every sender is
/// dropped, or once the runner is cancelled and the claims queued by then are written.
pub(crate) fn start_writer(jobs: &Jobs, store: Store, queue: mpsc::UnboundedReceiver<Claim>) {
    jobs.spawn("claim writer", writer(store, queue, jobs.token()));
}

async fn writer(store: Store, mut rx: mpsc::UnboundedReceiver<Claim>, stop: CancellationToken) {
    let mut waiting = VecDeque::new();
    let mut closed = false;
    loop {
        if waiting.is_empty() {
            let next = tokio::select! {
                biased;
                claim = rx.recv() => claim,
                // Shutdown: refuse new claims (their creates fail as `Closed`), write the
                // ones already queued, then end.
                _ = stop.cancelled(), if !closed => {
                    rx.close();
                    closed = true;
                    continue;
                }
            };
            match next {
                Some(claim) => waiting.push_back(claim),
                None => return,
            }
        }
        store.write_waiting(&mut waiting, &mut rx).await;
    }
}

/// Takes from the front of `waiting` up to `MAX_BATCH` claims of distinct hosts and distinct
/// tenants (and the same overcommit ratios); the others keep their place for the next batch.
/// A claim that binds EIPs is a batch alone.
fn next_batch(waiting: &mut VecDeque<Claim>) -> Vec<Claim> {
    let (mut hosts, mut tenants) = (HashSet::new(), HashSet::new());
    let mut batch: Vec<Claim> = Vec::new();
    let mut later = VecDeque::new();
    let mut alone = false;
    while let Some(claim) = waiting.pop_front() {
        let binds = !claim.eips.is_empty();
        if batch.len() < MAX_BATCH
            && !alone
            && (batch.is_empty() || !binds)
            && batch.first().is_none_or(|first| first.oc == claim.oc)
            && !hosts.contains(&claim.host)
            && !tenants.contains(&claim.tenant)
        {
            alone = binds;
            hosts.insert(claim.host.clone());
            tenants.insert(claim.tenant.clone());
            batch.push(claim);
        } else {
            later.push_back(claim);
        }
    }
    *waiting = later;
    batch
}

/// What a batch's transaction decided, per claim, and the hosts' new allocations.
struct Decided {
    results: Vec<Result<(), ClaimRefused>>,
    allocations: HashMap<String, (u32, u64)>,
}

impl Store {
    /// Writes the next batch of the claims waiting or queued on `rx`. The batch is taken once
    /// the transaction holds the store's writer lock, so that it holds every claim that came
    /// while this writer waited for it (on PostgreSQL, while other coordinators wrote): the
    /// fewer the batches, the shorter the lock is held per claim.
    async fn write_waiting(
        &self,
        waiting: &mut VecDeque<Claim>,
        rx: &mut mpsc::UnboundedReceiver<Claim>,
    ) {
        let _turn = self.claims.lock().await;
        let tx = self.write().await;
        while let Ok(claim) = rx.try_recv() {
            waiting.push_back(claim);
        }
        let batch = next_batch(waiting);
        self.write_claims_in(tx, batch).await;
    }

    /// `batch` written as the writer task writes its batches (for the tests).
    #[cfg(test)]
    async fn write_claims(&self, batch: Vec<Claim>) {
        let _turn = self.claims.lock().await;
        let tx = self.write().await;
        self.write_claims_in(tx, batch).await;
    }

    /// Writes `batch` in `tx` (begun by the caller, which holds `self.claims`) and answers each
    /// claim; after a failed transaction, writes each claim in its own.
    async fn write_claims_in(&self, tx: Result<crate::db::Tx, StoreError>, batch: Vec<Claim>) {
        match self.try_claims_in(tx, &batch).await {
            Ok(decided) => self.answer(batch, decided),
            Err(err) if batch.len() > 1 => {
                tracing::warn!(claims = batch.len(), error = %err, "Claim batch failed; writing its claims one by one.");
                for claim in batch {
                    let tx = self.write().await;
                    match self.try_claims_in(tx, std::slice::from_ref(&claim)).await {
                        Ok(decided) => self.answer(vec![claim], decided),
                        Err(err) => {
                            let _ = claim.reply.send(Err(err));
                        }
                    }
                }
            }
            Err(err) => {
                if let Some(claim) = batch.into_iter().next() {
                    let _ = claim.reply.send(Err(err));
                }
            }
        }
    }

    fn answer(&self, batch: Vec<Claim>, decided: Decided) {
        for (host, (cores, memory)) in decided.allocations {
            self.set_allocation(&host, cores, memory);
        }
        for (claim, result) in batch.into_iter().zip(decided.results) {
            // A caller that went away (its request was dropped) still has its instance.
            let _ = claim.reply.send(Ok(result));
        }
    }

    /// The batch's transaction: host claims, then quota for those that got one (a host claim
    /// whose quota is refused is given back), then the rows of the claims that got both.
    async fn try_claims_in(
        &self,
        tx: Result<crate::db::Tx, StoreError>,
        batch: &[Claim],
    ) -> Result<Decided, StoreError> {
        let mut tx = tx?;
        let all: Vec<&Claim> = batch.iter().collect();
        let oc = batch.first().map(|c| c.oc).unwrap_or_default();
        let mut allocations = host_claims(&mut tx, &rows(&all), oc).await?;
        let hosted: Vec<&Claim> = all
            .into_iter()
            .filter(|c| allocations.contains_key(&c.host))
            .collect();
        let quota_ok = quota_claims(&mut tx, &hosted).await?;
        let (granted, over): (Vec<&Claim>, Vec<&Claim>) = hosted
            .into_iter()
            .partition(|c| quota_ok.contains(&c.tenant));
        let mut refusals = HashMap::new();
        for c in &over {
            let (host, cores, memory) =
                give_back(&mut tx, &c.host, c.cores as i64, c.memory as i64).await?;
            allocations.insert(host, (cores, memory));
            let (quota, usage) = read_quota(&mut tx, &c.tenant).await?;
            let exceeded = crate::instances::store::exceeded(&quota, &usage, c.cores, c.memory)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("quota of tenant {} refused and allowed", c.tenant))
                })?;
            refusals.insert(c.host.clone(), ClaimRefused::Quota(exceeded));
        }
        // The rows go in one round trip on PostgreSQL (the writer lock is held meanwhile),
        // but a claim binding EIPs writes its instance first: the EIPs' rows refer to it.
        let d = tx.dialect();
        let mut writes = crate::db::Writes::new();
        insert_instances(&mut writes, d, &granted);
        if let [claim] = granted.as_slice()
            && !claim.eips.is_empty()
        {
            std::mem::take(&mut writes).run(&mut tx).await?;
            if let Some(taken) = bind_eips(&mut tx, claim).await? {
                // Dropping the transaction rolls the claim back: nothing of it stays.
                return Ok(Decided {
                    results: vec![Err(ClaimRefused::EipTaken(taken))],
                    allocations: HashMap::new(),
                });
            }
        }
        let created =
            serde_json::json!({ "state": InstanceState::Creating.as_str(), "created": true });
        let events: Vec<crate::events::Event<'_>> = granted
            .iter()
            .map(|c| crate::events::Event {
                kind: crate::events::EventType::Instance,
                resource_id: &c.id,
                tenant_id: Some(&c.tenant),
                data: created.clone(),
            })
            .collect();
        if !granted.is_empty() {
            let ops = json_array(granted.iter().map(|c| c.op.as_str()));
            let steps: Vec<String> = granted
                .iter()
                .map(|c| format!("placed on host {}", c.host))
                .collect();
            crate::jobs::operations::insert_operations(&mut writes, d, &ops, &steps, events)?;
        }
        writes.run(&mut tx).await?;
        tx.commit().await?;
        self.events_committed();
        let results = batch
            .iter()
            .map(|c| match refusals.remove(&c.host) {
                Some(refused) => Err(refused),
                None if allocations.contains_key(&c.host) => Ok(()),
                None => Err(ClaimRefused::HostFull),
            })
            .collect();
        Ok(Decided {
            results,
            allocations,
        })
    }
}

/// Binds the claim's EIPs to its new instance (each with its NIC's MAC, as `bind_eip` does);
/// answers the first that is no longer the tenant's to bind.
async fn bind_eips(conn: &mut crate::db::Tx, claim: &Claim) -> Result<Option<String>, StoreError> {
    let now = plinth_common::timefmt::now_ms();
    for (eip, mac) in &claim.eips {
        let bound = crate::db::query(
            "UPDATE eips SET instance_id = $1, mac = $2, updated_at = $3 \
             WHERE id = $4 AND tenant_id = $5 AND instance_id IS NULL",
        )
        .bind(&claim.id)
        .bind(mac)
        .bind(now)
        .bind(eip)
        .bind(&claim.tenant)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if bound != 1 {
            return Ok(Some(eip.clone()));
        }
        let data = json!({ "instance_id": claim.id });
        crate::events::record_change(conn, crate::events::EventType::Eip, eip, data).await?;
    }
    Ok(None)
}

/// JSON array of the claims' instance rows (what every statement here reads).
fn rows(claims: &[&Claim]) -> String {
    json_array(claims.iter().map(|c| c.row.as_str()))
}

fn json_array<'a>(objects: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, object) in objects.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(object);
    }
    out.push(']');
    out
}

/// Adds each claim of `claims` (a JSON array of `{host, cores, memory}`, hosts distinct) to
/// its host where it still fits under the overcommit ratios and the host is `available`;
/// returns the hosts that took their claim and their new allocations. (`unindexed` keeps
/// either database from driving the update from the index on `state`, which would read every
/// available host instead of each claimed host once by id.)
pub(crate) async fn host_claims(
    conn: &mut crate::db::Tx,
    claims: &str,
    oc: Overcommit,
) -> Result<HashMap<String, (u32, u64)>, StoreError> {
    let d = conn.dialect();
    let sql = format!(
        "UPDATE hosts SET allocated_cores = allocated_cores + c.cores, \
            allocated_memory_bytes = allocated_memory_bytes + c.memory \
         FROM {} \
         WHERE hosts.id = c.host AND {} = $4 \
           AND hosts.allocated_cores + c.cores <= {} \
           AND hosts.allocated_memory_bytes + c.memory <= {} \
         RETURNING id, allocated_cores, allocated_memory_bytes",
        d.json_rows(
            "$1",
            "c",
            &[("host", "TEXT"), ("cores", "BIGINT"), ("memory", "BIGINT")]
        ),
        d.unindexed("hosts.state"),
        d.floor_int("hosts.total_cores * $2"),
        d.floor_int("hosts.total_memory_bytes * $3"),
    );
    let rows = crate::db::query(&sql)
        .bind(claims)
        .bind(oc.cpu)
        .bind(oc.memory)
        .bind(HostState::Available.as_str())
        .fetch_all(conn)
        .await?;
    allocations(&rows)
}

/// Gives back `cores` and `memory` of `host`'s allocation (a claim released, or a
/// migration's other end); returns the host and its new allocation.
pub(crate) async fn give_back(
    conn: &mut crate::db::Tx,
    host: &str,
    cores: i64,
    memory: i64,
) -> Result<(String, u32, u64), StoreError> {
    let row = crate::db::query(
        "UPDATE hosts SET \
            allocated_cores = CASE WHEN allocated_cores > $1 THEN allocated_cores - $1 ELSE 0 END, \
            allocated_memory_bytes = CASE WHEN allocated_memory_bytes > $2 \
                THEN allocated_memory_bytes - $2 ELSE 0 END \
         WHERE id = $3 RETURNING id, allocated_cores, allocated_memory_bytes",
    )
    .bind(cores)
    .bind(memory)
    .bind(host)
    .fetch_one(conn)
    .await?;
    let (id, (c, m)) = allocation(&row)?;
    Ok((id, c, m))
}

fn allocation(r: &crate::db::Row) -> Result<(String, (u32, u64)), StoreError> {
    Ok((
        r.try_get("id")?,
        (
            r.try_get::<i64, _>("allocated_cores")? as u32,
            r.try_get::<i64, _>("allocated_memory_bytes")? as u64,
        ),
    ))
}

fn allocations(rows: &[crate::db::Row]) -> Result<HashMap<String, (u32, u64)>, StoreError> {
    rows.iter().map(allocation).collect()
}

/// Adds each claim to what its tenant holds where that stays within the tenant's quota
/// (tenants are distinct within a batch); returns the tenants whose claim was taken. A tenant
/// without a quota row gets one (no limits).
async fn quota_claims(
    conn: &mut crate::db::Tx,
    claims: &[&Claim],
) -> Result<HashSet<String>, StoreError> {
    if claims.is_empty() {
        return Ok(HashSet::new());
    }
    let from = conn.dialect().json_rows(
        "$1",
        "q",
        &[
            ("tenant", "TEXT"),
            ("cores", "BIGINT"),
            ("memory", "BIGINT"),
        ],
    );
    let sql = format!(
        "INSERT INTO tenant_quotas (tenant_id, used_cores, used_memory_bytes, used_instances) \
         SELECT q.tenant, q.cores, q.memory, 1 FROM {from} WHERE true \
         ON CONFLICT (tenant_id) DO UPDATE SET \
            used_cores = tenant_quotas.used_cores + excluded.used_cores, \
            used_memory_bytes = tenant_quotas.used_memory_bytes + excluded.used_memory_bytes, \
            used_instances = tenant_quotas.used_instances + 1 \
         WHERE (tenant_quotas.cores IS NULL \
                OR tenant_quotas.used_cores + excluded.used_cores <= tenant_quotas.cores) \
           AND (tenant_quotas.memory_bytes IS NULL \
                OR tenant_quotas.used_memory_bytes + excluded.used_memory_bytes \
                   <= tenant_quotas.memory_bytes) \
           AND (tenant_quotas.instances IS NULL \
                OR tenant_quotas.used_instances + 1 <= tenant_quotas.instances) \
         RETURNING tenant_id"
    );
    let rows = crate::db::query(&sql)
        .bind(rows(claims))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("tenant_id")?)).collect()
}

fn insert_instances(
    writes: &mut crate::db::Writes<'_>,
    dialect: crate::db::Dialect,
    claims: &[&Claim],
) {
    if claims.is_empty() {
        return;
    }
    let from = dialect.json_rows(
        "$1",
        "c",
        &[
            ("id", "TEXT"),
            ("name", "TEXT"),
            ("kind", "TEXT"),
            ("tenant", "TEXT"),
            ("host", "TEXT"),
            ("image", "TEXT"),
            ("cores", "BIGINT"),
            ("memory", "BIGINT"),
            ("disk", "BIGINT"),
            ("gpu_type", "TEXT"),
            ("sealed", "TEXT"),
            ("op", "TEXT"),
            ("search", "TEXT"),
            ("now", "BIGINT"),
        ],
    );
    let sql = format!(
        "INSERT INTO instances (id, name, kind, tenant_id, host_id, image_id, vcpus, memory_bytes, \
            disk_bytes, gpu_type, state, admin_password_sealed, operation_id, search_text, \
            created_at, updated_at) \
         SELECT c.id, c.name, c.kind, c.tenant, c.host, c.image, c.cores, c.memory, c.disk, \
            c.gpu_type, $2, c.sealed, c.op, c.search, c.now, c.now FROM {from}"
    );
    writes.push(
        crate::db::Query::owned(sql)
            .bind(rows(claims))
            .bind(InstanceState::Creating.as_str()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Dialect;
    use crate::db::test_backends::test_store_on;
    use plinth_common::api::Quota;
    use plinth_common::instance::InstanceKind;

    const GIB: u64 = 1 << 30;

    /// Four hosts of 4 cores / 4 GiB and four tenants; tenant 3 may hold no instance.
    async fn region(store: &Store) -> Result<(), StoreError> {
        crate::db::test_hosts(store, 4, 4, 4 * GIB).await?;
        for n in 1..=4 {
            store
                .create_tenant(&format!("ten-{n}"), &format!("{n}@x"), "T")
                .await?;
        }
        let none = Quota {
            instances: Some(0),
            ..Default::default()
        };
        store.set_quota("ten-3", &none).await?;
        crate::db::test_image(store, "img-1").await?;
        Ok(())
    }

    /// Claim `n`: tenant `n` on host `n` for `cores` vCPUs and 1 GiB, booting `image`.
    fn numbered(n: u32, cores: u32, image: &str) -> (Claim, oneshot::Receiver<ClaimResult>) {
        of_tenant(n, &format!("ten-{n}"), cores, image, &[])
    }

    /// Claim `n` of `tenant` on host `n`, binding `eips`.
    fn of_tenant(
        n: u32,
        tenant: &str,
        cores: u32,
        image: &str,
        eips: &[(String, String)],
    ) -> (Claim, oneshot::Receiver<ClaimResult>) {
        let (id, op, tenant, host) = (
            format!("inst-{n}"),
            format!("op-{n}"),
            tenant.to_string(),
            format!("host-{n}"),
        );
        let new = NewInstanceRow {
            id: &id,
            name: "vm",
            kind: InstanceKind::Vm,
            tenant_id: &tenant,
            tenant_email: "x",
            image_id: image,
            vcpus: cores,
            memory_bytes: GIB,
            disk_bytes: GIB,
            gpu_type: None,
            admin_password_sealed: "sealed",
            eips,
        };
        let op = NewOperation {
            id: &op,
            kind: "instance_create",
            target_id: &id,
            owner_tenant_id: Some(&tenant),
            now: 2,
        };
        let oc = Overcommit {
            cpu: 2.0,
            memory: 1.0,
        };
        Claim::new(&new, &host, oc, &op)
    }

    /// One batch of four claims: one fits, one is too big for its host, one is over its
    /// tenant's quota, and (in the second case) one names an image that does not exist, which
    /// fails the batch's transaction so that every claim is written alone. Either way each
    /// claim gets its own answer and only the one that fits leaves a trace.
    #[tokio::test]
    async fn a_batch_decides_each_claim_as_alone() -> Result<(), StoreError> {
        for (dialect, bad_image) in [
            (Dialect::Sqlite, false),
            (Dialect::Sqlite, true),
            (Dialect::Postgres, false),
            (Dialect::Postgres, true),
        ] {
            let (store, _dir) = test_store_on(dialect).await;
            region(&store).await?;
            let fourth = if bad_image { "img-missing" } else { "img-1" };
            let (claims, answers): (Vec<Claim>, Vec<_>) = [
                numbered(1, 2, "img-1"),
                numbered(2, 9, "img-1"),
                numbered(3, 1, "img-1"),
                numbered(4, 1, fourth),
            ]
            .into_iter()
            .unzip();
            store.write_claims(claims).await;
            let mut results = Vec::new();
            for answer in answers {
                results.push(answer.await.expect("answered"));
            }
            let label = format!("bad image: {bad_image}");
            assert!(
                matches!(results[0], Ok(Ok(()))),
                "{label}: {:?}",
                results[0]
            );
            assert!(
                matches!(results[1], Ok(Err(ClaimRefused::HostFull))),
                "{label}"
            );
            match &results[2] {
                Ok(Err(ClaimRefused::Quota(q))) => assert_eq!(q.resource, "instances", "{label}"),
                other => panic!("{label}: expected a quota refusal, got {other:?}"),
            }
            if bad_image {
                assert!(matches!(results[3], Err(StoreError::Sql(_))), "{label}");
            } else {
                assert!(matches!(results[3], Ok(Ok(()))), "{label}");
            }
            let placed = store.placement_candidates(0);
            let cores: Vec<u32> = placed.iter().map(|c| c.allocated_cores).collect();
            assert_eq!(cores, [2, 0, 0, if bad_image { 0 } else { 1 }], "{label}");
            let row = crate::db::query(
                "SELECT (SELECT COUNT(*) FROM instances) AS i, (SELECT COUNT(*) FROM operations) AS o, \
                    (SELECT CAST(SUM(allocated_cores) AS BIGINT) FROM hosts) AS c",
            )
            .fetch_one(store.pool())
            .await?;
            let want = if bad_image { 1 } else { 2 };
            assert_eq!(row.try_get::<i64, _>("i")?, want, "{label}");
            assert_eq!(row.try_get::<i64, _>("o")?, want, "{label}");
            assert_eq!(row.try_get::<i64, _>("c")?, 2 + want - 1, "{label}");
            assert_eq!(store.quota("ten-1").await?.1.cores, 2, "{label}");
            assert_eq!(store.quota("ten-3").await?.1.instances, 0, "{label}");
            // The granted creates' events, in commit order: each instance, each operation
            // begun, each operation's first step; every one its tenant's.
            let granted: &[u32] = if bad_image { &[1] } else { &[1, 4] };
            let mut want = Vec::new();
            for (kind, prefix) in [
                ("instance", "inst"),
                ("operation", "op"),
                ("operation", "op"),
            ] {
                for n in granted {
                    want.push((
                        kind.to_string(),
                        format!("{prefix}-{n}"),
                        format!("ten-{n}"),
                    ));
                }
            }
            let rows = crate::db::query(
                "SELECT type, resource_id, tenant_id, data FROM events ORDER BY id",
            )
            .fetch_all(store.pool())
            .await?;
            let got: Vec<(String, String, String)> = rows
                .iter()
                .filter(|r| r.try_get::<String, _>("type").is_ok_and(|t| t != "host"))
                .map(|r| {
                    Ok((
                        r.try_get("type")?,
                        r.try_get("resource_id")?,
                        r.try_get("tenant_id")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            assert_eq!(got, want, "{label}");
            let last: String = rows
                .last()
                .map(|r| r.try_get("data"))
                .transpose()?
                .unwrap_or_default();
            let last: serde_json::Value = serde_json::from_str(&last).expect("event data");
            assert_eq!(
                last["step"]["message"],
                format!("placed on host host-{}", granted[granted.len() - 1]),
                "{label}"
            );
            let steps = crate::db::query_scalar::<i64>(
                "SELECT COUNT(*) FROM operation_steps WHERE seq = 1 AND message LIKE 'placed on host %'",
            )
            .fetch_one(store.pool())
            .await?;
            assert_eq!(steps, granted.len() as i64, "{label}");
        }
        Ok(())
    }

    /// A create that binds EIPs binds them in its own transaction with their MACs; one whose
    /// EIP was taken meanwhile is refused and leaves nothing (no instance, claim or binding).
    #[tokio::test]
    async fn a_claim_binds_its_eips_or_nothing() -> Result<(), StoreError> {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let (store, _dir) = test_store_on(dialect).await;
            region(&store).await?;
            crate::db::query(
                "INSERT INTO segments (id, name, ip_version, cidr, gateway, nic, route_policy, \
                    all_tenants, state, created_at, updated_at) \
                 VALUES ('seg-1', 'public', 4, '192.0.2.0/24', '192.0.2.1', 'eth1', 'default', \
                    1, 'available', 1, 1)",
            )
            .execute(store.pool())
            .await?;
            for (eip, address, key) in [
                ("eip-1", "192.0.2.10", "c000020a"),
                ("eip-2", "192.0.2.11", "c000020b"),
            ] {
                crate::db::query(
                    "INSERT INTO eips (id, segment_id, address, address_key, tenant_id, \
                        created_at, updated_at) VALUES ($1, 'seg-1', $2, $3, 'ten-1', 1, 1)",
                )
                .bind(eip)
                .bind(address)
                .bind(key)
                .execute(store.pool())
                .await?;
            }
            let with_eips =
                |n: u32, eips: &[(String, String)]| of_tenant(n, "ten-1", 1, "img-1", eips);
            let first = [
                ("eip-1".to_string(), "52:54:00:00:00:01".to_string()),
                ("eip-2".to_string(), "52:54:00:00:00:02".to_string()),
            ];
            let (claim, answer) = with_eips(1, &first);
            store.write_claims(vec![claim]).await;
            assert!(matches!(answer.await, Ok(Ok(Ok(())))), "{dialect:?}");
            let addresses = store.instance_addresses("inst-1").await?;
            let macs: Vec<Option<String>> = addresses.iter().map(|a| a.mac.clone()).collect();
            assert_eq!(
                macs,
                [
                    Some("52:54:00:00:00:01".into()),
                    Some("52:54:00:00:00:02".into())
                ],
                "{dialect:?}"
            );
            // The second create asks for eip-2, which the first holds now.
            let (claim, answer) = with_eips(2, &[("eip-2".into(), "52:54:00:00:00:03".into())]);
            store.write_claims(vec![claim]).await;
            match answer.await {
                Ok(Ok(Err(ClaimRefused::EipTaken(eip)))) => assert_eq!(eip, "eip-2", "{dialect:?}"),
                other => panic!("{dialect:?}: expected EipTaken, got {other:?}"),
            }
            let instances = crate::db::query_scalar::<i64>(
                "SELECT COUNT(*) FROM instances WHERE id = 'inst-2'",
            )
            .fetch_one(store.pool())
            .await?;
            assert_eq!(
                instances, 0,
                "{dialect:?}: the refused create left no instance"
            );
            let cores: Vec<u32> = store
                .placement_candidates(0)
                .iter()
                .map(|c| c.allocated_cores)
                .collect();
            assert_eq!(cores, [1, 0, 0, 0], "{dialect:?}: nor a claim on host-2");
            let eip2 = store.eip("eip-2").await?.expect("eip-2");
            assert_eq!(eip2.instance_id.as_deref(), Some("inst-1"), "{dialect:?}");
        }
        Ok(())
    }

    fn claim(host: &str, tenant: &str) -> Claim {
        Claim {
            row: String::new(),
            id: String::new(),
            op: String::new(),
            host: host.into(),
            tenant: tenant.into(),
            eips: Vec::new(),
            cores: 1,
            memory: 1,
            oc: Overcommit::default(),
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_holds_one_claim_per_host_and_per_tenant_in_order() {
        let mut waiting: VecDeque<Claim> = [
            ("h1", "t1"),
            ("h1", "t2"),
            ("h2", "t1"),
            ("h3", "t3"),
            ("h2", "t2"),
        ]
        .into_iter()
        .map(|(h, t)| claim(h, t))
        .collect();
        let ids = |cs: &[Claim]| -> Vec<(String, String)> {
            cs.iter()
                .map(|c| (c.host.clone(), c.tenant.clone()))
                .collect()
        };
        let first = next_batch(&mut waiting);
        assert_eq!(
            ids(&first),
            [
                ("h1".into(), "t1".into()),
                ("h3".into(), "t3".into()),
                ("h2".into(), "t2".into())
            ]
        );
        let rest: Vec<Claim> = waiting.drain(..).collect();
        assert_eq!(
            ids(&rest),
            [("h1".into(), "t2".into()), ("h2".into(), "t1".into())]
        );
    }
}
