//! Maintenance: drains (entering maintenance) and the live migrations they and admins start.
//! The operations here are the only code that starts a drain or a migration; the host's own
//! state changes go through the hosts' transition (`Store::transition_host`). The drain job is
//! in `drain`, one live migration in `migrate`, the verdict after one in `verdict`, and the
//! migrations in flight (progress, per-cluster slots) in `moves`.

pub mod api;
pub mod drain;
pub mod error;
pub mod migrate;
pub mod moves;
pub mod store;
pub mod verdict;

pub use error::MaintenanceError;
pub use moves::Moves;

use crate::jobs::operations::NewOperation;
use crate::maintenance::drain::{DRAIN, MIGRATE, plan_action};
use crate::maintenance::migrate::{Claim, claim_target, move_request};
use crate::maintenance::store::{DrainRecord, NewMove};
use crate::scheduler::{self, Candidate, Overcommit};
use crate::state::AppState;
use plinth_common::api::{
    Drain, DrainPlan, Host, Instance, MoveAction, MoveItem, MoveStatus, PlanItem,
};
use plinth_common::host::{HostEvent, HostState};
use plinth_common::ids::{HostId, InstanceId, new_id};
use plinth_common::timefmt::{now_ms, rfc3339};
use std::time::Duration;

type Result<T> = std::result::Result<T, MaintenanceError>;

/// How drains and migrations run: the coordinator's configuration for all of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainSettings {
    /// Migrations at once out of one host.
    pub parallelism: u32,
    /// Migrations at once within one cluster, all drains together.
    pub cluster_parallelism: u32,
    pub migration_timeout: Duration,
    /// Attempts per instance before a drain leaves it.
    pub attempts: u32,
    pub bandwidth_mib_s: Option<u64>,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            parallelism: 2,
            cluster_parallelism: 8,
            migration_timeout: Duration::from_secs(600),
            attempts: 3,
            bandwidth_mib_s: None,
        }
    }
}

async fn host(st: &AppState, id: &str) -> Result<Host> {
    Ok(st
        .store
        .get_host(id, now_ms())
        .await?
        .ok_or_else(|| MaintenanceError::HostNotFound(id.to_string()))?
        .host)
}

async fn instance(st: &AppState, id: &str) -> Result<Instance> {
    Ok(st
        .store
        .instance(id)
        .await?
        .ok_or_else(|| MaintenanceError::InstanceNotFound(id.to_string()))?
        .instance)
}

/// Applies a host `event` a drain causes, through the hosts' own transition.
pub(crate) async fn host_event(st: &AppState, id: &str, event: HostEvent) -> Result<HostState> {
    st.store
        .transition_host(id, event, now_ms())
        .await
        .map(|h| h.state)
        .map_err(|e| MaintenanceError::host(id, e))
}

/// The drain's report, with the live progress of what is migrating.
async fn report(st: &AppState, d: DrainRecord) -> Result<Drain> {
    let host = host(st, &d.host_id).await?;
    let items: Vec<MoveItem> = st
        .store
        .moves(&d.operation_id)
        .await?
        .into_iter()
        .map(|m| with_progress(st, m.item))
        .collect();
    let count = |s: MoveStatus| items.iter().filter(|i| i.status == s).count() as u32;
    Ok(Drain {
        operation_id: d.operation_id,
        host_id: d.host_id,
        host_state: host.state,
        status: d.status,
        parallelism: d.parallelism,
        started_at: rfc3339(d.started_at),
        ended_at: d.ended_at.map(rfc3339),
        moved: count(MoveStatus::Moved),
        released: count(MoveStatus::Released),
        stayed: count(MoveStatus::Stayed),
        left: count(MoveStatus::Pending) + count(MoveStatus::Migrating),
        items,
    })
}

fn with_progress(st: &AppState, mut item: MoveItem) -> MoveItem {
    if item.status == MoveStatus::Migrating {
        item.progress = st.moves.progress(&item.instance_id);
    }
    item
}

/// The host's current or last drain.
pub async fn status(st: &AppState, id: &HostId) -> Result<Drain> {
    host(st, id).await?;
    let d = st
        .store
        .latest_drain(id)
        .await?
        .ok_or_else(|| MaintenanceError::NoDrain(id.to_string()))?;
    report(st, d).await
}

/// The instance's latest move (a drain's or a manual migration's), with live progress.
pub async fn migration(st: &AppState, id: &InstanceId) -> Result<MoveItem> {
    let m = st
        .store
        .latest_move(id)
        .await?
        .ok_or_else(|| MaintenanceError::NoMigration(id.to_string()))?;
    Ok(with_progress(st, m.item))
}

