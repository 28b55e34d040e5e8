//! Instances (SPEC §3): create (quota, placement, claim, then the agent), list and show,
//! start/stop/reboot, delete, and the per-host view. Tenants see and act on their own only.

pub mod export;
pub mod input;

use crate::db::StoreError;
use crate::http::auth::{Admin, Caller};
use crate::http::error::{ApiError, ApiJson, ApiOptionalJson, ApiPath, ApiQuery, ApiResult};
use crate::instances::api::input::{self as instance_input, CreatePlan};
use crate::instances::jobs as job;
use crate::instances::store::{ClaimRefused, InstanceFilter, InstanceRecord, NewInstanceRow};
use crate::jobs::operations::NewOperation;
use crate::scheduler::{self, Request};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use plinth_common::api::{ErrorBody, Instance, InstancePage, NewInstance, StopInstance};
use plinth_common::ids::new_id;
use plinth_common::instance::{
    DEFAULT_STOP_TIMEOUT_S, InstanceAction, InstanceState, MAX_STOP_TIMEOUT_S,
};
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/instances", post(create).get(list))
        .route("/v1/instances/{id}", get(show).delete(delete))
        .route("/v1/instances/{id}/start", post(start))
        .route("/v1/instances/{id}/stop", post(stop))
        .route("/v1/instances/{id}/reboot", post(reboot))
        .route("/v1/hosts/{id}/instances", get(host_instances))
}

/// How many hosts a create tries when the one it picked filled up meanwhile.
const CLAIM_ATTEMPTS: usize = 8;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Fuzzy match on name, id, tenant email and image id.
    pub q: Option<String>,
    /// Tenant id (admins only; a tenant always sees its own).
    pub tenant: Option<String>,
    pub host: Option<String>,
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// The instance if the caller may see it; a 404 otherwise (tenants learn nothing of others').
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> ApiResult<InstanceRecord> {
    st.store
        .instance(id)
        .await?
        .filter(|r| caller.tenant_id().is_none_or(|t| t == r.instance.tenant_id))
        .ok_or_else(|| ApiError::not_found("instance", id))
}

async fn reload(st: &AppState, id: &str) -> ApiResult<Instance> {
    Ok(st
        .store
        .instance(id)
        .await?
        .ok_or_else(|| ApiError::not_found("instance", id))?
        .instance)
}

/// Picks a host for `req` and lets `claim` take it; on a host that filled up between the read
/// and the claim, picks again without it.
async fn claim_somewhere<F, Fut>(st: &AppState, mut req: Request, mut claim: F) -> ApiResult<String>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Result<(), ClaimRefused>, StoreError>>,
{
    for _ in 0..CLAIM_ATTEMPTS {
        let host = choose(st, &req)?;
        match claim(host.clone()).await? {
            Ok(()) => return Ok(host),
            Err(ClaimRefused::HostFull) => req.exclude.push(host),
            Err(ClaimRefused::Moved) => {
                return Err(ApiError::Conflict {
                    code: "invalid_instance_state",
                    message: "the instance changed meanwhile".into(),
                });
            }
            Err(ClaimRefused::Quota(q)) => return Err(quota_error(q)),
        }
    }
    Err(no_host("every host tried filled up meanwhile; try again"))
}

fn quota_error(q: crate::instances::store::QuotaExceeded) -> ApiError {
    ApiError::Conflict {
        code: "quota_exceeded",
        message: q.to_string(),
    }
}

fn no_host(message: impl Into<String>) -> ApiError {
    ApiError::Conflict {
        code: "no_suitable_host",
        message: message.into(),
    }
}

/// One placement decision over the hosts as the store holds them now.
fn choose(st: &AppState, req: &Request) -> ApiResult<String> {
    let oc = st.settings.overcommit;
    st.store.with_placement(now_ms(), |hosts| {
        match scheduler::choose(hosts, req, st.settings.policy, oc, &mut rand::thread_rng()) {
            Some(host) => Ok(host.host_id.clone()),
            None => {
                // Only when nothing fits is the slower pass that says why worth its cost.
                let (_, rejected) = scheduler::filter(hosts, req, oc);
                Err(no_host(scheduler::explain(hosts.len(), &rejected)))
            }
        }
    })
}

