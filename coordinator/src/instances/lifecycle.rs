//! The instance operations: create, the start/stop/reboot actions, delete and export. Each
//! checks the state table, moves the row with a compare-and-swap on the state it was read in,
//! audits it and starts the job; the handlers in `api` only parse and map.

use crate::db::{Store, StoreError};
use crate::http::auth::Caller;
use crate::images::store::NewImageRow;
use crate::instances::api::input::CreatePlan;
use crate::instances::error::InstanceError;
use crate::instances::jobs as job;
use crate::instances::placement::place;
use crate::instances::store::{ClaimRefused, InstanceRecord, NewInstanceRow};
use crate::jobs::operations::NewOperation;
use crate::scheduler::Request;
use crate::state::AppState;
use plinth_common::api::{Instance, NewInstance};
use plinth_common::ids::new_id;
use plinth_common::image::{ImageKind, ImageStatus, ImageType, Visibility};
use plinth_common::instance::{InstanceAction, InstanceState};
use plinth_common::timefmt::now_ms;

type Result<T> = std::result::Result<T, InstanceError>;

const GIB: u64 = 1 << 30;

/// The instance if the caller may see it (tenants learn nothing of others').
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> Result<InstanceRecord> {
    st.store
        .instance(id)
        .await?
        .filter(|r| caller.tenant_id().is_none_or(|t| t == r.instance.tenant_id))
        .ok_or_else(|| InstanceError::NotFound(id.to_string()))
}

async fn reload(st: &AppState, id: &str) -> Result<Instance> {
    Ok(st
        .store
        .instance(id)
        .await?
        .ok_or_else(|| InstanceError::NotFound(id.to_string()))?
        .instance)
}

fn wrong_state(id: &str, state: InstanceState, what: &str) -> InstanceError {
    InstanceError::WrongState {
        id: id.to_string(),
        state,
        what: what.to_string(),
    }
}

/// Creates an instance checked as `plan`: quota, placement and claim, recorded before this
/// answers; the host's agent builds it afterwards (the create job).
pub async fn create(
    st: &AppState,
    caller: &Caller,
    plan: &CreatePlan,
    req: &NewInstance,
) -> Result<Instance> {
    if let Err(q) = st
        .store
        .quota_allows(&plan.tenant_id, u64::from(req.vcpus), req.memory_bytes)
        .await?
    {
        return Err(InstanceError::Quota(q));
    }
    let sealed = st
        .images
        .secrets
        .seal(&req.admin_password)
        .map_err(|e| InstanceError::Internal(e.into()))?;
    let (eips, nics) = eips_to_bind(st, &plan.tenant_id, &req.eips).await?;
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
        eips: &eips,
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
        nics,
    };
    let oc = st.settings.overcommit;
    let host = place(st, placement, None, |host| {
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
    let detail = format!(
        "on host {host}, {} vCPUs, {} bytes",
        req.vcpus, req.memory_bytes
    );
    st.store
        .audit(&caller.actor(), "create instance", &id, &detail)
        .await?;
    let job = job::create(st.clone(), id.clone(), op_id.clone());
    crate::jobs::lease::run(st, &op_id, "instance create", job);
    reload(st, &id).await
}

/// The EIPs a create binds, each with a new MAC for its NIC, and the NICs their segments
/// need of a host. Each must be the tenant's, allocated and not bound; the claim binds them
/// in its transaction, and refuses the create if one was taken meanwhile.
async fn eips_to_bind(
    st: &AppState,
    tenant: &str,
    ids: &[String],
) -> Result<(Vec<(String, String)>, Vec<String>)> {
    let mut eips = Vec::new();
    let mut nics = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(InstanceError::Eip(format!("EIP {id} is listed twice")));
        }
        let eip = st
            .store
            .eip(id)
            .await?
            .filter(|e| e.tenant_id == tenant)
            .ok_or_else(|| InstanceError::Eip(format!("EIP {id} is not one of the tenant's")))?;
        if let Some(other) = &eip.instance_id {
            return Err(InstanceError::Eip(format!(
                "EIP {id} is bound to instance {other}; unbind it first"
            )));
        }
        let segment = st
            .store
            .segment_record(&eip.segment_id)
            .await?
            .ok_or_else(|| InstanceError::Eip(format!("EIP {id}'s segment is gone")))?;
        if !nics.contains(&segment.spec.nic) {
            nics.push(segment.spec.nic.clone());
        }
        eips.push((id.clone(), crate::network::store::eips::new_mac()));
    }
    Ok((eips, nics))
}

