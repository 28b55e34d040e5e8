//! Instance jobs. The API writes the instance's intermediate state and the operation row (and,
//! for a create, the claim) before a job starts; a job calls the host's agent and records how
//! it ended. Agent calls are idempotent, so `resume` simply runs a job again after a restart.

use crate::agents::AgentEndpoint;
use crate::agents::AgentError;
use crate::instances::error::JobError;
use crate::instances::store::InstanceRecord;
use crate::jobs::lease::run;
use crate::state::AppState;
use plinth_common::api::operation_kinds as kinds;
use plinth_common::api::{AgentCreateInstance, AgentExport, AgentImage, AgentInstance};
use plinth_common::instance::{DEFAULT_STOP_TIMEOUT_S, InstanceAction, InstanceState};
use plinth_common::timefmt::now_ms;
use tracing::{error, info, warn};

pub const CREATE: &str = kinds::INSTANCE_CREATE;
pub const START: &str = kinds::INSTANCE_START;
pub const STOP: &str = kinds::INSTANCE_STOP;
pub const REBOOT: &str = kinds::INSTANCE_REBOOT;
pub const DELETE: &str = kinds::INSTANCE_DELETE;
pub const EXPORT: &str = kinds::IMAGE_EXPORT;

pub fn action_kind(action: InstanceAction) -> &'static str {
    match action {
        InstanceAction::Start => START,
        InstanceAction::Stop => STOP,
        InstanceAction::Reboot => REBOOT,
    }
}

/// Starts the instance jobs the lease's term does not run yet: left running by the last
/// holder, or written by another coordinator's API.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for (rec, kind) in st.store.instances_in_jobs().await? {
        let Some(op) = rec.instance.operation_id.clone() else {
            continue;
        };
        let id = rec.instance.id.clone();
        info!(instance = %id, operation = %op, %kind, "Resuming an instance job.");
        let st = st.clone();
        match kind.as_str() {
            // Drains and migrations resume their moves themselves (maintenance/drain.rs).
            kinds::HOST_DRAIN | kinds::INSTANCE_MIGRATE => {}
            CREATE => {
                _ = run(
                    &st,
                    &op,
                    "instance create",
                    create(st.clone(), id, op.clone()),
                )
            }
            DELETE => {
                _ = run(
                    &st,
                    &op,
                    "instance delete",
                    delete(st.clone(), id, op.clone()),
                )
            }
            other => match InstanceAction::ALL
                .iter()
                .find(|a| action_kind(**a) == other)
            {
                // The stop's own timeout is not kept; a resumed stop waits the default.
                Some(&a) => {
                    let job = action(st.clone(), id, op.clone(), a, DEFAULT_STOP_TIMEOUT_S);
                    run(&st, &op, "instance action", job);
                }
                None => warn!(instance = %id, kind = other, "Unknown instance job kind."),
            },
        }
    }
    Ok(())
}

/// The instance as the store holds it now, or why not (a job's reason).
pub async fn record(st: &AppState, id: &str) -> Result<InstanceRecord, JobError> {
    st.store.instance(id).await?.ok_or(JobError::Removed)
}

/// The instance and its host's agent endpoint.
async fn locate(st: &AppState, id: &str) -> Result<(InstanceRecord, AgentEndpoint), JobError> {
    let rec = record(st, id).await?;
    let host = rec.instance.host_id.as_deref().ok_or(JobError::NotPlaced)?;
    let ep = endpoint(st, host).await?;
    Ok((rec, ep))
}

/// Where the agent of `host` listens, read from the store.
pub async fn endpoint(st: &AppState, host: &str) -> Result<AgentEndpoint, JobError> {
    st.store
        .agent_endpoint(host, now_ms())
        .await?
        .ok_or_else(|| JobError::HostGone(host.to_string()))
}

/// A step of job `op` that describes no change of the store ([`crate::jobs::operations::step`]).
async fn step(st: &AppState, op: &str, message: &str) {
    crate::jobs::operations::step(&st.store, op, message).await
}

/// The host an instance is on, as a step names it.
fn host_of(rec: &InstanceRecord) -> &str {
    rec.instance.host_id.as_deref().unwrap_or("(none)")
}

/// Asks the agent to build and start the instance's domain (or answer the one it has).
async fn build(
    st: &AppState,
    rec: &InstanceRecord,
    ep: &AgentEndpoint,
    op: &str,
) -> Result<AgentInstance, JobError> {
    let req = create_request(st, rec).await?;
    let asked = format!(
        "host {}: making the disk from image {}, then defining and starting the instance",
        host_of(rec),
        req.image.id
    );
    step(st, op, &asked).await;
    let made = st
        .agents
        .create_instance(ep, &req)
        .await
        .map_err(|e| JobError::agent("create", &e))?;
    step(st, op, "disk made, instance defined and started").await;
    Ok(made)
}

