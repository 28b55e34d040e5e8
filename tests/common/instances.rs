//! Helpers for instance tests: a tenant with a token, a qcow2 image uploaded into the
//! repository, creating instances and waiting for them to settle.

use crate::{Region, wait_for};
use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const MIB: u64 = 1 << 20;
pub const PASSWORD: &str = "correct horse battery";

/// A tenant and a token that acts as it.
pub struct Tenant {
    pub id: String,
    pub token: String,
}

pub async fn tenant(region: &Region, email: &str) -> anyhow::Result<Tenant> {
    let (status, t) = region
        .post("/v1/tenants", json!({"email": email, "name": email}))
        .await?;
    anyhow::ensure!(status == 201, "create tenant: {status} {t}");
    let id = t["id"].as_str().context("tenant id")?.to_string();
    let (status, tok) = region
        .post(
            "/v1/tokens",
            json!({"role": "tenant", "tenant_id": id, "name": "tests"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "create tenant token: {status} {tok}");
    Ok(Tenant {
        id,
        token: tok["secret"].as_str().context("token secret")?.to_string(),
    })
}

/// Makes a blank qcow2 of `virtual_size` with qemu-img, uploads it as a custom image of
/// `tenant`, and waits until it is available; returns the image.
pub async fn qcow2_image(
    region: &Region,
    tenant: &str,
    name: &str,
    virtual_size: &str,
) -> anyhow::Result<Value> {
    let path = region.dir.path().join(format!("{name}.qcow2"));
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg(virtual_size)
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img create failed");
    upload(region, tenant, name, &path, json!({})).await
}

/// Uploads `path` as a custom image of `tenant` with `extra` fields; waits for `available`.
pub async fn upload(
    region: &Region,
    tenant: &str,
    name: &str,
    path: &Path,
    extra: Value,
) -> anyhow::Result<Value> {
    let mut body = json!({"name": name, "tenant_id": tenant, "os_type": "linux",
        "architecture": "x86_64", "platform": "centos", "version": "7.9", "target_size_gb": 20});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, image) = region.post("/v1/images", body).await?;
    anyhow::ensure!(status == 201, "create image: {status} {image}");
    let id = image["id"].as_str().context("image id")?.to_string();
    let resp = region
        .http
        .put(format!("{}/v1/images/{id}/content", region.url))
        .bearer_auth(&region.admin_token)
        .body(std::fs::read(path)?)
        .send()
        .await?;
    let status = resp.status();
    let image: Value = resp.json().await?;
    anyhow::ensure!(
        status == 200 && image["status"] == "available",
        "upload: {status} {image}"
    );
    Ok(image)
}

/// `POST /v1/instances` as `token` with the usual fields and `extra` merged in.
pub async fn create(
    region: &Region,
    token: &str,
    name: &str,
    image: &str,
    memory_bytes: u64,
    extra: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut body = json!({"name": name, "image_id": image, "vcpus": 1,
        "memory_bytes": memory_bytes, "admin_password": PASSWORD});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    region
        .call(Method::POST, "/v1/instances", Some(token), Some(body))
        .await
}

/// Waits until the instance is in a settled state (running, stopped, error) and returns it;
/// `None` once it is gone (deleted).
pub async fn settled(
    region: &Region,
    id: &str,
    deadline: Duration,
) -> anyhow::Result<Option<Value>> {
    wait_for(&format!("instance {id} to settle"), deadline, || async {
        let (status, inst) = region.get(&format!("/v1/instances/{id}")).await?;
        if status == 404 {
            return Ok(Some(None));
        }
        anyhow::ensure!(status == 200, "GET instance: {status} {inst}");
        let state = inst["state"].as_str().unwrap_or_default();
        Ok(matches!(state, "running" | "stopped" | "error").then_some(Some(inst)))
    })
    .await
}

/// Creates `name` as `token` (with `extra` fields), waits for it to run; its id.
pub async fn running(
    region: &Region,
    token: &str,
    name: &str,
    image: &str,
    memory_bytes: u64,
    extra: Value,
) -> anyhow::Result<String> {
    let (status, created) = create(region, token, name, image, memory_bytes, extra).await?;
    anyhow::ensure!(status == 202, "create {name}: {status} {created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    expect_state(region, &id, "running", Duration::from_secs(120)).await?;
    Ok(id)
}

/// Waits for the instance to settle and checks it is in `want`.
pub async fn expect_state(
    region: &Region,
    id: &str,
    want: &str,
    deadline: Duration,
) -> anyhow::Result<Value> {
    let inst = settled(region, id, deadline)
        .await?
        .with_context(|| format!("instance {id} disappeared"))?;
    anyhow::ensure!(
        inst["state"] == want,
        "instance {id}: want {want}, got {inst}"
    );
    Ok(inst)
}

/// `POST /v1/instances/{id}/{action}` as admin; expects 202.
pub async fn act(region: &Region, id: &str, action: &str) -> anyhow::Result<Value> {
    let (status, body) = region
        .post(&format!("/v1/instances/{id}/{action}"), json!({}))
        .await?;
    anyhow::ensure!(status == 202, "{action} {id}: {status} {body}");
    Ok(body)
}

/// Live-migrates the instance to host `target` as admin and waits (up to `deadline`) until it
/// runs there; an instance gone to `error` fails at once.
pub async fn migrate(
    region: &Region,
    id: &str,
    target: &str,
    deadline: Duration,
) -> anyhow::Result<Value> {
    let (status, body) = region
        .post(
            &format!("/v1/instances/{id}/migrate"),
            json!({"target_host": target}),
        )
        .await?;
    anyhow::ensure!(status == 202, "migrate {id}: {status} {body}");
    wait_for("the guest on its target host", deadline, || async {
        let (_, i) = region.get(&format!("/v1/instances/{id}")).await?;
        anyhow::ensure!(i["state"] != "error", "{i}");
        Ok((i["state"] == "running" && i["host_id"] == target).then_some(i))
    })
    .await
}

/// Deletes and waits until the instance is gone.
pub async fn delete(region: &Region, id: &str, deadline: Duration) -> anyhow::Result<()> {
    let (status, body) = region
        .call(
            Method::DELETE,
            &format!("/v1/instances/{id}"),
            Some(&region.admin_token),
            None,
        )
        .await?;
    anyhow::ensure!(status == 202, "delete {id}: {status} {body}");
    let gone = settled(region, id, deadline).await?;
    anyhow::ensure!(gone.is_none(), "instance {id} still there: {gone:?}");
    Ok(())
}

/// The host's claimed cores and memory.
pub async fn allocation(region: &Region, host: &str) -> anyhow::Result<(u64, u64)> {
    let h = region.host(host).await?;
    Ok((
        h["allocated_cores"].as_u64().context("allocated_cores")?,
        h["allocated_memory_bytes"]
            .as_u64()
            .context("allocated_memory_bytes")?,
    ))
}

/// `qemu-img info` of a file as JSON.
pub fn qemu_img_info(path: &Path) -> anyhow::Result<Value> {
    let out = Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(path)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "qemu-img info {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}
