//! The state tables of a drain and of one instance's move (SPEC §2). The coordinator's store
//! applies each change as a compare-and-swap on the state a table started from, so a change
//! that lost a race is refused instead of overwriting the winner.

use crate::api::{MoveStatus, OperationStatus};
use std::fmt;

/// What happens to one instance's move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveEvent {
    /// An attempt took its target's claim; the source agent migrates.
    Claim,
    /// The attempt ended with the instance running on its target.
    Moved,
    /// The attempt failed with the instance on its source; another may follow.
    Retry,
    /// The attempt failed and no other follows: the instance stays.
    GiveUp,
    /// A waiting move will not happen (the instance changed, no host can take it).
    Stay,
    /// A stopped instance left the host without moving.
    Release,
}

impl MoveEvent {
    pub const ALL: [MoveEvent; 6] = [
        MoveEvent::Claim,
        MoveEvent::Moved,
        MoveEvent::Retry,
        MoveEvent::GiveUp,
        MoveEvent::Stay,
        MoveEvent::Release,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MoveEvent::Claim => "claim",
            MoveEvent::Moved => "moved",
            MoveEvent::Retry => "retry",
            MoveEvent::GiveUp => "give up",
            MoveEvent::Stay => "stay",
            MoveEvent::Release => "release",
        }
    }

    /// The one status this event starts from.
    pub fn required_status(self) -> MoveStatus {
        match self {
            MoveEvent::Claim | MoveEvent::Stay | MoveEvent::Release => MoveStatus::Pending,
            MoveEvent::Moved | MoveEvent::Retry | MoveEvent::GiveUp => MoveStatus::Migrating,
        }
    }
}

impl fmt::Display for MoveEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("move is {from}; {event} needs {}", .event.required_status())]
pub struct InvalidMoveTransition {
    pub from: MoveStatus,
    pub event: MoveEvent,
}

impl MoveStatus {
    /// Where `event` takes a move in this status; every pair is listed.
    pub fn transition(self, event: MoveEvent) -> Result<MoveStatus, InvalidMoveTransition> {
        use MoveEvent as E;
        use MoveStatus as S;
        let next = match (self, event) {
            (S::Pending, E::Claim) => Some(S::Migrating),
            (S::Pending, E::Stay) => Some(S::Stayed),
            (S::Pending, E::Release) => Some(S::Released),
            (S::Migrating, E::Moved) => Some(S::Moved),
            (S::Migrating, E::Retry) => Some(S::Pending),
            (S::Migrating, E::GiveUp) => Some(S::Stayed),
            (S::Pending, E::Moved | E::Retry | E::GiveUp)
            | (S::Migrating, E::Claim | E::Stay | E::Release)
            | (
                S::Moved | S::Released | S::Stayed,
                E::Claim | E::Moved | E::Retry | E::GiveUp | E::Stay | E::Release,
            ) => None,
        };
        next.ok_or(InvalidMoveTransition { from: self, event })
    }
}

/// How a drain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEvent {
    /// Every instance left the host.
    Completed,
    /// Something stayed (or the drain could not begin); the report says why.
    Incomplete,
}

impl DrainEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainEvent::Completed => "drain completed",
            DrainEvent::Incomplete => "drain incomplete",
        }
    }
}

impl fmt::Display for DrainEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("drain is {from:?}; {event} needs it running")]
pub struct InvalidDrainTransition {
    pub from: OperationStatus,
    pub event: DrainEvent,
}

/// Where `event` takes a drain whose operation is `from`; every pair is listed.
pub fn drain_transition(
    from: OperationStatus,
    event: DrainEvent,
) -> Result<OperationStatus, InvalidDrainTransition> {
    use DrainEvent as E;
    use OperationStatus as S;
    let next = match (from, event) {
        (S::Running, E::Completed) => Some(S::Succeeded),
        (S::Running, E::Incomplete) => Some(S::Failed),
        (S::Succeeded | S::Failed, E::Completed | E::Incomplete) => None,
    };
    next.ok_or(InvalidDrainTransition { from, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole move table: each status against each event.
    #[test]
    fn every_move_status_and_event() {
        use MoveStatus as S;
        let table: [(S, [Option<S>; 6]); 5] = [
            //          claim             moved          retry          give up        stay           release
            (
                S::Pending,
                [
                    Some(S::Migrating),
                    None,
                    None,
                    None,
                    Some(S::Stayed),
                    Some(S::Released),
                ],
            ),
            (
                S::Migrating,
                [
                    None,
                    Some(S::Moved),
                    Some(S::Pending),
                    Some(S::Stayed),
                    None,
                    None,
                ],
            ),
            (S::Moved, [None; 6]),
            (S::Released, [None; 6]),
            (S::Stayed, [None; 6]),
        ];
        assert_eq!(table.len(), S::ALL.len());
        for (from, row) in table {
            for (event, want) in MoveEvent::ALL.into_iter().zip(row) {
                let got = from.transition(event);
                assert_eq!(got.ok(), want, "{from} + {event}");
                if want.is_none() {
                    assert_eq!(got.err().map(|e| e.from), Some(from), "{from} + {event}");
                } else {
                    assert_eq!(event.required_status(), from, "{event}");
                }
            }
        }
        // Final statuses are exactly the ones nothing leaves.
        for from in S::ALL {
            let stuck = MoveEvent::ALL.iter().all(|e| from.transition(*e).is_err());
            assert_eq!(stuck, from.is_final(), "{from}");
        }
    }

    /// The whole drain table: each operation status against each way a drain ends.
    #[test]
    fn every_drain_status_and_event() {
        use DrainEvent as E;
        use OperationStatus as S;
        let cases = [
            (S::Running, E::Completed, Some(S::Succeeded)),
            (S::Running, E::Incomplete, Some(S::Failed)),
            (S::Succeeded, E::Completed, None),
            (S::Succeeded, E::Incomplete, None),
            (S::Failed, E::Completed, None),
            (S::Failed, E::Incomplete, None),
        ];
        for (from, event, want) in cases {
            assert_eq!(
                drain_transition(from, event).ok(),
                want,
                "{from:?} + {event}"
            );
        }
    }
}
