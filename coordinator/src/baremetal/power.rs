//! A power action's job: `POST /v1/baremetal/{id}/power` writes the operation and answers
//! 202; this sends the action to the agent that reaches the server's BMC (a soft reboot can
//! take minutes, waiting for the OS), records the power read after it and ends the operation.
//!
//! Resuming after a restart, exactly once: `on`, `off` and `force_off` ask for an end state,
//! so sending one again does no harm and the job simply runs again. `reboot` and `cycle`
//! are not idempotent (a second one reboots a server that already came back), so the job
//! marks the operation sent, with its step, before the request leaves; a resumed one that
//! finds the mark does not send again — it ends the operation failed, saying the outcome
//! is unknown — and one without the mark was never sent and runs.

use crate::baremetal::store::{PowerJob, PowerParams};
use crate::baremetal::{
    BaremetalError, Reach, agent_failure, reach, record_power, require_running,
};
use crate::state::AppState;
use plinth_common::api::AgentPower;
use plinth_common::baremetal::{PowerAction, PowerEvent};
use plinth_common::timefmt::now_ms;
use tracing::{info, warn};

/// Said of a resumed reboot or cycle that may have reached the BMC before the restart.
const UNKNOWN_AFTER_RESTART: &str = "the coordinator restarted after the request was sent to the \
    BMC; it was not sent again, so whether it was done is unknown: look at the server's power \
    and send it again if needed";
/// A failure inside the coordinator, as the tenant reads it (the log has the cause).
const INTERNAL: &str = "the power action failed inside the coordinator; its log has the cause";

/// Whether sending `action` twice is the same as sending it once.
pub fn idempotent(action: PowerAction) -> bool {
    match action {
        PowerAction::On | PowerAction::Off | PowerAction::ForceOff => true,
        PowerAction::Reboot | PowerAction::Cycle => false,
    }
}

/// The action as an operator reads it.
pub fn describe(p: &PowerParams) -> String {
    match (p.action, p.hard) {
        (PowerAction::On, _) => "power on".into(),
        (PowerAction::Off, _) => "soft power off (ACPI shutdown)".into(),
        (PowerAction::Reboot, false) => "soft reboot".into(),
        (PowerAction::Reboot, true) => "hard reset".into(),
        (PowerAction::ForceOff, _) => "forced power off".into(),
        (PowerAction::Cycle, _) => "power cycle".into(),
    }
}

/// What a resumed power operation does, by the rule above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Send it (again).
    Run,
    /// It may have reached the BMC and must not be sent twice: end it, outcome unknown.
    EndUnknown,
}

pub fn on_resume(p: &PowerParams) -> Resumed {
    if p.sent && !idempotent(p.action) {
        Resumed::EndUnknown
    } else {
        Resumed::Run
    }
}

/// Resumes the power operations the last run left running, by the rule above.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for job in st.store.running_power().await? {
        if on_resume(&job.params) == Resumed::EndUnknown {
            warn!(operation = %job.op, baremetal = %job.server, action = %job.params.action,
                "A power action may have reached the BMC before the restart; not sending it again.");
            let step = "not sent again after the coordinator restarted";
            st.store
                .end_power(&job.op, Some(step), Some(UNKNOWN_AFTER_RESTART), now_ms())
                .await?;
            continue;
        }
        info!(operation = %job.op, baremetal = %job.server, "Resuming a power action the last run left running.");
        let op = job.op.clone();
        crate::jobs::lease::run(st, &op, "bare-metal power", run(st.clone(), job));
    }
    Ok(())
}

/// Runs power operation `job` to its end.
pub async fn run(st: AppState, job: PowerJob) {
    let outcome = send(&st, &job).await;
    let (step, error) = match &outcome {
        Ok(on) => (
            Some(format!("power now {}", if *on { "on" } else { "off" })),
            None,
        ),
        Err(err) => {
            // A tenant reads the error: the coordinator's own failures are only logged.
            let message = match err {
                BaremetalError::Internal(_) | BaremetalError::Store(_) => {
                    warn!(operation = %job.op, baremetal = %job.server, error = ?err, "A power action failed.");
                    INTERNAL.to_string()
                }
                other => other.to_string(),
            };
            (None, Some(message))
        }
    };
    if outcome.is_ok() {
        let detail = format!(
            "{}{}",
            job.params.action,
            if job.params.hard { " (hard)" } else { "" }
        );
        if let Err(e) = st
            .store
            .audit(&job.params.actor, "power baremetal", &job.server, &detail)
            .await
        {
            warn!(operation = %job.op, error = %e, "Could not audit a power action.");
        }
    }
    if let Err(e) = st
        .store
        .end_power(&job.op, step.as_deref(), error.as_deref(), now_ms())
        .await
    {
        warn!(operation = %job.op, error = %e, "Could not end a power operation.");
    }
}

/// Sends the action through the server's agent; the power read after it (`true`: on).
async fn send(st: &AppState, job: &PowerJob) -> Result<bool, BaremetalError> {
    let rec = st
        .store
        .baremetal(&job.server)
        .await?
        .ok_or_else(|| BaremetalError::NotFound(job.server.clone()))?;
    require_running(&rec, "a power action")?;
    let Reach { host, ep, bmc } = reach(st, &rec).await?;
    let action = AgentPower {
        bmc,
        action: job.params.action,
        hard: job.params.hard,
    };
    let step = format!("{} sent to the BMC", describe(&job.params));
    st.store.power_sent(&job.op, &step, now_ms()).await?;
    let answer = st
        .agents
        .bmc_power(&ep, &action)
        .await
        .map_err(|e| agent_failure(&host, e))?;
    record_power(st, &job.server, PowerEvent::read(answer.power_on), "action").await?;
    info!(operation = %job.op, baremetal = %job.server, action = %job.params.action, "Power action done.");
    Ok(answer.power_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_end_states_are_sent_again() {
        let cases = [
            (PowerAction::On, true),
            (PowerAction::Off, true),
            (PowerAction::ForceOff, true),
            (PowerAction::Reboot, false),
            (PowerAction::Cycle, false),
        ];
        for (action, want) in cases {
            assert_eq!(idempotent(action), want, "{action}");
        }
    }

    #[test]
    fn a_resumed_action_is_sent_at_most_once_where_twice_would_differ() {
        use PowerAction as A;
        use Resumed::{EndUnknown, Run};
        let cases = [
            ("on, never sent", A::On, false, Run),
            ("on, sent: sent again", A::On, true, Run),
            ("off, sent: sent again", A::Off, true, Run),
            ("force_off, sent: sent again", A::ForceOff, true, Run),
            ("reboot, never sent", A::Reboot, false, Run),
            ("reboot, sent", A::Reboot, true, EndUnknown),
            ("cycle, never sent", A::Cycle, false, Run),
            ("cycle, sent", A::Cycle, true, EndUnknown),
        ];
        for (label, action, sent, want) in cases {
            let p = PowerParams {
                action,
                hard: false,
                actor: "admin".into(),
                sent,
            };
            assert_eq!(on_resume(&p), want, "{label}");
        }
    }
}
