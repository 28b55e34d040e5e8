//! The baremetal screen's workflows in a real browser (see main.rs): a region whose agent
//! (127.0.0.215) reaches `ipmi_sim` BMCs on 127.0.0.216–219, the first with recorded Redfish
//! answers beside it (the detail's hardware); tenant A's servers are added and imported
//! through the UI, tenant B has one of its own (added through the API) to show that each
//! tenant sees only its own.

use super::BrowserEnv;
use plinth_e2e::baremetal::{SECRET, Seen, add_body, region_with, settled};
use plinth_e2e::bmc::{SimBmc, recorded_redfish};
use plinth_e2e::instances::tenant;

#[tokio::test]
async fn baremetal_screen_adds_powers_consoles_imports_updates_and_removes() -> anyhow::Result<()> {
    let region = region_with(&["--baremetal-health-interval", "1s"]).await?;
    // .216 is added through the UI; .217 and .218 are the CSV's; .219 is tenant B's.
    let sims = ["127.0.0.216", "127.0.0.217", "127.0.0.218", "127.0.0.219"]
        .iter()
        .map(|ip| SimBmc::start_on(ip, SECRET))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let redfish_dir = region.dir.path().join("redfish");
    std::fs::create_dir_all(&redfish_dir)?;
    let _redfish = recorded_redfish(&redfish_dir, &sims[0].ip, SECRET)?;
    let ca_file = redfish_dir.join("bmc-ca.pem").display().to_string();
    let agent = region
        .start_agent_with_flags("127.0.0.215", "az1", &["--redfish-ca-file", &ca_file])
        .await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let a = tenant(&region, "bm-a@example.com").await?;
    let b = tenant(&region, "bm-b@example.com").await?;
    let mut seen = Seen::default();
    let body = add_body("b-own", &sims[3].ip, SECRET, None);
    let (status, v) = seen
        .post_as(&region, &b.token, "/v1/baremetal", body)
        .await?;
    anyhow::ensure!(status == 202, "tenant B adds its server: {status} {v}");
    let b_server = v["id"].as_str().unwrap_or_default().to_string();
    anyhow::ensure!(settled(&region, &b_server).await?["state"] == "running");

    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_TENANT_TOKEN", &a.token)
        .set("CONSOLE_TENANT_ID", &a.id)
        .set("BM_TENANT_EMAIL", "bm-a@example.com")
        .set("BM_OTHER_TOKEN", &b.token)
        .set("BM_OTHER_SERVER", &b_server)
        .set("BM_SECRET", SECRET)
        .set(
            "BM_SIMS",
            sims.iter()
                .map(|s| s.ip.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    env.run(&["tests/baremetal.mjs"]).await?;
    drop(sims);
    Ok(())
}