/// A dry run of entering maintenance: for each instance whether it can move, how many hosts
/// could take it, what blocks it, and whether the cluster has room for all of them.
pub async fn plan(st: &AppState, id: &HostId) -> Result<DrainPlan> {
    let host = host(st, id).await?;
    let instances = st.store.instances_on_host(id).await?;
    let nics = st
        .store
        .instance_nics(crate::network::store::eips::InstancesOf::Host(id))
        .await?;
    let mut hosts: Vec<Candidate> = st.store.placement_candidates(now_ms());
    let mut fits = true;
    let items: Vec<PlanItem> = instances
        .iter()
        .map(|rec| {
            let inst = &rec.instance;
            let nics = nics.get(&inst.id).map_or(&[][..], Vec::as_slice);
            plan_item(
                st.settings.overcommit,
                (&host.cluster_id, &host.id),
                (inst, nics),
                &mut hosts,
                &mut fits,
            )
        })
        .collect();
    let count = |a: MoveAction| items.iter().filter(|i| i.action == a).count() as u32;
    Ok(DrainPlan {
        host_id: id.to_string(),
        host_state: host.state,
        cluster_id: host.cluster_id,
        fits,
        to_migrate: count(MoveAction::Migrate),
        to_release: count(MoveAction::Release),
        blocked: items.iter().filter(|i| i.blocked_by.is_some()).count() as u32,
        items,
    })
}

/// One instance of a plan. All instances move at once: each takes room on its first-fit
/// target (in name order) that the next cannot use; `fits` turns false when one finds none.
fn plan_item(
    oc: Overcommit,
    (cluster, source): (&str, &str),
    (inst, nics): (&Instance, &[String]),
    hosts: &mut [Candidate],
    fits: &mut bool,
) -> PlanItem {
    let (action, reason) = plan_action(inst);
    let mut item = PlanItem {
        instance_id: inst.id.clone(),
        instance_name: inst.name.clone(),
        state: inst.state,
        vcpus: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        action,
        suitable_targets: 0,
        targets: Vec::new(),
        blocked_by: reason,
    };
    if action != MoveAction::Migrate {
        return item;
    }
    let req = move_request(inst, nics, cluster, source);
    let (suitable, rejected) = scheduler::filter(hosts, &req, oc);
    item.suitable_targets = suitable.len() as u32;
    item.targets = suitable.iter().map(|h| h.host_id.clone()).collect();
    if suitable.is_empty() {
        item.blocked_by = Some(scheduler::explain(hosts.len(), &rejected));
    }
    let first = item.targets.first().cloned();
    match first.and_then(|h| hosts.iter_mut().find(|c| c.host_id == h)) {
        Some(target) => {
            target.allocated_cores += inst.vcpus;
            target.allocated_memory_bytes += inst.memory_bytes;
        }
        None => *fits = false,
    }
    item
}

/// Enters maintenance: the drain (its operation and a move per instance) is written, then the
/// host goes `locked` → `entering_maintenance` through its transition, and the drain job starts.
/// A host that left `locked` meanwhile gets no drain (the one written is discarded).
pub async fn enter(st: &AppState, actor: &str, id: &HostId, parallelism: u32) -> Result<Drain> {
    let host = host(st, id).await?;
    host.state
        .transition(HostEvent::EnterMaintenance)
        .map_err(|err| MaintenanceError::Host {
            id: id.to_string(),
            err,
        })?;
    let moves: Vec<NewMove> = st
        .store
        .instances_on_host(id)
        .await?
        .into_iter()
        .map(|rec| {
            let (action, reason) = plan_action(&rec.instance);
            NewMove {
                instance_id: rec.instance.id,
                instance_name: rec.instance.name,
                action,
                reason,
            }
        })
        .collect();
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: DRAIN,
        target_id: id,
        owner_tenant_id: None,
        now: now_ms(),
    };
    st.store.begin_drain(id, &op, parallelism, &moves).await?;
    if let Err(e) = host_event(st, id, HostEvent::EnterMaintenance).await {
        st.store.discard_drain(&op_id).await?;
        return Err(e);
    }
    let detail = format!("{} instances, parallelism {parallelism}", moves.len());
    let event = HostEvent::EnterMaintenance.as_str();
    st.store.audit(actor, event, id, &detail).await?;
    tracing::info!(host = %id, instances = moves.len(), parallelism, actor = %actor, "Drain started.");
    let job = drain::run(st.clone(), id.to_string(), op_id.clone());
    crate::jobs::lease::run(st, &op_id, "drain", job);
    status(st, id).await
}

