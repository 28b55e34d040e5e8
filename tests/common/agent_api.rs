//! Calling agents as the coordinator does: its mTLS client ([`AgentClient`]) with the
//! coordinator's own client certificate from its data directory, and an agent's endpoint
//! as the hosts API and the agent's facts report it.

use crate::Region;
use anyhow::Context;
use plinth_coordinator::agents::AgentClient;
use plinth_coordinator::agents::AgentEndpoint;

/// The coordinator's agent client: its CA, and the `coordinator` certificate `init` made.
pub fn coordinator_client(region: &Region) -> anyhow::Result<AgentClient> {
    let data = region.data_dir();
    let read = |name: &str| {
        std::fs::read_to_string(data.join(name)).with_context(|| format!("reading {name}"))
    };
    Ok(AgentClient::new(
        &read("ca.pem")?,
        &read("client.pem")?,
        &read("client.key")?,
    )?)
}

/// Where the agent of `host` listens (`agent_api` of `GET /v1/hosts/{id}`), with the
/// migration URIs its facts offer.
pub async fn endpoint(
    region: &Region,
    client: &AgentClient,
    host: &str,
) -> anyhow::Result<AgentEndpoint> {
    let detail = region.host(host).await?;
    let api = detail["agent_api"]
        .as_str()
        .with_context(|| format!("host {host} has no agent_api yet: {detail}"))?;
    let (ip, port) = api
        .trim_start_matches("https://")
        .rsplit_once(':')
        .with_context(|| format!("agent_api '{api}' is not https://IP:PORT"))?;
    let mut ep = AgentEndpoint {
        ip: ip.trim_matches(['[', ']']).to_string(),
        port: Some(port.parse().with_context(|| format!("port in '{api}'"))?),
        online: true,
        migration_uri: None,
        migrate_uri: None,
        shared_storage: None,
    };
    let facts = client.facts(&ep).await?.facts;
    ep.migration_uri = facts.migration_uri;
    ep.migrate_uri = facts.migrate_uri;
    ep.shared_storage = facts.shared_storage;
    Ok(ep)
}
