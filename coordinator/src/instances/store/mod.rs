//! Instances and their claims on hosts. A claim is the instance's vCPUs and memory added to its
//! host's `allocated_*` columns; it is taken by a conditional UPDATE inside the transaction that
//! writes the instance, so two concurrent placements can never over-commit one host, and it is
//! given back in the transaction that unplaces or deletes the instance. Creates are written in
//! batches by the claim writer (claims.rs).

pub mod claims;
pub mod owners;
pub mod quota;
pub mod state;

pub use quota::QuotaExceeded;
pub(crate) use quota::{exceeded, read_quota, release_quota};

use crate::db::{
    Keyed, Order, QueryBuilder, Store, StoreError, like_pattern, push_after, push_order,
};
use crate::instances::store::claims::{Claim, give_back, host_claims};
use crate::instances::store::state::{Owner, StateChange, not_owned, owned_state, swap_state};
use crate::jobs::operations::{NewOperation, add_step};
use crate::scheduler::Overcommit;
use plinth_common::api::{Instance, OperationStatus};
use plinth_common::instance::{InstanceKind, InstanceState};
use plinth_common::timefmt::rfc3339;
use serde_json::json;

const COLUMNS: &str = "i.id, i.name, i.kind, i.tenant_id, t.email AS tenant_email, i.host_id, \
    h.ip AS host_ip, i.image_id, i.vcpus, i.memory_bytes, i.disk_bytes, i.gpu_type, \
    i.devices_json, i.state, i.state_reason, i.domain_uuid, i.operation_id, i.created_at, \
    i.updated_at, i.admin_password_sealed";
const FROM: &str =
    "FROM instances i JOIN tenants t ON t.id = i.tenant_id LEFT JOIN hosts h ON h.id = i.host_id";

/// An instance and what only the coordinator reads of it.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub instance: Instance,
    pub admin_password_sealed: Option<String>,
}

/// A new instance as the create request resolved it.
#[derive(Debug, Clone)]
pub struct NewInstanceRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: InstanceKind,
    pub tenant_id: &'a str,
    pub tenant_email: &'a str,
    pub image_id: &'a str,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub gpu_type: Option<&'a str>,
    pub admin_password_sealed: &'a str,
    /// EIPs of the tenant's to bind in the create's transaction, each with its NIC's new MAC.
    pub eips: &'a [(String, String)],
}

/// Why a claim was not taken.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimRefused {
    /// The host filled up (or left `available`) since placement read it.
    HostFull,
    Quota(QuotaExceeded),
    /// The instance changed under the caller (not where it was expected to be).
    Moved,
    /// An EIP to bind at create was bound (or released) meanwhile.
    EipTaken(String),
}

#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub q: Option<String>,
    pub tenant: Option<String>,
    pub host: Option<String>,
    pub state: Option<InstanceState>,
    /// How many instances to read (a page request's `fetch`).
    pub limit: u32,
    /// The last instance shown, (created_at, id): the page holds those after it, newest first.
    pub after: Option<(i64, String)>,
}

/// A change reconciliation made, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub instance_id: String,
    pub from: InstanceState,
    pub to: InstanceState,
    pub reason: Option<String>,
}

pub(crate) fn search_text(name: &str, id: &str, tenant_email: &str, image_id: &str) -> String {
    format!("{name}\n{id}\n{tenant_email}\n{image_id}").to_lowercase()
}

fn parse_state(text: &str) -> Result<InstanceState, StoreError> {
    InstanceState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("instance state '{text}'")))
}

