//! Agents whose sysfs is a devices fixture tree (`plinth_agent::devices::fixture`): USB
//! devices, GPUs and vGPUs reach the API with their heartbeats.

use crate::{Agent, Region, wait_for};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// How long the heartbeat after an agent's start may take to bring its devices.
const LISTED: Duration = Duration::from_secs(120);

/// An agent on `ip` in `cluster` reading its devices from the fixture under `root` (plus
/// `extra` flags), online.
pub async fn agent_on_fixture(
    region: &Region,
    ip: &str,
    cluster: &str,
    libvirt_uri: &str,
    root: &Path,
    extra: &[&str],
) -> anyhow::Result<Agent> {
    let mut args = vec![
        "--sysfs-root".to_string(),
        root.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let agent = region
        .start_agent_with_args(ip, cluster, libvirt_uri, args)
        .await?;
    region.wait_agent(&agent.host_id, "online").await?;
    Ok(agent)
}

/// `GET /v1/hosts/{host}/{what}` items, once the heartbeat has brought some.
pub async fn listed(region: &Region, host: &str, what: &str) -> anyhow::Result<Vec<Value>> {
    wait_for(&format!("{what} of {host}"), LISTED, || async {
        let (status, body) = region.get(&format!("/v1/hosts/{host}/{what}")).await?;
        anyhow::ensure!(status == 200, "GET {what}: {status} {body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        Ok((!items.is_empty()).then_some(items))
    })
    .await
}
