//! The three bare-metal state machines of SPEC §4, each a table: the server (`preparing`
//! until the agent has reached the BMC, then `running` or `failed`; operations other than
//! delete need `running`), its chassis power as the BMC reports it, and its serial console.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaremetalState {
    Preparing,
    Running,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaremetalEvent {
    /// The BMC answered with valid credentials; FRU and power were read.
    Prepared,
    /// Preparation failed; the reason is recorded beside.
    PrepareFailed,
    /// An operation (power, console, update) that needs a prepared server.
    Operate,
}

impl BaremetalEvent {
    pub const ALL: [BaremetalEvent; 3] = [
        BaremetalEvent::Prepared,
        BaremetalEvent::PrepareFailed,
        BaremetalEvent::Operate,
    ];
}

impl fmt::Display for BaremetalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BaremetalEvent::Prepared => "prepared",
            BaremetalEvent::PrepareFailed => "prepare failed",
            BaremetalEvent::Operate => "this operation",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bare-metal server is {from}; {event} needs {needs}")]
pub struct InvalidBaremetalTransition {
    pub from: BaremetalState,
    pub event: BaremetalEvent,
    pub needs: BaremetalState,
}

impl BaremetalState {
    pub const ALL: [BaremetalState; 3] = [
        BaremetalState::Preparing,
        BaremetalState::Running,
        BaremetalState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BaremetalState::Preparing => "preparing",
            BaremetalState::Running => "running",
            BaremetalState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<BaremetalState> {
        BaremetalState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn choices() -> &'static str {
        "preparing, running or failed"
    }

    pub fn transition(
        self,
        event: BaremetalEvent,
    ) -> Result<BaremetalState, InvalidBaremetalTransition> {
        use BaremetalEvent as E;
        use BaremetalState as S;
        let next = match (self, event) {
            (S::Preparing, E::Prepared) => Some(S::Running),
            (S::Preparing, E::PrepareFailed) => Some(S::Failed),
            (S::Running, E::Operate) => Some(S::Running),
            (S::Running | S::Failed, E::Prepared)
            | (S::Running | S::Failed, E::PrepareFailed)
            | (S::Preparing | S::Failed, E::Operate) => None,
        };
        next.ok_or(InvalidBaremetalTransition {
            from: self,
            event,
            needs: match event {
                E::Prepared | E::PrepareFailed => S::Preparing,
                E::Operate => S::Running,
            },
        })
    }
}

impl fmt::Display for BaremetalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The chassis power as last read from the BMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
    Unknown,
}

/// What the BMC said about the chassis power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerEvent {
    /// The chassis reads on (preparation, a power action's answer, or the sync).
    ReadOn,
    /// The chassis reads off.
    ReadOff,
    /// The BMC could not be read (the sync's poll failed).
    Unreadable,
}

impl PowerEvent {
    pub const ALL: [PowerEvent; 3] = [
        PowerEvent::ReadOn,
        PowerEvent::ReadOff,
        PowerEvent::Unreadable,
    ];

    /// The reading of a chassis that is on (`true`) or off.
    pub fn read(on: bool) -> PowerEvent {
        if on {
            PowerEvent::ReadOn
        } else {
            PowerEvent::ReadOff
        }
    }
}

impl fmt::Display for PowerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerEvent::ReadOn => "a reading of on",
            PowerEvent::ReadOff => "a reading of off",
            PowerEvent::Unreadable => "a failed reading",
        })
    }
}

impl PowerState {
    pub const ALL: [PowerState; 3] = [PowerState::On, PowerState::Off, PowerState::Unknown];

    /// The power after `event`. The BMC is the truth, so every reading is taken whatever
    /// plinth saw before; the table is here so that every writer agrees on it.
    pub fn transition(self, event: PowerEvent) -> PowerState {
        use PowerEvent as E;
        use PowerState as S;
        match (self, event) {
            (S::On | S::Off | S::Unknown, E::ReadOn) => S::On,
            (S::On | S::Off | S::Unknown, E::ReadOff) => S::Off,
            (S::On | S::Off | S::Unknown, E::Unreadable) => S::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<PowerState> {
        PowerState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn from_on(on: bool) -> PowerState {
        if on { PowerState::On } else { PowerState::Off }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The serial console (KVM column of the list): `active` while SOL is activated for a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleState {
    Inactive,
    Active,
}

/// What happened to a server's serial console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsoleEvent {
    /// The BMC activated serial over LAN for a viewer (again, when it was active: a new URL).
    Activated,
    /// SOL was deactivated (or the server is no longer running) and the viewer closed.
    Released,
}

impl ConsoleEvent {
    pub const ALL: [ConsoleEvent; 2] = [ConsoleEvent::Activated, ConsoleEvent::Released];
}

impl fmt::Display for ConsoleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConsoleEvent::Activated => "activating the console",
            ConsoleEvent::Released => "releasing the console",
        })
    }
}

