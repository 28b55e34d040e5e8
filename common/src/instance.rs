//! Instances (SPEC §3): kinds, the state machine of the lifecycle, and the limits a request is
//! checked against.

use crate::image::text_enum;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

text_enum!(
    /// What runs in the instance: a tenant VM, a platform gateway or a PaaS instance.
    InstanceKind { Vm => "vm", Gateway => "gateway", Paas => "paas" }
);

text_enum!(
    /// Settled states are `running`, `stopped` and `error`; the others last while a job works.
    InstanceState {
        Creating => "creating",
        Running => "running",
        Stopped => "stopped",
        Starting => "starting",
        Stopping => "stopping",
        Rebooting => "rebooting",
        Migrating => "migrating",
        Deleting => "deleting",
        Error => "error",
    }
);

text_enum!(
    /// What a user asks of an existing instance.
    InstanceAction { Start => "start", Stop => "stop", Reboot => "reboot" }
);

/// A state write the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("instance is {from}; it cannot become {to}")]
pub struct InvalidInstanceTransition {
    pub from: InstanceState,
    pub to: InstanceState,
}

impl InstanceState {
    /// No job owns the instance: reconciliation may correct it from what libvirt reports.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            InstanceState::Running | InstanceState::Stopped | InstanceState::Error
        )
    }

    /// The state an action passes through, if it may start from `self`.
    pub fn begin(self, action: InstanceAction) -> Option<InstanceState> {
        use InstanceAction as A;
        use InstanceState as S;
        // Every state against every action, no catch-all: a new state must say what it allows.
        match (self, action) {
            (S::Stopped | S::Error, A::Start) => Some(S::Starting),
            (S::Running | S::Error, A::Stop) => Some(S::Stopping),
            (S::Running, A::Reboot) => Some(S::Rebooting),
            (S::Running, A::Start) | (S::Stopped, A::Stop | A::Reboot) | (S::Error, A::Reboot) => {
                None
            }
            (
                S::Creating | S::Starting | S::Stopping | S::Rebooting | S::Migrating | S::Deleting,
                A::Start | A::Stop | A::Reboot,
            ) => None,
        }
    }

    /// Whether a write may move the instance from `self` to `to`: the lifecycle as the store
    /// applies it (a job beginning, a job's end, a live migration, a reconciliation from what
    /// libvirt reports, a placement undone). Every state lists where it may go; a new state
    /// must say so too.
    pub fn transition(self, to: InstanceState) -> Result<InstanceState, InvalidInstanceTransition> {
        use InstanceState as S;
        let allowed: &[S] = match self {
            S::Creating => &[S::Running, S::Error],
            S::Running => &[
                S::Stopping,
                S::Rebooting,
                S::Migrating,
                S::Deleting,
                S::Stopped,
                S::Error,
            ],
            S::Stopped => &[S::Starting, S::Deleting, S::Running, S::Error],
            S::Error => &[
                S::Starting,
                S::Stopping,
                S::Deleting,
                S::Running,
                S::Stopped,
            ],
            // A start whose placement is undone goes back to where it began (stopped or error).
            S::Starting => &[S::Running, S::Error, S::Stopped],
            S::Stopping => &[S::Stopped, S::Error],
            S::Rebooting => &[S::Running, S::Error],
            // A migration ends running, on its target or still on its source.
            S::Migrating => &[S::Running],
            S::Deleting => &[S::Error],
        };
        if allowed.contains(&to) {
            Ok(to)
        } else {
            Err(InvalidInstanceTransition { from: self, to })
        }
    }

    /// Deleting is allowed from every state but the ones a job is still working in.
    pub fn may_delete(self) -> bool {
        self.is_settled()
    }
}

impl InstanceAction {
    /// Where a successful action leaves the instance.
    pub fn done(self) -> InstanceState {
        match self {
            InstanceAction::Start | InstanceAction::Reboot => InstanceState::Running,
            InstanceAction::Stop => InstanceState::Stopped,
        }
    }
}

