//! What a starting coordinator picks up: every resource's jobs that the last run left
//! running. Each job is an operation row written before the work starts.

use crate::state::AppState;

/// Resumes (or fails, where the client is gone) what the last run left running.
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    crate::images::resume(st).await?;
    crate::instances::jobs::resume(st).await?;
    crate::baremetal::prepare::resume(st).await?;
    crate::baremetal::power::resume(st).await?;
    crate::maintenance::drain::resume(st).await?;
    Ok(())
}