fn record(row: &crate::db::Row) -> Result<InstanceRecord, StoreError> {
    let kind: &str = row.try_get("kind")?;
    let devices: String = row.try_get("devices_json")?;
    let instance = Instance {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: InstanceKind::parse(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("instance kind '{kind}'")))?,
        tenant_id: row.try_get("tenant_id")?,
        tenant_email: row.try_get("tenant_email")?,
        host_id: row.try_get("host_id")?,
        host_ip: row.try_get("host_ip")?,
        image_id: row.try_get("image_id")?,
        vcpus: row.try_get::<i64, _>("vcpus")? as u32,
        memory_bytes: row.try_get::<i64, _>("memory_bytes")? as u64,
        disk_bytes: row.try_get::<i64, _>("disk_bytes")? as u64,
        gpu_type: row.try_get("gpu_type")?,
        devices: serde_json::from_str(&devices)
            .map_err(|e| StoreError::Corrupt(format!("instance devices: {e}")))?,
        state: parse_state(row.try_get("state")?)?,
        state_reason: row.try_get("state_reason")?,
        resource_id: row.try_get("domain_uuid")?,
        operation_id: row.try_get("operation_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    };
    Ok(InstanceRecord {
        instance,
        admin_password_sealed: row.try_get("admin_password_sealed")?,
    })
}

/// Gives an instance's claim back to its host and unplaces it; returns the host and its new
/// allocation, or `None` when it held no claim.
pub(crate) async fn release_claim(
    conn: &mut crate::db::Tx,
    id: &str,
) -> Result<Option<(String, u32, u64)>, StoreError> {
    let Some(row) = crate::db::query(
        "SELECT host_id, vcpus, memory_bytes FROM instances WHERE id = $1 AND host_id IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let released = give_back(
        &mut *conn,
        row.try_get("host_id")?,
        row.try_get("vcpus")?,
        row.try_get("memory_bytes")?,
    )
    .await?;
    crate::db::query("UPDATE instances SET host_id = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(Some(released))
}

/// Ends the job `op` on instance `id`, leaving it in `to` (with `reason`): a swap from the
/// state the job holds it in. An instance the job no longer owns (removed meanwhile) is left
/// as it is; the caller still ends the operation.
async fn end_job(
    conn: &mut crate::db::Tx,
    id: &str,
    op: &str,
    to: InstanceState,
    reason: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(from) = owned_state(&mut *conn, id, op).await? else {
        return Ok(());
    };
    let change = StateChange {
        from,
        to,
        owner: Owner::Job(op),
        operation: None,
        reason,
        now,
    };
    if !swap_state(conn, id, &change).await? {
        return Err(not_owned(id, op));
    }
    Ok(())
}

/// The settled state a libvirt domain state means for its instance (and why, when that is not
/// plain); `None` for a state that says nothing either way. No domain at all is an error.
pub fn observed(domain_state: Option<&str>) -> Option<(InstanceState, Option<String>)> {
    match domain_state {
        Some("running" | "blocked" | "paused") => Some((InstanceState::Running, None)),
        Some("shutoff" | "shutdown") => Some((InstanceState::Stopped, None)),
        Some("crashed") => Some((InstanceState::Stopped, Some("the domain crashed".into()))),
        Some(_) => None,
        None => Some((
            InstanceState::Error,
            Some("its domain is missing on the host".into()),
        )),
    }
}

impl Store {
    pub(crate) fn set_allocation(&self, host: &str, cores: u32, memory: u64) {
        self.host_index().update(host, |e| {
            e.capacity.allocated_cores = cores;
            e.capacity.allocated_memory_bytes = memory;
        });
        self.note_for_peers(crate::db::follow::Note::Host(host.to_string()));
    }

    /// Writes a new instance placed on `host`, its claim on the host, its share of the
    /// tenant's quota and its create operation, all or nothing, in a transaction it may share
    /// with other creates (claims.rs).
    pub async fn create_instance(
        &self,
        new: &NewInstanceRow<'_>,
        host: &str,
        oc: Overcommit,
        op: &NewOperation<'_>,
    ) -> Result<Result<(), ClaimRefused>, StoreError> {
        let (claim, answer) = Claim::new(new, host, oc, op);
        self.claim_writer
            .send(claim)
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Places an unplaced instance on `host` (a start after its host was drained, or a retry
    /// of a failed create) and starts `op` on it, moving it to `state`.
    pub async fn place_instance(
        &self,
        id: &str,
        host: &str,
        oc: Overcommit,
        state: InstanceState,
        op: &NewOperation<'_>,
    ) -> Result<Result<(), ClaimRefused>, StoreError> {
        let _turn = self.claims.lock().await;
        let mut tx = self.write().await?;
        let row = crate::db::query(
            "SELECT state, vcpus, memory_bytes FROM instances WHERE id = $1 AND host_id IS NULL \
                AND operation_id IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(ClaimRefused::Moved));
        };
        let cores = row.try_get::<i64, _>("vcpus")? as u32;
        let memory = row.try_get::<i64, _>("memory_bytes")? as u64;
        let claim = json!([{"host": host, "cores": cores, "memory": memory}]).to_string();
        let Some(&(c, m)) = host_claims(&mut tx, &claim, oc).await?.get(host) else {
            return Ok(Err(ClaimRefused::HostFull));
        };
        let from = parse_state(row.try_get("state")?)?;
        let change = StateChange {
            from,
            to: state,
            owner: Owner::Nobody,
            operation: Some(op.id),
            reason: None,
            now: op.now,
        };
        if !swap_state(&mut tx, id, &change).await? {
            return Ok(Err(ClaimRefused::Moved));
        }
        crate::db::query("UPDATE instances SET host_id = $1 WHERE id = $2")
            .bind(host)
            .bind(id)
            .execute(&mut tx)
            .await?;
        self.insert_operation(&mut tx, op).await?;
        add_step(&mut tx, op.id, &format!("placed on host {host}"), op.now).await?;
        tx.commit().await?;
        self.events_committed();
        self.set_allocation(host, c, m);
        Ok(Ok(()))
    }

    /// Moves a settled instance into `to` for the job `op`, if it is still in `from` and no
    /// job owns it. `false` when someone moved it first.
    pub async fn begin_instance_job(
        &self,
        id: &str,
        from: InstanceState,
        to: InstanceState,
        op: &NewOperation<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let change = StateChange {
            from,
            to,
            owner: Owner::Nobody,
            operation: Some(op.id),
            reason: None,
            now: op.now,
        };
        let moved = swap_state(&mut tx, id, &change).await?;
        if !moved {
            return Ok(false);
        }
        self.insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    /// Ends a job that left the instance in `state` (with the domain's UUID once known).
    pub async fn finish_instance_job(
        &self,
        id: &str,
        op_id: &str,
        state: InstanceState,
        domain_uuid: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        end_job(&mut tx, id, op_id, state, None, now).await?;
        if let Some(uuid) = domain_uuid {
            crate::db::query("UPDATE instances SET domain_uuid = $1 WHERE id = $2")
                .bind(uuid)
                .bind(id)
                .execute(&mut tx)
                .await?;
        }
        add_step(&mut tx, op_id, &format!("instance now {state}"), now).await?;
        self.finish_operation(&mut tx, op_id, None, now).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// Ends a failed job: the instance goes to `error` with `reason`; with `unplace`, its claim
    /// is given back too (a create that left nothing on the host).
    pub async fn fail_instance_job(
        &self,
        id: &str,
        op_id: &str,
        reason: &str,
        unplace: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let released = if unplace {
            let released = release_claim(&mut tx, id).await?;
            crate::db::query("UPDATE instances SET domain_uuid = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
            released
        } else {
            None
        };
        end_job(&mut tx, id, op_id, InstanceState::Error, Some(reason), now).await?;
        self.finish_operation(&mut tx, op_id, Some(reason), now)
            .await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, c, m)) = released {
            self.set_allocation(&host, c, m);
        }
        Ok(())
    }

    /// Removes a deleted instance and gives its claim back, ending the delete operation.
    pub async fn remove_instance(&self, id: &str, op_id: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let released = release_claim(&mut tx, id).await?;
        release_quota(&mut tx, id).await?;
        state::record_removed(&mut tx, id).await?;
        crate::db::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        add_step(&mut tx, op_id, "instance deleted", now).await?;
        self.finish_operation(&mut tx, op_id, None, now).await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, c, m)) = released {
            self.set_allocation(&host, c, m);
        }
        Ok(())
    }

    /// Every instance placed on `host`, by name.
    pub async fn instances_on_host(&self, host: &str) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = crate::db::query(&format!(
            "SELECT {COLUMNS} {FROM} WHERE i.host_id = $1 ORDER BY i.name, i.id"
        ))
        .bind(host)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        let row = crate::db::query(&format!("SELECT {COLUMNS} {FROM} WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Instances some job owns (`operation_id` set), with that operation's kind: what a
    /// restarted coordinator resumes.
    pub async fn instances_in_jobs(&self) -> Result<Vec<(InstanceRecord, String)>, StoreError> {
        let rows = crate::db::query(&format!(
            "SELECT {COLUMNS}, o.kind AS op_kind {FROM} JOIN operations o ON o.id = i.operation_id \
             WHERE o.status = $1 AND COALESCE(o.epoch, -1) <> $2"
        ))
        .bind(crate::jobs::operations::status_name(
            OperationStatus::Running,
        ))
        .bind(crate::jobs::term_epoch())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((record(r)?, r.try_get("op_kind")?)))
            .collect()
    }

    /// A page of instances (newest first, with their (created_at, id) places) and how many
    /// match the filter in all.
    pub async fn list_instances(
        &self,
        f: &InstanceFilter,
    ) -> Result<(Vec<Keyed<i64, Instance>>, u64), StoreError> {
        let mut query = QueryBuilder::new("");
        let push_filters = |query: &mut QueryBuilder<'_>| {
            query.push(" WHERE 1 = 1");
            if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
                query
                    .push(" AND i.search_text LIKE ")
                    .push_bind(like_pattern(q))
                    .push(" ESCAPE '\\'");
            }
            if let Some(t) = &f.tenant {
                query.push(" AND i.tenant_id = ").push_bind(t.clone());
            }
            if let Some(h) = &f.host {
                query.push(" AND i.host_id = ").push_bind(h.clone());
            }
            if let Some(s) = f.state {
                query.push(" AND i.state = ").push_bind(s.as_str());
            }
        };
        query.push(format!("SELECT COUNT(*) AS n {FROM}"));
        push_filters(&mut query);
        let total: i64 = query.build().fetch_one(self.pool()).await?.try_get("n")?;
        let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} {FROM}"));
        push_filters(&mut query);
        let (key, id) = ("i.created_at", "i.id");
        push_after(&mut query, key, id, Order::Desc, f.after.as_ref());
        push_order(&mut query, key, id, Order::Desc, f.limit);
        let rows = query.build().fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(|r| {
                let inst = record(r)?.instance;
                Ok(((r.try_get("created_at")?, inst.id.clone()), inst))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total as u64))
    }

    /// Compares what a host's agent reported with the settled instances placed there and
    /// proposes changes (nothing is applied: a report may be older than a job that just ended,
    /// so the caller confirms each with the agent and applies it with `apply_reconciled`).
    /// Instances a job owns, or that changed after `settled_before`, are left alone. Records
    /// and returns the domains no instance accounts for.
    pub async fn reconcile_host(
        &self,
        host: &str,
        domains: &[plinth_common::api::Domain],
        settled_before: i64,
    ) -> Result<(Vec<Reconciled>, Vec<String>), StoreError> {
        // An instance migrating here is known too (its domain arrives before the move ends).
        let rows = crate::db::query(
            "SELECT id, state, operation_id, updated_at FROM instances \
             WHERE host_id = $1 OR migrating_to = $1",
        )
        .bind(host)
        .fetch_all(self.pool())
        .await?;
        let mut proposed = Vec::new();
        let mut known = std::collections::HashSet::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let state = parse_state(row.try_get("state")?)?;
            known.insert(id.clone());
            if !state.is_settled()
                || row.try_get::<Option<String>, _>("operation_id")?.is_some()
                || row.try_get::<i64, _>("updated_at")? > settled_before
            {
                continue;
            }
            let name = plinth_common::instance::domain_name(&id);
            let domain = domains.iter().find(|d| d.name == name);
            let Some((to, reason)) = observed(domain.map(|d| d.state.as_str())) else {
                continue;
            };
            // An instance already in error keeps the reason its job gave.
            if to != state {
                proposed.push(Reconciled {
                    instance_id: id,
                    from: state,
                    to,
                    reason,
                });
            }
        }
        let unknown: Vec<String> = domains
            .iter()
            .filter(|d| !known.contains(&d.name))
            .map(|d| d.name.clone())
            .collect();
        let json = serde_json::to_string(&unknown)
            .map_err(|e| StoreError::Corrupt(format!("unknown domains: {e}")))?;
        // Every beat runs this: write only when the list changed.
        crate::db::query(
            "UPDATE hosts SET unknown_domains_json = $1 WHERE id = $2 AND unknown_domains_json <> $1",
        )
        .bind(json)
        .bind(host)
        .execute(self.pool())
        .await?;
        Ok((proposed, unknown))
    }

    /// Applies a confirmed reconciliation if the instance is still settled in `from` and no
    /// job took it meanwhile; whether it did.
    pub async fn apply_reconciled(&self, c: &Reconciled, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let change = StateChange {
            from: c.from,
            to: c.to,
            owner: Owner::Nobody,
            operation: None,
            reason: c.reason.as_deref(),
            now,
        };
        let done = swap_state(&mut tx, &c.instance_id, &change).await?;
        tx.commit().await?;
        if done {
            self.events_committed();
        }
        Ok(done)
    }

    /// The instance's host's agent endpoint, when it is placed.
    pub async fn instance_host(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = crate::db::query("SELECT host_id FROM instances WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("host_id")).transpose()?.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::hosts::store::NewHost;
    use plinth_common::api::{Quota, QuotaUsage};

    const GIB: u64 = 1 << 30;

    /// A store with one (newly enrolled, so available) 4-core, 4 GiB host, a tenant and an image row.
    async fn setup(store: &Store) -> Result<(), StoreError> {
        store.create_cluster("az1", "").await?;
        let h = NewHost {
            id: "host-000000000001",
            ip: "10.0.0.1",
            hostname: "hv1",
            cluster_id: "az1",
            cert_expires_at: 0,
            now: 1,
        };
        store.insert_host_with_facts(&h, "cpu", 4, 4 * GIB).await?;
        store.create_tenant("ten-000000000001", "a@x", "A").await?;
        crate::db::test_image(store, "img-000000000001").await?;
        Ok(())
    }

    async fn claim(
        store: &Store,
        n: usize,
        memory: u64,
    ) -> Result<Result<(), ClaimRefused>, StoreError> {
        let (id, op_id) = (format!("inst-{n:012}"), format!("op-{n:012}"));
        let row = NewInstanceRow {
            id: &id,
            name: "vm",
            kind: InstanceKind::Vm,
            tenant_id: "ten-000000000001",
            tenant_email: "a@x",
            image_id: "img-000000000001",
            vcpus: 1,
            memory_bytes: memory,
            disk_bytes: GIB,
            gpu_type: None,
            admin_password_sealed: "sealed",
            eips: &[],
        };
        let op = NewOperation {
            id: &op_id,
            kind: "instance_create",
            target_id: &id,
            owner_tenant_id: None,
            now: 3,
        };
        let oc = Overcommit {
            cpu: 2.0,
            memory: 1.0,
        };
        store
            .create_instance(&row, "host-000000000001", oc, &op)
            .await
    }

    crate::db::store_test! {
    async fn concurrent_claims_never_overcommit(store, dir) -> Result<(), StoreError> {
        setup(&store).await?;
        // Two stores on one database, as two coordinators would be: only SQLite's conditional
        // update stands between them (each store also queues its own claims).
        let other = Store::open(&dir.path().join("test.db")).await?;
        // 4 cores x 2.0 = 8 claims of one vCPU fit; 20 race for them.
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let store = if n % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move { claim(&store, n, 64 << 20).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.map_err(|e| StoreError::Corrupt(e.to_string()))?? {
                Ok(()) => won += 1,
                Err(refused) => assert_eq!(refused, ClaimRefused::HostFull),
            }
        }
        assert_eq!(won, 8);
        let (items, total) = store
            .list_instances(&InstanceFilter {
                limit: 100,
                ..Default::default()
            })
            .await?;
        assert_eq!((items.len(), total), (8, 8));
        // The table, not either store's in-memory index (each knows only its own claims).
        let row = crate::db::query("SELECT allocated_cores, allocated_memory_bytes FROM hosts")
            .fetch_one(store.pool())
            .await?;
        assert_eq!(row.try_get::<i64, _>("allocated_cores")?, 8);
        assert_eq!(
            row.try_get::<i64, _>("allocated_memory_bytes")?,
            8 * (64 << 20)
        );
        Ok(())
    }
    }

    crate::db::store_test! {
    async fn quota_refusal_and_release_leave_no_claim(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        store
            .set_quota(
                "ten-000000000001",
                &Quota {
                    memory_bytes: Some(GIB),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(claim(&store, 1, GIB).await?, Ok(()));
        match claim(&store, 2, 64 << 20).await? {
            Err(ClaimRefused::Quota(q)) => assert_eq!(q.resource, "memory_bytes"),
            other => panic!("expected a quota refusal, got {other:?}"),
        }
        let c = &store.placement_candidates(0)[0];
        assert_eq!((c.allocated_cores, c.allocated_memory_bytes), (1, GIB));
        // A failed create gives the claim back and unplaces the instance.
        store
            .fail_instance_job("inst-000000000001", "op-000000000001", "boom", true, 4)
            .await?;
        let rec = store
            .instance("inst-000000000001")
            .await?
            .expect("instance");
        assert_eq!(rec.instance.state, InstanceState::Error);
        assert_eq!(rec.instance.host_id, None);
        let c = &store.placement_candidates(0)[0];
        assert_eq!((c.allocated_cores, c.allocated_memory_bytes), (0, 0));
        let row = crate::db::query("SELECT allocated_cores FROM hosts")
            .fetch_one(store.pool())
            .await?;
        assert_eq!(row.try_get::<i64, _>("allocated_cores")?, 0);
        Ok(())
    }
    }

    crate::db::store_test! {
    /// The tenant's usage counters move with every instance written and removed, refused
    /// claims change nothing, and they always equal the sum over the tenant's instances.
    async fn quota_usage_follows_instances(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        let tenant = "ten-000000000001";
        let summed = || async {
            let row = crate::db::query(
                "SELECT CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
                    CAST(COALESCE(SUM(memory_bytes), 0) AS BIGINT) AS m, \
                    COUNT(*) AS n FROM instances WHERE tenant_id = $1",
            )
            .bind(tenant)
            .fetch_one(store.pool())
            .await?;
            Ok::<_, StoreError>(QuotaUsage {
                cores: row.try_get::<i64, _>("c")? as u64,
                memory_bytes: row.try_get::<i64, _>("m")? as u64,
                instances: row.try_get::<i64, _>("n")? as u64,
            })
        };
        // No row yet: no limits, nothing held.
        assert_eq!(store.quota(tenant).await?, Default::default());
        for n in 1..=3 {
            assert_eq!(claim(&store, n, GIB / 4).await?, Ok(()));
        }
        let (_, usage) = store.quota(tenant).await?;
        assert_eq!(usage, summed().await?);
        assert_eq!(
            (usage.cores, usage.memory_bytes, usage.instances),
            (3, 3 * GIB / 4, 3)
        );

        // A limit that the next claim would cross: refused, counters unchanged.
        let limit = Quota {
            instances: Some(3),
            ..Default::default()
        };
        store.set_quota(tenant, &limit).await?;
        match claim(&store, 4, GIB / 4).await? {
            Err(ClaimRefused::Quota(q)) => {
                assert_eq!(
                    (q.resource, q.limit, q.used, q.asked),
                    ("instances", 3, 3, 1)
                )
            }
            other => panic!("expected a quota refusal, got {other:?}"),
        }
        assert_eq!(store.quota(tenant).await?, (limit, summed().await?));

        store
            .remove_instance("inst-000000000002", "op-000000000002", 5)
            .await?;
        let (_, usage) = store.quota(tenant).await?;
        assert_eq!(usage, summed().await?);
        assert_eq!((usage.cores, usage.instances), (2, 2));
        assert_eq!(claim(&store, 5, GIB / 4).await?, Ok(()));
        assert_eq!(store.quota(tenant).await?.1.instances, 3);
        Ok(())
    }
    }

    async fn created_at(store: &Store, n: usize, at: i64) -> Result<(), StoreError> {
        crate::db::query("UPDATE instances SET created_at = $1 WHERE id = $2")
            .bind(at)
            .bind(format!("inst-{n:012}"))
            .execute(store.pool())
            .await?;
        Ok(())
    }

    crate::db::store_test! {
    /// Newest first, ties by id: instances created between two pages, before or after the
    /// cursor (one at the cursor's very time), are neither repeated nor skipped.
    async fn pages_follow_the_cursor_through_inserts_and_filters(store, _dir) -> Result<(), StoreError> {
        setup(&store).await?;
        for (n, at) in [(1, 100), (2, 200), (3, 200), (4, 50)] {
            assert_eq!(claim(&store, n, 64 << 20).await?, Ok(()));
            created_at(&store, n, at).await?;
        }
        let read = |limit, after| {
            let filter = InstanceFilter {
                limit,
                after,
                ..Default::default()
            };
            let store = &store;
            async move { store.list_instances(&filter).await }
        };
        let between = || async {
            for (n, at) in [(5, 300), (6, 200)] {
                assert_eq!(claim(&store, n, 64 << 20).await?, Ok(()));
                created_at(&store, n, at).await?;
            }
            Ok(())
        };
        let (places, total) = crate::db::test_walk(read, between, crate::db::test_desc).await?;
        let ids: Vec<&str> = places.iter().map(|(_, id)| &id[id.len() - 1..]).collect();
        assert_eq!(ids, ["2", "3", "6", "1", "4"], "5 came before the cursor");
        assert_eq!(total, 6);

        // A filter with a cursor: the page is what matches after it, the total all that match.
        for n in [1, 4] {
            let op = format!("op-{n:012}");
            store
                .fail_instance_job(&format!("inst-{n:012}"), &op, "boom", true, 4)
                .await?;
        }
        let failed = InstanceFilter {
            state: Some(InstanceState::Error),
            limit: 5,
            after: Some((100, "inst-000000000001".into())),
            ..Default::default()
        };
        let (rows, total) = store.list_instances(&failed).await?;
        let ids: Vec<&str> = rows.iter().map(|(_, i)| i.id.as_str()).collect();
        assert_eq!((ids, total), (vec!["inst-000000000004"], 2));
        Ok(())
    }
    }
}