/// What an agent needs to build the instance's files (a create, or a migration's target).
pub async fn create_request(
    st: &AppState,
    rec: &InstanceRecord,
) -> Result<AgentCreateInstance, JobError> {
    let inst = &rec.instance;
    let image_id = inst.image_id.as_deref().ok_or(JobError::NoImage)?;
    let image = st
        .store
        .image(image_id)
        .await?
        .ok_or_else(|| JobError::ImageGone(image_id.to_string()))?
        .image;
    let (Some(sha256), Some(size), Some(format)) = (image.sha256, image.size_bytes, image.format)
    else {
        return Err(JobError::ImageUnverified(image_id.to_string()));
    };
    let sealed = rec
        .admin_password_sealed
        .as_deref()
        .ok_or(JobError::NoPassword)?;
    let admin_password = st
        .images
        .secrets
        .unseal(sealed)
        .map_err(|e| JobError::Unseal(e.into()))?;
    let mut nics = Vec::new();
    for a in st.store.instance_addresses(&inst.id).await? {
        let mac = match a.mac.clone() {
            Some(mac) => mac,
            // Bound before NICs existed: it gets its MAC now, once.
            None => st.store.give_mac(&a.eip_id).await?,
        };
        nics.push(crate::network::agent_nic(a, mac));
    }
    Ok(AgentCreateInstance {
        instance_id: inst.id.clone(),
        hostname: inst.name.clone(),
        vcpus: inst.vcpus,
        memory_bytes: inst.memory_bytes,
        disk_bytes: inst.disk_bytes,
        image: AgentImage {
            id: image_id.to_string(),
            sha256,
            size_bytes: size,
            format,
        },
        admin_password,
        devices: inst
            .devices
            .iter()
            .filter(|d| d.starts_with("vgpu:") || d.starts_with("gpu:"))
            .cloned()
            .collect(),
        nics,
    })
}

/// A create (or a start that places an unplaced instance anew): on success the instance runs;
/// on failure the agent removes what it made and the claim is given back, unless the agent
/// cannot be reached to confirm that, in which case the claim stays until a delete.
pub async fn create(st: AppState, id: String, op: String) {
    let outcome = match locate(&st, &id).await {
        Ok((rec, ep)) => build(&st, &rec, &ep, &op).await.map_err(|e| (e, Some(ep))),
        Err(e) => Err((e, None)),
    };
    let now = now_ms();
    let recorded = match outcome {
        Ok(domain) => {
            info!(instance = %id, domain = %domain.domain_uuid, "Instance created.");
            st.store
                .finish_instance_job(
                    &id,
                    &op,
                    InstanceState::Running,
                    Some(&domain.domain_uuid),
                    now,
                )
                .await
        }
        Err((e, ep)) => {
            warn!(instance = %id, error = ?e, "Instance create failed.");
            let reason = e.to_string();
            let cleaned = match &ep {
                Some(ep) => st.agents.delete_instance(ep, &id).await,
                None => Ok(()),
            };
            if let (Ok(()), Some(ep)) = (&cleaned, &ep)
                && let Ok(Some(host)) = st.store.instance_host(&id).await
            {
                reread_devices(&st, &id, &host, ep).await;
            }
            match cleaned {
                Ok(()) => {
                    // Unplaced: its vGPU or GPU is free for others (a start claims anew).
                    if let Err(e) = st.store.release_devices(&id, now).await {
                        error!(instance = %id, error = ?e, "Could not free a failed create's devices.");
                    }
                    st.store
                        .fail_instance_job(&id, &op, &reason, true, now)
                        .await
                }
                Err(e) => {
                    let reason = format!(
                        "{reason}; cleaning up on the host failed too ({}), so the claim stays until the instance is deleted",
                        e.explain()
                    );
                    st.store
                        .fail_instance_job(&id, &op, &reason, false, now)
                        .await
                }
            }
        }
    };
    if let Err(e) = recorded {
        error!(instance = %id, error = ?e, "Could not record the end of an instance create.");
    }
}

