//! Maintenance drains (SPEC §2) and manual live migrations. The API writes the drain (host in
//! `entering_maintenance`, a move per instance) before this runs; then, top to bottom:
//! stopped instances are released; running ones are live-migrated, a bounded number at once
//! (per host and per cluster), each attempt with its claim on the target taken first, a
//! deadline, and a bounded number of attempts; the host ends in `maintenance` when nothing is
//! left, else back in `locked` with the report. Every step is in the store before the next,
//! so `resume` continues a drain after a restart: a move that was in flight is settled by
//! asking both agents where the domain is.

use crate::jobs::operations::Running;
use crate::maintenance::migrate::{host_cluster, migrate, move_instance};
use crate::maintenance::moves::Turns;
use crate::maintenance::{MaintenanceError, host_event};
use crate::state::AppState;
use plinth_common::api::{Instance, MoveAction, MoveStatus};
use plinth_common::host::{HostEvent, HostState};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::now_ms;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

pub const DRAIN: &str = plinth_common::api::operation_kinds::HOST_DRAIN;
pub const MIGRATE: &str = plinth_common::api::operation_kinds::INSTANCE_MIGRATE;

/// Times a drain takes up moves that stopped on an error before it gives up on them.
const ROUNDS: usize = 3;

/// The drain settings, named here too for the configuration that reads them.
pub use super::DrainSettings;

/// What a drain does with an instance, and why when it leaves it.
pub fn plan_action(inst: &Instance) -> (MoveAction, Option<String>) {
    if let Some(gpu) = &inst.gpu_type {
        let held: Vec<&str> = inst
            .devices
            .iter()
            .map(String::as_str)
            .filter(|d| d.starts_with("vgpu:") || d.starts_with("gpu:"))
            .collect();
        let named = if held.is_empty() {
            String::new()
        } else {
            format!(" ({})", held.join(", "))
        };
        return (
            MoveAction::Stay,
            Some(format!(
                "it has a {gpu} GPU/vGPU{named}, which cannot be live-migrated"
            )),
        );
    }
    if !inst.devices.is_empty() {
        return (
            MoveAction::Stay,
            Some(format!(
                "it has devices attached ({}), which cannot be live-migrated",
                inst.devices.join(", ")
            )),
        );
    }
    match inst.state {
        InstanceState::Running if inst.operation_id.is_none() => (MoveAction::Migrate, None),
        InstanceState::Stopped if inst.operation_id.is_none() => (MoveAction::Release, None),
        InstanceState::Error => (
            MoveAction::Stay,
            Some("it is in error; repair or delete it, then enter maintenance again".into()),
        ),
        state => (
            MoveAction::Stay,
            Some(format!(
                "it is {state}, which cannot move; enter maintenance again once it settles"
            )),
        ),
    }
}

/// Starts the drains and migrations the lease's term does not run yet: left running by the
/// last holder, or written by another coordinator's API.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for Running { op, .. } in st.store.running_operations(DRAIN).await? {
        info!(operation = %op.id, host = %op.target_id, "Resuming a maintenance drain.");
        let job = run(st.clone(), op.target_id, op.id.clone());
        crate::jobs::lease::run(st, &op.id, "drain", job);
    }
    for Running { op, .. } in st.store.running_operations(MIGRATE).await? {
        info!(operation = %op.id, instance = %op.target_id, "Resuming a live migration.");
        let job = migrate(st.clone(), op.id.clone(), false);
        crate::jobs::lease::run(st, &op.id, "live migration", job);
    }
    Ok(())
}

/// The drain of `host` written as `op`.
pub async fn run(st: AppState, host: String, op: String) {
    if let Err(e) = drain(&st, &host, &op).await {
        error!(host = %host, operation = %op, error = %format!("{e:#}"), "The drain stopped on a store error; it resumes at the next start.");
    }
}

