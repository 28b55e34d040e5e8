//! The bare-metal server state machine of SPEC §4, as a table: `preparing` until the agent
//! has reached the BMC, then `running` or `failed`. Operations other than delete need
//! `running`.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaremetalEvent {
    /// The BMC answered with valid credentials; FRU and power were read.
    Prepared,
    /// Preparation failed; the reason is recorded beside.
    PrepareFailed,
    /// An operation (power, console, update) that needs a prepared server.
    Operate,
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

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<PowerState> {
        [PowerState::On, PowerState::Off, PowerState::Unknown]
            .into_iter()
            .find(|s| s.as_str() == text)
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

impl ConsoleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleState::Inactive => "inactive",
            ConsoleState::Active => "active",
        }
    }

    pub fn parse(text: &str) -> Option<ConsoleState> {
        [ConsoleState::Inactive, ConsoleState::Active]
            .into_iter()
            .find(|s| s.as_str() == text)
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

    #[test]
    fn only_preparing_settles_and_only_running_operates() {
        use BaremetalEvent as E;
        use BaremetalState as S;
        let cases = [
            (S::Preparing, E::Prepared, Ok(S::Running)),
            (S::Preparing, E::PrepareFailed, Ok(S::Failed)),
            (S::Running, E::Operate, Ok(S::Running)),
            (S::Preparing, E::Operate, Err(S::Running)),
            (S::Failed, E::Operate, Err(S::Running)),
            (S::Running, E::Prepared, Err(S::Preparing)),
            (S::Failed, E::PrepareFailed, Err(S::Preparing)),
        ];
        for (from, event, want) in cases {
            let got = from.transition(event).map_err(|e| e.needs);
            assert_eq!(got, want, "{from} + {event}");
        }
        for s in BaremetalState::ALL {
            assert_eq!(BaremetalState::parse(s.as_str()), Some(s));
        }
    }
}