impl ConsoleState {
    pub const ALL: [ConsoleState; 2] = [ConsoleState::Inactive, ConsoleState::Active];

    /// The console after `event`: preparing a console again hands out a new URL, and
    /// releasing one that is inactive is harmless, so every pair is allowed.
    pub fn transition(self, event: ConsoleEvent) -> ConsoleState {
        use ConsoleEvent as E;
        use ConsoleState as S;
        match (self, event) {
            (S::Inactive | S::Active, E::Activated) => S::Active,
            (S::Inactive | S::Active, E::Released) => S::Inactive,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleState::Inactive => "inactive",
            ConsoleState::Active => "active",
        }
    }

    pub fn parse(text: &str) -> Option<ConsoleState> {
        ConsoleState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for ConsoleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/baremetal/{id}/power` actions (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    /// Soft: ACPI shutdown through the OS.
    Off,
    /// Soft off, then on once the chassis is off; with `hard`, a hard reset.
    Reboot,
    /// Power down at once.
    ForceOff,
    Cycle,
}

impl PowerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Reboot => "reboot",
            PowerAction::ForceOff => "force_off",
            PowerAction::Cycle => "cycle",
        }
    }
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every (state, event) pair of the server's table, with its outcome: the next state, or
    /// the state the event needs.
    #[test]
    fn server_table_whole() {
        use BaremetalEvent as E;
        use BaremetalState as S;
        let table = [
            (
                "prepared settles",
                S::Preparing,
                E::Prepared,
                Ok(S::Running),
            ),
            (
                "failure settles",
                S::Preparing,
                E::PrepareFailed,
                Ok(S::Failed),
            ),
            (
                "not prepared yet",
                S::Preparing,
                E::Operate,
                Err(S::Running),
            ),
            ("prepared twice", S::Running, E::Prepared, Err(S::Preparing)),
            (
                "running fails late",
                S::Running,
                E::PrepareFailed,
                Err(S::Preparing),
            ),
            ("running operates", S::Running, E::Operate, Ok(S::Running)),
            (
                "failed, then prepared",
                S::Failed,
                E::Prepared,
                Err(S::Preparing),
            ),
            (
                "failed twice",
                S::Failed,
                E::PrepareFailed,
                Err(S::Preparing),
            ),
            ("failed operates", S::Failed, E::Operate, Err(S::Running)),
        ];
        let pairs: HashSet<_> = table.iter().map(|(_, s, e, _)| (*s, *e)).collect();
        assert_eq!(pairs.len(), S::ALL.len() * E::ALL.len(), "every pair once");
        for (label, from, event, want) in table {
            let got = from.transition(event).map_err(|e| {
                assert_eq!((e.from, e.event), (from, event), "{label}");
                e.needs
            });
            assert_eq!(got, want, "{label}: {from} + {event}");
        }
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn power_table_whole() {
        use PowerEvent as E;
        use PowerState as S;
        let table = [
            ("on stays on", S::On, E::ReadOn, S::On),
            ("on goes off", S::On, E::ReadOff, S::Off),
            ("on unreadable", S::On, E::Unreadable, S::Unknown),
            ("off comes on", S::Off, E::ReadOn, S::On),
            ("off stays off", S::Off, E::ReadOff, S::Off),
            ("off unreadable", S::Off, E::Unreadable, S::Unknown),
            ("first reading on", S::Unknown, E::ReadOn, S::On),
            ("first reading off", S::Unknown, E::ReadOff, S::Off),
            ("still unreadable", S::Unknown, E::Unreadable, S::Unknown),
        ];
        let pairs: HashSet<_> = table.iter().map(|(_, s, e, _)| (*s, *e)).collect();
        assert_eq!(pairs.len(), S::ALL.len() * E::ALL.len(), "every pair once");
        for (label, from, event, want) in table {
            assert_eq!(from.transition(event), want, "{label}");
        }
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!((E::read(true), E::read(false)), (E::ReadOn, E::ReadOff));
    }

    #[test]
    fn console_table_whole() {
        use ConsoleEvent as E;
        use ConsoleState as S;
        let table = [
            ("activate", S::Inactive, E::Activated, S::Active),
            ("a new URL", S::Active, E::Activated, S::Active),
            ("release inactive", S::Inactive, E::Released, S::Inactive),
            ("release", S::Active, E::Released, S::Inactive),
        ];
        let pairs: HashSet<_> = table.iter().map(|(_, s, e, _)| (*s, *e)).collect();
        assert_eq!(pairs.len(), S::ALL.len() * E::ALL.len(), "every pair once");
        for (label, from, event, want) in table {
            assert_eq!(from.transition(event), want, "{label}");
        }
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }
}
