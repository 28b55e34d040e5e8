//! The compute host state machine of SPEC §2, as a table: every legal move is one arm, and
//! everything else is an `InvalidTransition` that names where the host is and where it must be.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    Available,
    Locked,
    EnteringMaintenance,
    Maintenance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    Lock,
    Unlock,
    EnterMaintenance,
    /// Every instance left the host.
    DrainCompleted,
    /// Some instance could not be moved; the drain report says why.
    DrainIncomplete,
    ExitMaintenance,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host is {from}; {event} needs {needs}")]
pub struct InvalidTransition {
    pub from: HostState,
    pub event: HostEvent,
    pub needs: HostState,
}

impl HostState {
    pub const ALL: [HostState; 4] = [
        HostState::Available,
        HostState::Locked,
        HostState::EnteringMaintenance,
        HostState::Maintenance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Available => "available",
            HostState::Locked => "locked",
            HostState::EnteringMaintenance => "entering_maintenance",
            HostState::Maintenance => "maintenance",
        }
    }

    pub fn parse(text: &str) -> Option<HostState> {
        HostState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether new instances may be placed here.
    pub fn accepts_instances(self) -> bool {
        matches!(self, HostState::Available)
    }

    pub fn transition(self, event: HostEvent) -> Result<HostState, InvalidTransition> {
        use HostEvent as E;
        use HostState as S;
        let next = match (self, event) {
            (S::Available, E::Lock) => Some(S::Locked),
            (S::Locked, E::Unlock) => Some(S::Available),
            (S::Locked, E::EnterMaintenance) => Some(S::EnteringMaintenance),
            (S::EnteringMaintenance, E::DrainCompleted) => Some(S::Maintenance),
            (S::EnteringMaintenance, E::DrainIncomplete) => Some(S::Locked),
            (S::Maintenance, E::ExitMaintenance) => Some(S::Locked),
            (S::Available | S::EnteringMaintenance | S::Maintenance, E::Unlock)
            | (S::Locked | S::EnteringMaintenance | S::Maintenance, E::Lock)
            | (S::Available | S::EnteringMaintenance | S::Maintenance, E::EnterMaintenance)
            | (S::Available | S::Locked | S::Maintenance, E::DrainCompleted)
            | (S::Available | S::Locked | S::Maintenance, E::DrainIncomplete)
            | (S::Available | S::Locked | S::EnteringMaintenance, E::ExitMaintenance) => None,
        };
        next.ok_or(InvalidTransition {
            from: self,
            event,
            needs: event.required_state(),
        })
    }
}

impl HostEvent {
    /// The one state this event starts from.
    pub fn required_state(self) -> HostState {
        match self {
            HostEvent::Lock => HostState::Available,
            HostEvent::Unlock => HostState::Locked,
            HostEvent::EnterMaintenance => HostState::Locked,
            HostEvent::DrainCompleted | HostEvent::DrainIncomplete => {
                HostState::EnteringMaintenance
            }
            HostEvent::ExitMaintenance => HostState::Maintenance,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostEvent::Lock => "lock",
            HostEvent::Unlock => "unlock",
            HostEvent::EnterMaintenance => "entering maintenance",
            HostEvent::DrainCompleted => "completing a drain",
            HostEvent::DrainIncomplete => "ending an incomplete drain",
            HostEvent::ExitMaintenance => "exiting maintenance",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HostEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostEvent as E;
    use HostState as S;

    const EVENTS: [HostEvent; 6] = [
        E::Lock,
        E::Unlock,
        E::EnterMaintenance,
        E::DrainCompleted,
        E::DrainIncomplete,
        E::ExitMaintenance,
    ];

    #[test]
    fn exactly_the_spec_transitions_are_legal() {
        let legal = [
            (S::Available, E::Lock, S::Locked),
            (S::Locked, E::Unlock, S::Available),
            (S::Locked, E::EnterMaintenance, S::EnteringMaintenance),
            (S::EnteringMaintenance, E::DrainCompleted, S::Maintenance),
            (S::EnteringMaintenance, E::DrainIncomplete, S::Locked),
            (S::Maintenance, E::ExitMaintenance, S::Locked),
        ];
        for from in S::ALL {
            for event in EVENTS {
                let want = legal
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (from.transition(event), want) {
                    (Ok(to), Some(w)) => assert_eq!(to, w, "{from} --{event}-->"),
                    (Err(err), None) => {
                        assert_eq!(err.from, from);
                        assert_eq!(err.needs, event.required_state());
                        assert_ne!(err.needs, from, "{from} --{event}--> names a wrong need");
                    }
                    (got, want) => panic!("{from} --{event}-->: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn message_names_both_states() {
        let err = S::Available
            .transition(E::EnterMaintenance)
            .expect_err("available cannot enter maintenance");
        assert_eq!(
            err.to_string(),
            "host is available; entering maintenance needs locked"
        );
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).ok(), Some(format!("\"{s}\"")));
        }
        assert_eq!(S::parse("bogus"), None);
    }
}