/// Live-migrates one running instance to `target` (a host of its cluster) or to one the
/// scheduler picks. The target's claim is taken before this answers, so a target that cannot
/// take it is refused now; the migration job follows.
pub async fn migrate(
    st: &AppState,
    actor: &str,
    id: &InstanceId,
    target: Option<&HostId>,
) -> Result<Instance> {
    let inst = instance(st, id).await?;
    let source = inst
        .host_id
        .clone()
        .ok_or_else(|| MaintenanceError::NotPlaced(id.to_string()))?;
    let (action, reason) = plan_action(&inst);
    if action != MoveAction::Migrate {
        return Err(MaintenanceError::NotMigratable {
            id: id.to_string(),
            why: reason.unwrap_or_else(|| format!("it is {}", inst.state)),
        });
    }
    let source_host = host(st, &source).await?;
    if let Some(target) = target {
        check_target(st, &source_host, target, id).await?;
    }
    let target = target.map(|t| t.to_string());
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: MIGRATE,
        target_id: id,
        owner_tenant_id: None,
        now: now_ms(),
    };
    let the_move = NewMove {
        instance_id: id.to_string(),
        instance_name: inst.name.clone(),
        action: MoveAction::Migrate,
        reason: None,
    };
    st.store
        .begin_migration(&source, target.as_deref(), &op, &the_move)
        .await?;
    let cluster = &source_host.cluster_id;
    let claimed = claim_target(st, &op_id, &inst, cluster, target.clone(), &[]).await?;
    if let Claim::Refused(reason) = claimed {
        let now = now_ms();
        st.store.stay_move(&op_id, id, &reason, now).await?;
        st.store.end_migration(&op_id, Some(&reason), now).await?;
        return Err(MaintenanceError::NoHost(reason));
    }
    let detail = target.as_deref().unwrap_or("");
    st.store.audit(actor, "migrate", id, detail).await?;
    let job = migrate::migrate(st.clone(), op_id.clone(), true);
    crate::jobs::lease::run(st, &op_id, "live migration", job);
    instance(st, id).await
}

/// A named migration target must be another host of the source's cluster, with the NICs of
/// the instance's EIPs' segments.
async fn check_target(st: &AppState, source: &Host, target: &HostId, id: &str) -> Result<()> {
    if **target == *source.id {
        return Err(MaintenanceError::Target(format!(
            "the instance already runs on {target}"
        )));
    }
    let t = st
        .store
        .get_host(target, now_ms())
        .await?
        .ok_or_else(|| MaintenanceError::Target(format!("host {target} does not exist")))?
        .host;
    if t.cluster_id != source.cluster_id {
        return Err(MaintenanceError::Target(format!(
            "host {target} is in cluster {}; the instance's host is in {}",
            t.cluster_id, source.cluster_id
        )));
    }
    let needs = crate::instances::lifecycle::instance_nics(st, id).await?;
    let has = st.store.with_placement(now_ms(), |hosts| {
        hosts
            .iter()
            .find(|h| h.host_id == **target)
            .map(|h| h.nics.clone())
            .unwrap_or_default()
    });
    if let Some(nic) = needs.iter().find(|n| !plinth_common::api::has_nic(&has, n)) {
        return Err(MaintenanceError::Target(format!(
            "host {target} has no NIC {nic}, which the instance's EIPs are reached through"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::drain::tests::instance;
    use plinth_common::host::HostState;
    use plinth_common::instance::InstanceState;

    fn candidate(id: &str, used_cores: u32) -> Candidate {
        Candidate {
            host_id: id.into(),
            cluster_id: "az1".into(),
            state: HostState::Available,
            agent_online: true,
            total_cores: 8,
            allocated_cores: used_cores,
            total_memory_bytes: 64 << 30,
            allocated_memory_bytes: 0,
            free_gpus: vec![],
            nics: vec![],
        }
    }

    /// Each migrating instance names the hosts that could take it, after the ones planned
    /// before it took their room on their first target.
    #[test]
    fn a_plan_names_each_instance_s_targets() {
        let oc = Overcommit {
            cpu: 1.0,
            memory: 1.0,
        };
        let mut hosts = vec![
            candidate("host-b", 6),
            candidate("host-c", 0),
            candidate("host-a", 0),
        ];
        let vm = |vcpus: u32, state: InstanceState| Instance {
            vcpus,
            ..instance(state, None, &[], None)
        };
        let mut fits = true;
        let mut plan =
            |inst: Instance| plan_item(oc, ("az1", "host-a"), (&inst, &[]), &mut hosts, &mut fits);
        let first = plan(vm(2, InstanceState::Running));
        assert_eq!(
            first.targets,
            ["host-b", "host-c"],
            "the source is no target"
        );
        assert_eq!(first.suitable_targets, 2);
        let second = plan(vm(2, InstanceState::Running));
        assert_eq!(second.targets, ["host-c"], "the first filled host-b");
        let stopped = plan(vm(2, InstanceState::Stopped));
        assert_eq!(
            (stopped.action, stopped.targets.len()),
            (MoveAction::Release, 0)
        );
        let big = plan(vm(8, InstanceState::Running));
        assert!(
            big.targets.is_empty() && big.blocked_by.is_some(),
            "{big:?}"
        );
        assert!(!fits, "the big one finds no room");
    }
}
