//! Maintenance (SPEC §2): enter (a durable drain, jobs/drain.rs), exit, the current or last
//! drain's report, a dry-run plan; and a manual live migration of one instance. Admins only.

use crate::hosts::api::{check_host_id, transition};
use crate::http::auth::Admin;
use crate::http::error::{ApiError, ApiJson, ApiOptionalJson, ApiPath, ApiResult};
use crate::jobs::operations::NewOperation;
use crate::maintenance::drain::{self, DRAIN, MIGRATE, plan_action};
use crate::maintenance::migrate::{self, Claim, claim_target};
use crate::maintenance::store::{DrainRecord, NewMove};
use crate::scheduler::{self, Candidate};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{
    Drain, DrainPlan, EnterMaintenance, ErrorBody, Host, Instance, MigrateInstance, MoveAction,
    MoveItem, MoveStatus, PlanItem,
};
use plinth_common::host::{HostEvent, HostState};
use plinth_common::ids::new_id;
use plinth_common::timefmt::{now_ms, rfc3339};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/hosts/{id}/maintenance", get(status))
        .route("/v1/hosts/{id}/maintenance/plan", get(plan))
        .route("/v1/hosts/{id}/maintenance/enter", post(enter))
        .route("/v1/hosts/{id}/maintenance/exit", post(exit))
        .route("/v1/instances/{id}/migrate", post(migrate))
        .route("/v1/instances/{id}/migration", get(migration))
}

const MAX_PARALLELISM: u32 = 64;

async fn host(st: &AppState, id: &str) -> ApiResult<Host> {
    check_host_id(id)?;
    Ok(st
        .store
        .get_host(id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("host", id))?
        .host)
}

/// The drain's report, with the live progress of what is migrating.
async fn report(st: &AppState, d: DrainRecord) -> ApiResult<Drain> {
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

/// The host's current or last drain: per instance its target, state, attempts, timings, and
/// why it stayed.
#[utoipa::path(get, path = "/v1/hosts/{id}/maintenance", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Drain), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Drain>> {
    host(&st, &id).await?;
    let d = st
        .store
        .latest_drain(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("drain of host", &id))?;
    Ok(ApiJson(report(&st, d).await?))
}

