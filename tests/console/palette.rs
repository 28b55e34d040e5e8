//! The palette screen's workflows in a real browser (see main.rs): the command palette
//! (Ctrl-K) over two hosts and a tenant's (empty) lists, `/` to the screen's search, and the
//! phone-width menu (coordinator/console/tests/palette.mjs).

use super::BrowserEnv;
use plinth_e2e::Region;

#[tokio::test]
async fn palette_finds_a_host_and_the_phone_menu_works() -> anyhow::Result<()> {
    super::node_modules()?;
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let agent = region.start_agent("127.0.0.230", "alpha").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let other = region.start_agent("127.0.0.231", "alpha").await?;
    region.wait_agent(&other.host_id, "online").await?;
    let tenant = plinth_e2e::instances::tenant(&region, "palette@example.com").await?;
    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_HOST_ID", &agent.host_id)
        .set("CONSOLE_TENANT_TOKEN", tenant.token)
        .set("CONSOLE_TENANT_ID", tenant.id);
    env.run(&["tests/palette.mjs"]).await
}