/// Moves the instance into the action's state and starts its job. An unplaced instance being
/// started is placed anew first.
pub async fn act(
    st: &AppState,
    caller: &Caller,
    id: &str,
    action: InstanceAction,
    stop_timeout_s: u64,
) -> Result<Instance> {
    let rec = find(st, caller, id).await?;
    let inst = &rec.instance;
    let Some(to) = inst.state.begin(action) else {
        return Err(wrong_state(
            id,
            inst.state,
            &format!("{action} needs another state"),
        ));
    };
    let what = format!("{action} instance");
    let op_id = begin_job(st, caller, inst, job::action_kind(action), to, &what).await?;
    let job = job::action(
        st.clone(),
        id.to_string(),
        op_id.clone(),
        action,
        stop_timeout_s,
    );
    crate::jobs::lease::run(st, &op_id, "instance action", job);
    reload(st, id).await
}

/// Deletes an instance in a settled state: its job undefines the domain and removes the disk
/// on the host, then the instance and its claim go.
pub async fn delete(st: &AppState, caller: &Caller, id: &str) -> Result<Instance> {
    let rec = find(st, caller, id).await?;
    let inst = &rec.instance;
    if !inst.state.may_delete() {
        return Err(wrong_state(id, inst.state, "wait until its job ends"));
    }
    let to = InstanceState::Deleting;
    let op_id = begin_job(st, caller, inst, job::DELETE, to, "delete instance").await?;
    let deleting = reload(st, id).await?;
    let job = job::delete(st.clone(), id.to_string(), op_id.clone());
    crate::jobs::lease::run(st, &op_id, "instance delete", job);
    Ok(deleting)
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
) -> Result<String> {
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
                let now = reload(st, &inst.id).await?.state;
                return Err(InstanceError::Conflict {
                    id: inst.id.clone(),
                    from: inst.state,
                    to,
                    now,
                });
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
) -> Result<()> {
    let req = Request {
        cores: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        cluster: None,
        gpu_type: inst.gpu_type.clone(),
        exclude: Vec::new(),
        nics: instance_nics(st, &inst.id).await?,
    };
    let oc = st.settings.overcommit;
    place(st, req, None, |host| {
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
    store: &Store,
    host: &str,
    id: &str,
    gpu_type: Option<&str>,
    undo: impl FnOnce() -> Fut,
) -> std::result::Result<std::result::Result<(), ClaimRefused>, StoreError>
where
    Fut: Future<Output = std::result::Result<(), StoreError>>,
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

/// Exports a running or stopped instance's disk as a custom image `name` of its tenant: the
/// image row (`creating`) and its operation are written, then the export job runs on the host.
/// Answers the new image's id.
pub async fn export(st: &AppState, caller: &Caller, id: &str, name: &str) -> Result<String> {
    let inst = find(st, caller, id).await?.instance;
    if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped)
        || inst.host_id.is_none()
    {
        return Err(InstanceError::NotExportable {
            id: id.to_string(),
            state: inst.state,
            unplaced: inst.host_id.is_none(),
        });
    }
    // The export describes the same system as the image the instance came from.
    let source = match &inst.image_id {
        Some(image) => st.store.image(image).await?.map(|r| r.image),
        None => None,
    };
    let (image_id, op_id, now) = (new_id("img"), new_id("op"), now_ms());
    let target_gb = u32::try_from(inst.disk_bytes.div_ceil(GIB)).unwrap_or(u32::MAX);
    let note = format!("exported from instance {id}");
    let row = NewImageRow {
        id: &image_id,
        name,
        kind: ImageKind::Custom,
        image_type: ImageType::Image,
        iso_purpose: None,
        visibility: Visibility::Private,
        owner_tenant_id: Some(&inst.tenant_id),
        note: &note,
        os_type: source.as_ref().and_then(|s| s.os_type),
        architecture: source.as_ref().and_then(|s| s.architecture),
        platform: source.as_ref().and_then(|s| s.platform.as_deref()),
        version: source.as_ref().and_then(|s| s.version.as_deref()),
        target_size_gb: Some(target_gb),
        expected_sha256: None,
        source_url: None,
        source_url_sealed: None,
        status: ImageStatus::Creating,
        operation_id: Some(&op_id),
        exported_from: Some(id),
        now,
    };
    let op = NewOperation {
        id: &op_id,
        kind: job::EXPORT,
        target_id: &image_id,
        owner_tenant_id: Some(&inst.tenant_id),
        now,
    };
    st.store.create_image(&row, &[], Some(&op)).await?;
    let detail = format!("to image {image_id}");
    st.store
        .audit(&caller.actor(), "export instance", id, &detail)
        .await?;
    let job = job::export(st.clone(), id.to_string(), image_id.clone(), op_id.clone());
    crate::jobs::lease::run(st, &op_id, "instance export", job);
    Ok(image_id)
}

/// The NICs a host needs to run instance `id` (its EIPs' segments').
pub async fn instance_nics(
    st: &AppState,
    id: &str,
) -> std::result::Result<Vec<String>, StoreError> {
    use crate::network::store::eips::InstancesOf;
    let mut nics = st.store.instance_nics(InstancesOf::Instance(id)).await?;
    Ok(nics.remove(id).unwrap_or_default())
}