async fn drain(st: &AppState, host: &str, op: &str) -> anyhow::Result<()> {
    let parallelism = st
        .store
        .latest_drain(host)
        .await?
        .filter(|d| d.operation_id == op)
        .map_or(st.settings.drains.parallelism, |d| d.parallelism);
    if !entered(st, host, op).await? {
        return Ok(());
    }
    let cluster = host_cluster(st, host).await?;

    // 1. Stopped instances leave the host without moving.
    for m in st.store.moves(op).await? {
        if m.item.action == MoveAction::Release && m.item.status == MoveStatus::Pending {
            let id = &m.item.instance_id;
            if !st.store.release_move(op, id, host, now_ms()).await? {
                let reason =
                    "it was no longer stopped when the drain reached it; enter maintenance again";
                st.store.stay_move(op, id, reason, now_ms()).await?;
            }
        }
    }

    // 2. Running instances migrate, `parallelism` at once from this host; as many more
    //    have their target claimed and prepared, ready for the next turn. A move that stops
    //    on an error is taken up again (a `migrating` one is first settled by asking both
    //    agents where the domain is), a bounded number of rounds.
    let turns = Turns::new(st, &cluster, parallelism);
    let ahead = Arc::new(Semaphore::new(2 * parallelism.max(1) as usize));
    let mut last_error = None;
    for _round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for m in st.store.moves(op).await? {
            if m.item.action != MoveAction::Migrate || m.item.status.is_final() {
                continue;
            }
            let (st, cluster, turns) = (st.clone(), cluster.clone(), turns.clone());
            let ahead = ahead.clone();
            tasks.push(st.jobs.clone().spawn("drain move", async move {
                let _ahead = ahead.acquire_owned().await;
                move_instance(&st, m, &cluster, false, &turns).await
            }));
        }
        if tasks.is_empty() {
            break;
        }
        for task in tasks {
            let failed = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => e.to_string(),
            };
            error!(host = %host, operation = %op, error = %failed, "A move stopped on an error; it is taken up again.");
            last_error = Some(failed);
        }
    }
    for m in st.store.moves(op).await? {
        if m.item.status == MoveStatus::Pending {
            let reason = last_error
                .clone()
                .unwrap_or_else(|| "the drain could not move it".into());
            st.store
                .stay_move(op, &m.item.instance_id, &reason, now_ms())
                .await?;
        }
    }
    if st
        .store
        .moves(op)
        .await?
        .iter()
        .any(|m| !m.item.status.is_final())
    {
        anyhow::bail!("moves are still in flight after {ROUNDS} rounds: {last_error:?}");
    }

    // 3. The host's verdict.
    let moves = st.store.moves(op).await?;
    let stayed: Vec<String> = moves
        .iter()
        .filter(|m| m.item.status == MoveStatus::Stayed)
        .map(|m| {
            format!(
                "{} ({})",
                m.item.instance_name,
                m.item.reason.as_deref().unwrap_or("no reason recorded")
            )
        })
        .collect();
    let summary = (!stayed.is_empty()).then(|| {
        format!(
            "{} of {} instances stayed on the host: {}",
            stayed.len(),
            moves.len(),
            stayed.join("; ")
        )
    });
    let event = if summary.is_none() {
        HostEvent::DrainCompleted
    } else {
        HostEvent::DrainIncomplete
    };
    let state = settle_host(st, host, event).await?;
    if !st.store.end_drain(op, summary.as_deref(), now_ms()).await? {
        warn!(host = %host, operation = %op, "The drain had already ended.");
        return Ok(());
    }
    st.store
        .audit(
            "drain",
            "drain ended",
            host,
            summary.as_deref().unwrap_or(""),
        )
        .await?;
    info!(host = %host, operation = %op, state = ?state, stayed = stayed.len(), "Drain ended.");
    Ok(())
}

/// Makes sure the host is `entering_maintenance` before its drain moves anything: a drain
/// written just before a restart may not have moved it yet. `false` (and the drain ended,
/// the host left as it is) when the host left `locked` meanwhile.
async fn entered(st: &AppState, host: &str, op: &str) -> anyhow::Result<bool> {
    let why = match host_event(st, host, HostEvent::EnterMaintenance).await {
        Ok(_) => return Ok(true),
        Err(MaintenanceError::Host { err, .. }) if err.from == HostState::EnteringMaintenance => {
            return Ok(true);
        }
        Err(e @ (MaintenanceError::Host { .. } | MaintenanceError::HostNotFound(_))) => {
            e.to_string()
        }
        Err(e) => return Err(e.into()),
    };
    let summary = format!("the drain did not begin: {why}");
    warn!(host = %host, operation = %op, reason = %summary, "Drain not started.");
    st.store.end_drain(op, Some(&summary), now_ms()).await?;
    Ok(false)
}