/// Create an instance: checked, placed, claimed and recorded before this answers; the host's
/// agent builds it afterwards (follow `state` or the operation).
#[utoipa::path(post, path = "/v1/instances", tag = "instances", security(("bearer" = [])), request_body = NewInstance,
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let plan: CreatePlan = instance_input::check_new(&st, &caller, &req).await?;
    if let Err(q) = st
        .store
        .quota_allows(&plan.tenant_id, u64::from(req.vcpus), req.memory_bytes)
        .await?
    {
        return Err(quota_error(q));
    }
    let sealed = st
        .images
        .secrets
        .seal(&req.admin_password)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let (id, op_id, now) = (new_id("inst"), new_id("op"), now_ms());
    let row = NewInstanceRow {
        id: &id,
        name: &plan.name,
        kind: req.kind,
        tenant_id: &plan.tenant_id,
        tenant_email: &plan.tenant_email,
        image_id: &req.image_id,
        vcpus: req.vcpus,
        memory_bytes: req.memory_bytes,
        disk_bytes: plan.disk_bytes,
        gpu_type: req.gpu_type.as_deref(),
        admin_password_sealed: &sealed,
    };
    let op = NewOperation {
        id: &op_id,
        kind: job::CREATE,
        target_id: &id,
        owner_tenant_id: Some(&plan.tenant_id),
        now,
    };
    let placement = Request {
        cores: req.vcpus,
        memory_bytes: req.memory_bytes,
        cluster: req.cluster_id.clone(),
        gpu_type: req.gpu_type.clone(),
        exclude: Vec::new(),
    };
    let oc = st.settings.overcommit;
    let host = claim_somewhere(&st, placement, |host| {
        let (store, row, op) = (&st.store, &row, &op);
        async move {
            if let Err(refused) = store.create_instance(row, &host, oc, op).await? {
                return Ok(Err(refused));
            }
            gpu_or_undo(store, &host, row.id, row.gpu_type, || {
                store.discard_new_instance(row.id, op.id)
            })
            .await
        }
    })
    .await?;
    st.store
        .audit(
            &caller.actor(),
            "create instance",
            &id,
            &format!(
                "on host {host}, {} vCPUs, {} bytes",
                req.vcpus, req.memory_bytes
            ),
        )
        .await?;
    st.jobs.spawn(
        "instance create",
        job::create(st.clone(), id.clone(), op_id),
    );
    Ok((StatusCode::ACCEPTED, ApiJson(reload(&st, &id).await?)))
}