pub const MAX_VCPUS: u32 = 256;
pub const MIN_MEMORY_BYTES: u64 = 64 << 20;
pub const MAX_MEMORY_BYTES: u64 = 4 << 40;
pub const MAX_DISK_BYTES: u64 = 64 << 40;
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;
/// How long a stop waits for the guest to shut down before forcing it off, by default.
pub const DEFAULT_STOP_TIMEOUT_S: u64 = 60;
pub const MAX_STOP_TIMEOUT_S: u64 = 3600;

/// The name a libvirt domain of a plinth instance carries: the instance id itself.
pub fn domain_name(instance_id: &str) -> &str {
    instance_id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_start_only_from_their_states() {
        use InstanceAction as A;
        use InstanceState as S;
        assert_eq!(S::Stopped.begin(A::Start), Some(S::Starting));
        assert_eq!(S::Running.begin(A::Start), None);
        assert_eq!(S::Running.begin(A::Stop), Some(S::Stopping));
        assert_eq!(S::Stopped.begin(A::Reboot), None);
        assert_eq!(S::Creating.begin(A::Stop), None);
        assert!(!S::Deleting.may_delete());
        assert!(S::Error.may_delete());
        assert_eq!(A::Reboot.done(), S::Running);
    }

    /// The whole table: each state against each action, read as a row of the lifecycle.
    #[test]
    fn every_state_and_action() {
        use InstanceAction as A;
        use InstanceState as S;
        let table: [(S, [Option<S>; 3]); 9] = [
            //              start            stop             reboot
            (S::Creating, [None, None, None]),
            (S::Running, [None, Some(S::Stopping), Some(S::Rebooting)]),
            (S::Stopped, [Some(S::Starting), None, None]),
            (S::Starting, [None, None, None]),
            (S::Stopping, [None, None, None]),
            (S::Rebooting, [None, None, None]),
            (S::Migrating, [None, None, None]),
            (S::Deleting, [None, None, None]),
            (S::Error, [Some(S::Starting), Some(S::Stopping), None]),
        ];
        for (state, row) in table {
            for (action, want) in [A::Start, A::Stop, A::Reboot].into_iter().zip(row) {
                assert_eq!(state.begin(action), want, "{state} + {action}");
            }
        }
    }

    /// The whole state table: for each state, every state, whether a write may go there.
    #[test]
    fn every_state_change() {
        use InstanceState as S;
        const ALL: [S; 9] = [
            S::Creating,
            S::Running,
            S::Stopped,
            S::Starting,
            S::Stopping,
            S::Rebooting,
            S::Migrating,
            S::Deleting,
            S::Error,
        ];
        let (o, x) = (false, true);
        let table: [(S, [bool; 9]); 9] = [
            //          creat  run  stopd start stopg reboo migr  del   err
            (S::Creating, [o, x, o, o, o, o, o, o, x]),
            (S::Running, [o, o, x, o, x, x, x, x, x]),
            (S::Stopped, [o, x, o, x, o, o, o, x, x]),
            (S::Starting, [o, x, x, o, o, o, o, o, x]),
            (S::Stopping, [o, o, x, o, o, o, o, o, x]),
            (S::Rebooting, [o, x, o, o, o, o, o, o, x]),
            (S::Migrating, [o, x, o, o, o, o, o, o, o]),
            (S::Deleting, [o, o, o, o, o, o, o, o, x]),
            (S::Error, [o, x, x, x, x, o, o, x, o]),
        ];
        assert_eq!(ALL.len(), S::ALL.len());
        for (from, row) in table {
            for (to, allowed) in ALL.into_iter().zip(row) {
                let got = from.transition(to);
                assert_eq!(got.is_ok(), allowed, "{from} -> {to}");
                if let Err(e) = got {
                    assert_eq!((e.from, e.to), (from, to));
                }
            }
        }
        // Every state an action begins is one the table lets it reach.
        for from in ALL {
            for action in InstanceAction::ALL {
                if let Some(to) = from.begin(*action) {
                    assert!(from.transition(to).is_ok(), "{from} + {action}");
                }
            }
        }
    }
}