/// A dry run of entering maintenance: for each instance whether it can move, how many hosts
/// could take it, what blocks it, and whether the cluster has room for all of them.
#[utoipa::path(get, path = "/v1/hosts/{id}/maintenance/plan", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = DrainPlan), (status = 404, body = ErrorBody)))]
pub async fn plan(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<DrainPlan>> {
    let host = host(&st, &id).await?;
    let instances = st.store.instances_on_host(&id).await?;
    let oc = st.settings.overcommit;
    let mut hosts: Vec<Candidate> = st.store.placement_candidates(now_ms());
    let mut items = Vec::new();
    let mut fits = true;
    for rec in &instances {
        let inst = &rec.instance;
        let (action, reason) = plan_action(inst);
        let mut item = PlanItem {
            instance_id: inst.id.clone(),
            instance_name: inst.name.clone(),
            state: inst.state,
            vcpus: inst.vcpus,
            memory_bytes: inst.memory_bytes,
            action,
            suitable_targets: 0,
            blocked_by: reason,
        };
        if action == MoveAction::Migrate {
            let req = migrate::move_request(inst, &host.cluster_id, &host.id);
            let (suitable, rejected) = scheduler::filter(&hosts, &req, oc);
            item.suitable_targets = suitable.len() as u32;
            if suitable.is_empty() {
                item.blocked_by = Some(scheduler::explain(hosts.len(), &rejected));
            }
            // All at once: each takes room the next cannot use (first fit, in name order).
            let first = suitable.first().map(|h| h.host_id.clone());
            match first.and_then(|h| hosts.iter_mut().find(|c| c.host_id == h)) {
                Some(target) => {
                    target.allocated_cores += inst.vcpus;
                    target.allocated_memory_bytes += inst.memory_bytes;
                }
                None => fits = false,
            }
        }
        items.push(item);
    }
    let count = |a: MoveAction| items.iter().filter(|i| i.action == a).count() as u32;
    Ok(ApiJson(DrainPlan {
        host_id: id,
        host_state: host.state,
        cluster_id: host.cluster_id,
        fits,
        to_migrate: count(MoveAction::Migrate),
        to_release: count(MoveAction::Release),
        blocked: items.iter().filter(|i| i.blocked_by.is_some()).count() as u32,
        items,
    }))
}

/// Enter maintenance: the host (which must be `locked`) goes to `entering_maintenance` and a
/// drain moves its instances off; follow it with `GET /v1/hosts/{id}/maintenance`.
#[utoipa::path(post, path = "/v1/hosts/{id}/maintenance/enter", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    request_body(content = EnterMaintenance, content_type = "application/json"),
    responses((status = 202, body = Drain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enter(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiOptionalJson(req): ApiOptionalJson<EnterMaintenance>,
) -> ApiResult<(StatusCode, ApiJson<Drain>)> {
    let parallelism = req.parallelism.unwrap_or(st.settings.drains.parallelism);
    if !(1..=MAX_PARALLELISM).contains(&parallelism) {
        return Err(ApiError::field(
            "parallelism",
            format!("must be 1-{MAX_PARALLELISM}, got {parallelism}"),
        ));
    }
    let host = host(&st, &id).await?;
    host.state
        .transition(HostEvent::EnterMaintenance)
        .map_err(|err| ApiError::InvalidTransition {
            id: id.clone(),
            err,
        })?;
    let moves: Vec<NewMove> = st
        .store
        .instances_on_host(&id)
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
        target_id: &id,
        owner_tenant_id: None,
        now: now_ms(),
    };
    if !st.store.begin_drain(&id, &op, parallelism, &moves).await? {
        let now = host_state(&st, &id).await?;
        return Err(ApiError::InvalidTransition {
            id,
            err: plinth_common::host::InvalidTransition {
                from: now,
                event: HostEvent::EnterMaintenance,
                needs: HostState::Locked,
            },
        });
    }
    st.store
        .audit(
            &admin.0.actor(),
            HostEvent::EnterMaintenance.as_str(),
            &id,
            &format!("{} instances, parallelism {parallelism}", moves.len()),
        )
        .await?;
    tracing::info!(host = %id, instances = moves.len(), parallelism, actor = %admin.0.actor(), "Drain started.");
    st.jobs
        .spawn("drain", drain::run(st.clone(), id.clone(), op_id.clone()));
    let d = st
        .store
        .latest_drain(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("drain of host", &id))?;
    Ok((StatusCode::ACCEPTED, ApiJson(report(&st, d).await?)))
}

async fn host_state(st: &AppState, id: &str) -> ApiResult<HostState> {
    Ok(host(st, id).await?.state)
}

/// Exit maintenance: `maintenance` → `locked` (unlock to take instances again).
#[utoipa::path(post, path = "/v1/hosts/{id}/maintenance/exit", params(("id" = String, Path, description = "host id")), tag = "hosts", security(("bearer" = [])),
    responses((status = 200, body = Host), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn exit(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Host>> {
    transition(&st, &admin, &id, HostEvent::ExitMaintenance)
        .await
        .map(ApiJson)
}

/// Live-migrate one running instance to `target_host` (same cluster) or to a host the
/// scheduler picks; follow it with `GET /v1/instances/{id}/migration`.
#[utoipa::path(post, path = "/v1/instances/{id}/migrate", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body(content = MigrateInstance, content_type = "application/json"),
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn migrate(
    State(st): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiOptionalJson(req): ApiOptionalJson<MigrateInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let inst = st
        .store
        .instance(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("instance", &id))?
        .instance;
    let source = inst.host_id.clone().ok_or_else(|| ApiError::Conflict {
        code: "invalid_instance_state",
        message: format!("instance {id} is not placed on a host"),
    })?;
    let (action, reason) = plan_action(&inst);
    if action != MoveAction::Migrate {
        return Err(ApiError::Conflict {
            code: "invalid_instance_state",
            message: format!(
                "instance {id} cannot be live-migrated: {}",
                reason.unwrap_or_else(|| format!("it is {}", inst.state))
            ),
        });
    }
    let source_host = host(&st, &source).await?;
    if let Some(target) = &req.target_host {
        if !plinth_common::ids::is_id("host", target) {
            return Err(ApiError::field(
                "target_host",
                format!("'{target}' is not a host id"),
            ));
        }
        if *target == source {
            return Err(ApiError::field(
                "target_host",
                format!("the instance already runs on {target}"),
            ));
        }
        let t = st
            .store
            .get_host(target, now_ms())
            .await?
            .ok_or_else(|| ApiError::field("target_host", format!("host {target} does not exist")))?
            .host;
        if t.cluster_id != source_host.cluster_id {
            return Err(ApiError::field(
                "target_host",
                format!(
                    "host {target} is in cluster {}; the instance's host is in {}",
                    t.cluster_id, source_host.cluster_id
                ),
            ));
        }
    }
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: MIGRATE,
        target_id: &id,
        owner_tenant_id: None,
        now: now_ms(),
    };
    let the_move = NewMove {
        instance_id: id.clone(),
        instance_name: inst.name.clone(),
        action: MoveAction::Migrate,
        reason: None,
    };
    st.store
        .begin_migration(&source, req.target_host.as_deref(), &op, &the_move)
        .await?;
    // The claim is taken before answering, so a target that cannot take it is a 409 now.
    let claimed = claim_target(
        &st,
        &op_id,
        &inst,
        &source_host.cluster_id,
        req.target_host.clone(),
        &[],
    )
    .await?;
    if let Claim::Refused(reason) = claimed {
        let now = now_ms();
        st.store.stay_move(&op_id, &id, &reason, now).await?;
        st.store.end_migration(&op_id, Some(&reason), now).await?;
        return Err(ApiError::Conflict {
            code: "no_suitable_host",
            message: reason,
        });
    }
    st.store
        .audit(
            &admin.0.actor(),
            "migrate",
            &id,
            req.target_host.as_deref().unwrap_or(""),
        )
        .await?;
    st.jobs
        .spawn("live migration", migrate::migrate(st.clone(), op_id, true));
    let inst = st
        .store
        .instance(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("instance", &id))?
        .instance;
    Ok((StatusCode::ACCEPTED, ApiJson(inst)))
}

/// The instance's latest move (a drain's or a manual migration's), with live progress.
#[utoipa::path(get, path = "/v1/instances/{id}/migration", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 200, body = MoveItem), (status = 404, body = ErrorBody)))]
pub async fn migration(
    State(st): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<MoveItem>> {
    let m = st
        .store
        .latest_move(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("migration of instance", &id))?;
    Ok(ApiJson(with_progress(&st, m.item)))
}
