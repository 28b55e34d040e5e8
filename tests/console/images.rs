//! The images screen's workflows in a real browser (see main.rs): a region with one agent
//! (127.0.0.220), two tenants, a local HTTP server that trickles a qcow2 with data (so the
//! import's progress is seen), a file to upload, an image an instance boots from (a refused
//! delete names it), and the other tenant's private and public images (what a tenant sees).

use super::BrowserEnv;
use plinth_e2e::instances::{self as inst, MIB};
use plinth_e2e::{Region, servers};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// A qcow2 whose clusters hold `mib` MiB of data (a blank one is a few KiB: no transfer to
/// watch), made with qemu-img from a raw file of a non-zero pattern.
fn qcow2_with_data(dir: &std::path::Path, name: &str, mib: usize) -> anyhow::Result<()> {
    let raw = dir.join(format!("{name}.raw"));
    let data: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(&raw, data)?;
    let ok = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(dir.join(name))
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img convert failed");
    std::fs::remove_file(raw)?;
    Ok(())
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn images_screen_in_a_real_browser() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let agent = region.start_agent("127.0.0.220", "alpha").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let a = inst::tenant(&region, "images-a@example.com").await?;
    let b = inst::tenant(&region, "images-b@example.com").await?;

    // What the browser imports (over HTTP, slowly) and uploads (from disk).
    let files = region.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    qcow2_with_data(&files, "web.qcow2", 6)?;
    let http = servers::http(&files, &region.dir.path().join("http.log"))?;
    let upload = region.dir.path().join("upload.qcow2");
    qcow2_with_data(region.dir.path(), "upload.qcow2", 2)?;

    // An image an instance of A boots from: deleting it is refused, naming the instance.
    let in_use = inst::qcow2_image(&region, &a.id, "in-use", "64M").await?;
    let (status, vm) = inst::create(
        &region,
        &a.token,
        "web-1",
        &id(&in_use),
        64 * MIB,
        json!({}),
    )
    .await?;
    anyhow::ensure!(status == 202, "create instance: {status} {vm}");
    inst::expect_state(&region, &id(&vm), "running", Duration::from_secs(60)).await?;

    // B's private image (A never sees it) and a public one (A does).
    let b_private = inst::qcow2_image(&region, &b.id, "b-private", "64M").await?;
    let b_public = inst::qcow2_image(&region, &b.id, "b-public", "64M").await?;
    let (status, body) = region
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/images/{}", id(&b_public)),
            Some(&region.admin_token),
            Some(json!({"visibility": "public"})),
        )
        .await?;
    anyhow::ensure!(status == 200, "make b-public public: {status} {body}");

    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_TENANT_TOKEN", &a.token)
        .set("CONSOLE_TENANT_ID", &a.id)
        .set(
            "CONSOLE_IMAGE_URL",
            format!("http://127.0.0.1:{}/slow/web.qcow2", http.port),
        )
        .set("CONSOLE_UPLOAD_FILE", upload.display().to_string())
        .set("CONSOLE_IN_USE_IMAGE", id(&in_use))
        .set("CONSOLE_INSTANCE_ID", id(&vm))
        .set("CONSOLE_B_PRIVATE", id(&b_private))
        .set("CONSOLE_B_PUBLIC", id(&b_public));
    env.run(&["tests/images.mjs"]).await
}
