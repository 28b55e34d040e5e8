//! The admin screen's workflows in a real browser (see main.rs): a tenant with a quota, an
//! API token whose secret is shown once, an enrollment token whose command is shown (and
//! then enrolls a host here, into a cluster made in the UI), the audit log of those actions,
//! and the operations drawer following a drain's operation live.

use super::BrowserEnv;
use anyhow::Context;
use plinth_e2e::Region;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_tenants_tokens_enrollment_clusters_audit_operations() -> anyhow::Result<()> {
    super::node_modules()?;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.226", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let mark = tempfile::tempdir()?;
    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_HOST_ID", &agent.host_id)
        .set("CONSOLE_MARK", mark.path().display().to_string());
    env.run(&["tests/admin.mjs"]).await?;

    // The command the page showed enrolls a new host into the cluster made in the UI.
    let command = std::fs::read_to_string(mark.path().join("enroll-command"))?;
    let words: Vec<&str> = command.split_whitespace().collect();
    let flag = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
            .with_context(|| format!("{name} in {command:?}"))
    };
    anyhow::ensure!(
        words.first() == Some(&"plinth-agent") && words.get(1) == Some(&"enroll"),
        "the command: {command:?}"
    );
    anyhow::ensure!(
        flag("--coordinator")? == region.url,
        "the coordinator in {command:?}"
    );
    let cluster = flag("--cluster")?;
    let dir = region.dir.path().join("agent-enrolled-from-the-console");
    let (ok, out) = region.enroll(
        &dir,
        "127.0.0.227",
        &cluster,
        &flag("--token")?,
        &flag("--ca-hash")?,
    )?;
    anyhow::ensure!(ok, "enroll with the console's command: {out}");
    let (status, hosts) = region.get("/v1/hosts?limit=1000").await?;
    anyhow::ensure!(status == 200, "hosts: {status} {hosts}");
    let enrolled = hosts["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["ip"] == "127.0.0.227")
        .with_context(|| format!("the enrolled host in {hosts}"))?;
    anyhow::ensure!(enrolled["cluster_id"] == "edge-1", "{enrolled}");
    Ok(())
}