/// Start, stop or reboot. A start of an instance whose domain is gone (placed anew after a
/// drain, or a create that failed) builds it from its image.
pub async fn action(
    st: AppState,
    id: String,
    op: String,
    action: InstanceAction,
    stop_timeout_s: u64,
) {
    let outcome = async {
        let (rec, ep) = locate(&st, &id).await?;
        let explain = |e: AgentError| JobError::agent(action, &e);
        if action == InstanceAction::Start
            && st
                .agents
                .instance(&ep, &id)
                .await
                .map_err(explain)?
                .is_none()
        {
            step(
                &st,
                &op,
                "its domain is gone from its host: building it again",
            )
            .await;
            return build(&st, &rec, &ep, &op).await;
        }
        let asked = match action {
            InstanceAction::Stop => format!(
                "host {}: stopping the guest (forced off after {stop_timeout_s}s)",
                host_of(&rec)
            ),
            other => format!("host {}: {other} asked", host_of(&rec)),
        };
        step(&st, &op, &asked).await;
        st.agents
            .instance_action(&ep, &id, action, stop_timeout_s)
            .await
            .map_err(explain)
    }
    .await;
    let now = now_ms();
    let recorded = match outcome {
        Ok(domain) => {
            info!(instance = %id, %action, "Instance action done.");
            st.store
                .finish_instance_job(&id, &op, action.done(), Some(&domain.domain_uuid), now)
                .await
        }
        Err(e) => {
            warn!(instance = %id, %action, error = ?e, "Instance action failed.");
            let reason = e.to_string();
            st.store
                .fail_instance_job(&id, &op, &reason, false, now)
                .await
        }
    };
    if let Err(e) = recorded {
        error!(instance = %id, error = ?e, "Could not record the end of an instance action.");
    }
}

/// After the agent removed an instance that held devices (it frees them as it goes): keeps the
/// host's inventory as the agent has it now, not as its last heartbeat told it.
async fn reread_devices(st: &AppState, id: &str, host: &str, ep: &AgentEndpoint) {
    let held = st
        .store
        .instance(id)
        .await
        .ok()
        .flatten()
        .is_some_and(|r| !r.instance.devices.is_empty());
    if !held {
        return;
    }
    match st.agents.devices(ep).await {
        Ok(inventory) => {
            if let Err(e) = st.store.record_devices(host, &inventory, now_ms()).await {
                warn!(host = %host, error = ?e, "Could not keep the device inventory.");
            }
        }
        Err(e) => {
            warn!(host = %host, error = %e.explain(), "Could not read the devices back; the next heartbeat brings them.")
        }
    }
}

/// Removes the domain and disk on the host, then the instance and its claim.
pub async fn delete(st: AppState, id: String, op: String) {
    let outcome = async {
        let host = st.store.instance_host(&id).await?;
        // An unplaced instance (a create that failed) has nothing on any host.
        if let Some(host) = host {
            let ep = endpoint(&st, &host).await?;
            step(
                &st,
                &op,
                &format!("host {host}: removing the domain and its disk"),
            )
            .await;
            st.agents
                .delete_instance(&ep, &id)
                .await
                .map_err(|e| JobError::agent("delete", &e))?;
            reread_devices(&st, &id, &host, &ep).await;
        }
        Ok::<(), JobError>(())
    }
    .await;
    let now = now_ms();
    let recorded = match outcome {
        Ok(()) => {
            info!(instance = %id, "Instance deleted.");
            let host = st.store.instance_host(&id).await.ok().flatten();
            let removed = st.store.remove_instance(&id, &op, now).await;
            // Its devices went with it: placement counts them free again.
            if let Some(host) = host
                && let Err(e) = st.store.recount_gpus(&host).await
            {
                error!(host = %host, error = ?e, "Could not recount the host's free GPUs.");
            }
            removed
        }
        Err(e) => {
            warn!(instance = %id, error = ?e, "Instance delete failed.");
            let reason = e.to_string();
            st.store
                .fail_instance_job(&id, &op, &reason, false, now)
                .await
        }
    };
    if let Err(e) = recorded {
        error!(instance = %id, error = ?e, "Could not record the end of an instance delete.");
    }
}

/// Asks the instance's agent to flatten its disk and upload it into `image_id`; the upload
/// (`PUT /v1/agent/images/{id}/content`) verifies and completes the image. When the agent
/// fails before its upload ended the image, the image fails here.
pub async fn export(st: AppState, instance_id: String, image_id: String, op: String) {
    let outcome = async {
        let (rec, ep) = locate(&st, &instance_id).await?;
        let asked = format!(
            "host {}: flattening the disk and uploading it as image {image_id}",
            host_of(&rec)
        );
        step(&st, &op, &asked).await;
        st.agents
            .export_instance(
                &ep,
                &instance_id,
                &AgentExport {
                    image_id: image_id.clone(),
                },
            )
            .await
            .map_err(|e| JobError::agent("export", &e))
    }
    .await;
    if let Err(e) = outcome {
        warn!(instance = %instance_id, image = %image_id, error = ?e, "Export failed.");
        let reason = e.to_string();
        let still_running = st
            .store
            .get_operation(&op, None)
            .await
            .ok()
            .flatten()
            .is_some_and(|o| o.status == plinth_common::api::OperationStatus::Running);
        if still_running
            && let Err(e) = st.store.fail_image(&image_id, &op, &reason, now_ms()).await
        {
            error!(image = %image_id, error = ?e, "Could not record a failed export.");
        }
    }
}