fn filter_from(q: ListQuery, caller: &Caller) -> ApiResult<InstanceFilter> {
    let state = q
        .state
        .as_deref()
        .map(|s| {
            InstanceState::parse(s).ok_or_else(|| {
                ApiError::field("state", format!("must be {}", InstanceState::choices()))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1-1000"));
    }
    let tenant = caller.list_scope(q.tenant, "instances")?;
    Ok(InstanceFilter {
        q: q.q,
        tenant,
        host: q.host,
        state,
        limit,
        offset: q.offset.unwrap_or(0),
    })
}

/// List instances; tenants see only theirs.
#[utoipa::path(get, path = "/v1/instances", tag = "instances", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = InstancePage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<InstancePage>> {
    let filter = filter_from(q, &caller)?;
    let (items, total) = st.store.list_instances(&filter).await?;
    Ok(ApiJson(InstancePage { items, total }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostInstancesQuery {
    /// Fuzzy match on name, id, tenant email and image id.
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// The instances on one host (admins).
#[utoipa::path(get, path = "/v1/hosts/{id}/instances", tag = "hosts", security(("bearer" = [])), params(("id" = String, Path, description = "host id"), HostInstancesQuery),
    responses((status = 200, body = InstancePage), (status = 404, body = ErrorBody)))]
pub async fn host_instances(
    State(st): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HostInstancesQuery>,
) -> ApiResult<ApiJson<InstancePage>> {
    if st.store.get_host(&id, now_ms()).await?.is_none() {
        return Err(ApiError::not_found("host", &id));
    }
    let filter = filter_from(
        ListQuery {
            q: q.q,
            tenant: None,
            host: Some(id),
            state: None,
            limit: q.limit,
            offset: q.offset,
        },
        &caller,
    )?;
    let (items, total) = st.store.list_instances(&filter).await?;
    Ok(ApiJson(InstancePage { items, total }))
}

#[utoipa::path(get, path = "/v1/instances/{id}", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Instance>> {
    Ok(ApiJson(find(&st, &caller, &id).await?.instance))
}

fn wrong_state(id: &str, state: InstanceState, what: &str) -> ApiError {
    ApiError::Conflict {
        code: "invalid_instance_state",
        message: format!("instance {id} is {state}; {what}"),
    }
}

/// Moves the instance into the action's state and starts its job. An unplaced instance being
/// started is placed anew first.
async fn act(
    st: &AppState,
    caller: &Caller,
    id: &str,
    action: InstanceAction,
    stop_timeout_s: u64,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let rec = find(st, caller, id).await?;
    let inst = &rec.instance;
    let Some(to) = inst.state.begin(action) else {
        return Err(wrong_state(
            id,
            inst.state,
            &format!("{action} needs another state"),
        ));
    };
    let op_id = begin_job(
        st,
        caller,
        inst,
        job::action_kind(action),
        to,
        &format!("{action} instance"),
    )
    .await?;
    st.jobs.spawn(
        "instance action",
        job::action(st.clone(), id.to_string(), op_id, action, stop_timeout_s),
    );
    Ok((StatusCode::ACCEPTED, ApiJson(reload(st, id).await?)))
}

/// Writes the job's operation and moves the instance into `to`, conditional on the state it
/// was read in; an unplaced instance being started is placed anew first. Audits it and returns
/// the operation id.
async fn begin_job(
    st: &AppState,
    caller: &Caller,
    inst: &Instance,
    kind: &'static str,
    to: InstanceState,
    what: &str,
) -> ApiResult<String> {
    let (op_id, now) = (new_id("op"), now_ms());
    let op = NewOperation {
        id: &op_id,
        kind,
        target_id: &inst.id,
        owner_tenant_id: Some(&inst.tenant_id),
        now,
    };
    match (&inst.host_id, to) {
        (None, InstanceState::Starting) => place_existing(st, inst, to, &op).await?,
        // Nothing on a host to stop or reboot; only a start (or a delete) applies.
        (None, InstanceState::Stopping | InstanceState::Rebooting) => {
            return Err(wrong_state(
                &inst.id,
                inst.state,
                "it is not placed on a host",
            ));
        }
        _ => {
            if !st
                .store
                .begin_instance_job(&inst.id, inst.state, to, &op)
                .await?
            {
                let now_state = reload(st, &inst.id).await?.state;
                return Err(wrong_state(&inst.id, now_state, "it changed meanwhile"));
            }
        }
    }
    st.store.audit(&caller.actor(), what, &inst.id, "").await?;
    Ok(op_id)
}

/// Places an instance that has no host (it was stopped on a drained host, or its create
/// failed): a new host is chosen and claimed as for a create.
async fn place_existing(
    st: &AppState,
    inst: &Instance,
    to: InstanceState,
    op: &NewOperation<'_>,
) -> ApiResult<()> {
    let req = Request {
        cores: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        cluster: None,
        gpu_type: inst.gpu_type.clone(),
        exclude: Vec::new(),
    };
    let oc = st.settings.overcommit;
    claim_somewhere(st, req, |host| {
        let (store, id) = (&st.store, &inst.id);
        async move {
            if let Err(refused) = store.place_instance(id, &host, oc, to, op).await? {
                return Ok(Err(refused));
            }
            gpu_or_undo(store, &host, id, inst.gpu_type.as_deref(), || {
                store.undo_placement(id, op.id, inst.state, now_ms())
            })
            .await
        }
    })
    .await?;
    Ok(())
}

/// After a claim on `host`: the instance's vGPU or GPU, when it asked for one. When the last
/// free one went to another instance meanwhile, the claim is undone and the host counts as
/// full, so the next host is tried.
async fn gpu_or_undo<Fut>(
    store: &crate::db::Store,
    host: &str,
    id: &str,
    gpu_type: Option<&str>,
    undo: impl FnOnce() -> Fut,
) -> Result<Result<(), ClaimRefused>, StoreError>
where
    Fut: Future<Output = Result<(), StoreError>>,
{
    let Some(gpu_type) = gpu_type else {
        return Ok(Ok(()));
    };
    match store.claim_gpu(host, id, gpu_type, now_ms()).await? {
        Some(device) => {
            tracing::info!(instance = %id, host = %host, device = %device, "GPU claimed.");
            Ok(Ok(()))
        }
        None => {
            undo().await?;
            Ok(Err(ClaimRefused::HostFull))
        }
    }
}

#[utoipa::path(post, path = "/v1/instances/{id}/start", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    act(
        &st,
        &caller,
        &id,
        InstanceAction::Start,
        DEFAULT_STOP_TIMEOUT_S,
    )
    .await
}

/// Stop: the guest is asked to shut down and forced off after `timeout_s` (default 60).
#[utoipa::path(post, path = "/v1/instances/{id}/stop", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body(content = StopInstance, content_type = "application/json"),
    responses((status = 202, body = Instance), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiOptionalJson(req): ApiOptionalJson<StopInstance>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let timeout = req.timeout_s.unwrap_or(DEFAULT_STOP_TIMEOUT_S);
    if timeout > MAX_STOP_TIMEOUT_S {
        return Err(ApiError::field(
            "timeout_s",
            format!("must be at most {MAX_STOP_TIMEOUT_S}"),
        ));
    }
    act(&st, &caller, &id, InstanceAction::Stop, timeout).await
}

#[utoipa::path(post, path = "/v1/instances/{id}/reboot", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reboot(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    act(
        &st,
        &caller,
        &id,
        InstanceAction::Reboot,
        DEFAULT_STOP_TIMEOUT_S,
    )
    .await
}

/// Delete: the domain is undefined and the disk removed on the host, then the instance and its
/// claim go. Allowed in a settled state (running, stopped, error).
#[utoipa::path(delete, path = "/v1/instances/{id}", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    responses((status = 202, body = Instance), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, ApiJson<Instance>)> {
    let rec = find(&st, &caller, &id).await?;
    let inst = &rec.instance;
    if !inst.state.may_delete() {
        return Err(wrong_state(&id, inst.state, "wait until its job ends"));
    }
    let op_id = begin_job(
        &st,
        &caller,
        inst,
        job::DELETE,
        InstanceState::Deleting,
        "delete instance",
    )
    .await?;
    let deleting = reload(&st, &id).await?;
    st.jobs
        .spawn("instance delete", job::delete(st.clone(), id, op_id));
    Ok((StatusCode::ACCEPTED, ApiJson(deleting)))
}