/// Moves the host out of `entering_maintenance` as the drain's outcome says, through the hosts'
/// transition. A host already there (the drain ended it before a restart cut it off) or moved
/// elsewhere by someone else is left as it is, with a warning for the latter.
async fn settle_host(
    st: &AppState,
    host: &str,
    event: HostEvent,
) -> anyhow::Result<Option<HostState>> {
    match host_event(st, host, event).await {
        Ok(state) => Ok(Some(state)),
        Err(MaintenanceError::Host { err, .. }) => {
            let settled = HostState::EnteringMaintenance.transition(event).ok();
            if settled != Some(err.from) {
                warn!(host = %host, state = %err.from, "The host left entering_maintenance during its drain; it stays as it is.");
            }
            Ok(Some(err.from))
        }
        Err(MaintenanceError::HostNotFound(_)) => {
            warn!(host = %host, "The drained host is gone.");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use plinth_common::instance::InstanceKind;

    pub(crate) fn instance(
        state: InstanceState,
        gpu: Option<&str>,
        devices: &[&str],
        op: Option<&str>,
    ) -> Instance {
        Instance {
            id: "inst-000000000001".into(),
            name: "vm".into(),
            kind: InstanceKind::Vm,
            tenant_id: "ten".into(),
            tenant_email: "t@x".into(),
            host_id: Some("host-000000000001".into()),
            host_ip: None,
            image_id: None,
            vcpus: 1,
            memory_bytes: 1 << 30,
            disk_bytes: 1 << 30,
            gpu_type: gpu.map(str::to_string),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            state,
            state_reason: None,
            resource_id: None,
            operation_id: op.map(str::to_string),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn what_a_drain_does_with_each_instance() {
        use InstanceState as S;
        use MoveAction as A;
        let cases = [
            (
                "running",
                instance(S::Running, None, &[], None),
                A::Migrate,
                None,
            ),
            (
                "stopped",
                instance(S::Stopped, None, &[], None),
                A::Release,
                None,
            ),
            (
                "gpu",
                instance(S::Running, Some("A100"), &[], None),
                A::Stay,
                Some("A100"),
            ),
            (
                "usb",
                instance(S::Running, None, &["usb-1-2"], None),
                A::Stay,
                Some("usb-1-2"),
            ),
            (
                "stopped gpu",
                instance(S::Stopped, Some("T4"), &[], None),
                A::Stay,
                Some("T4"),
            ),
            (
                "vgpu named",
                instance(
                    S::Running,
                    Some("nvidia-46"),
                    &["vgpu:3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11"],
                    None,
                ),
                A::Stay,
                Some("nvidia-46 GPU/vGPU (vgpu:3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11)"),
            ),
            (
                "rebooting",
                instance(S::Rebooting, None, &[], Some("op")),
                A::Stay,
                Some("rebooting"),
            ),
            (
                "migrating",
                instance(S::Migrating, None, &[], Some("op")),
                A::Stay,
                Some("migrating"),
            ),
            (
                "error",
                instance(S::Error, None, &[], None),
                A::Stay,
                Some("error"),
            ),
            (
                "running, job",
                instance(S::Running, None, &[], Some("op")),
                A::Stay,
                Some("running"),
            ),
        ];
        for (label, inst, action, says) in cases {
            let (got, reason) = plan_action(&inst);
            assert_eq!(got, action, "{label}");
            match says {
                Some(text) => assert!(
                    reason.as_deref().is_some_and(|r| r.contains(text)),
                    "{label}: {reason:?}"
                ),
                None => assert_eq!(reason, None, "{label}"),
            }
        }
    }
}
