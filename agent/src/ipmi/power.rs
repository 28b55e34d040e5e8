//! The power policy: SPEC §4's power actions in chassis-control terms, including the soft
//! reboot's wait for the OS to power off, which has a deadline of its own.

use super::commands::ChassisControl;
use super::{Ipmi, IpmiError, Target};
use plinth_common::baremetal::PowerAction;
use std::time::Duration;
use tokio::time::Instant;

/// How long a soft reboot waits for the OS to power the chassis off before giving up.
pub const SOFT_OFF_WAIT: Duration = Duration::from_secs(300);
const SOFT_OFF_POLL: Duration = Duration::from_secs(1);

async fn power_on(ipmi: &Ipmi, t: &Target) -> Result<bool, IpmiError> {
    Ok(ipmi
        .run(t, |s| Box::pin(s.chassis_status()))
        .await?
        .power_on)
}

async fn control(ipmi: &Ipmi, t: &Target, c: ChassisControl) -> Result<(), IpmiError> {
    ipmi.run(t, |s| Box::pin(s.chassis_control(c))).await
}

/// Does `action` (`hard` makes a reboot a reset); answers the power state after it.
pub async fn act(
    ipmi: &Ipmi,
    t: &Target,
    action: PowerAction,
    hard: bool,
) -> Result<bool, IpmiError> {
    match action {
        PowerAction::On => control(ipmi, t, ChassisControl::PowerUp).await?,
        PowerAction::Off => control(ipmi, t, ChassisControl::SoftShutdown).await?,
        PowerAction::ForceOff => control(ipmi, t, ChassisControl::PowerDown).await?,
        // Cycling a machine that is off would leave it off on many BMCs: it means "on" then.
        PowerAction::Cycle if !power_on(ipmi, t).await? => {
            control(ipmi, t, ChassisControl::PowerUp).await?
        }
        PowerAction::Cycle => control(ipmi, t, ChassisControl::PowerCycle).await?,
        PowerAction::Reboot if hard => control(ipmi, t, ChassisControl::HardReset).await?,
        PowerAction::Reboot => {
            if power_on(ipmi, t).await? {
                control(ipmi, t, ChassisControl::SoftShutdown).await?;
                let until = Instant::now() + SOFT_OFF_WAIT;
                // The lock is taken per poll: other operations on this BMC go on meanwhile.
                while power_on(ipmi, t).await? {
                    if Instant::now() >= until {
                        return Err(IpmiError::SoftOffTimeout {
                            waited: SOFT_OFF_WAIT,
                        });
                    }
                    tokio::time::sleep(SOFT_OFF_POLL).await;
                }
            }
            control(ipmi, t, ChassisControl::PowerUp).await?
        }
    }
    power_on(ipmi, t).await
}
