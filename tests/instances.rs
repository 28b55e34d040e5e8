//! Instances end to end against agents on libvirt's test driver (real libvirt, in the agent's
//! process): placement and atomic claims under 100 concurrent creates, quotas, locked hosts,
//! tenant isolation, the lifecycle, the per-host view, validation, export, and a failed create
//! that leaves nothing behind. The same lifecycle on real libvirtd + QEMU is in
//! instances_libvirt.rs.

use plinth_e2e::instances::{self as inst, MIB, Tenant};
use plinth_e2e::{Agent, Region, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

struct Fixture {
    region: Region,
    agents: Vec<Agent>,
    tenant: Tenant,
    image: String,
}

/// A region with `n` agents (127.0.0.11, .12, ...) online in cluster az1, a tenant, and a
/// blank 64 MiB qcow2 image of that tenant.
async fn fixture(n: u8, first_ip: u8) -> anyhow::Result<Fixture> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let mut agents = Vec::new();
    for i in 0..n {
        let agent = region
            .start_agent(&format!("127.0.0.{}", first_ip + i), "az1")
            .await?;
        agents.push(agent);
    }
    for a in &agents {
        // Enrolled hosts start available; placement needs the agent online too.
        region.wait_agent(&a.host_id, "online").await?;
    }
    let tenant = inst::tenant(&region, "a@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    Ok(Fixture {
        image: image["id"].as_str().unwrap_or_default().to_string(),
        region,
        agents,
        tenant,
    })
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_host_view_and_export() -> anyhow::Result<()> {
    let f = fixture(1, 11).await?;
    let r = &f.region;
    let host = &f.agents[0].host_id;
    let (status, created) =
        inst::create(r, &f.tenant.token, "web-1", &f.image, 128 * MIB, json!({})).await?;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["state"], "creating");
    assert_eq!(created["host_id"], host.as_str());
    assert!(created.get("admin_password").is_none(), "{created}");
    let iid = id(&created);
    let running = inst::expect_state(r, &iid, "running", SETTLE).await?;
    assert!(
        running["resource_id"]
            .as_str()
            .is_some_and(|u| u.len() == 36),
        "{running}"
    );
    assert_eq!(inst::allocation(r, host).await?, (1, 128 * MIB));
    // The create is an operation its tenant follows: placed, made, defined and started.
    let op = created["operation_id"].as_str().unwrap_or_default();
    let (status, op) = r
        .call(
            reqwest::Method::GET,
            &format!("/v1/operations/{op}"),
            Some(&f.tenant.token),
            None,
        )
        .await?;
    assert_eq!(
        (status, op["kind"].as_str(), op["status"].as_str()),
        (200, Some("instance_create"), Some("succeeded")),
        "{op}"
    );
    let steps: Vec<&str> = op["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["message"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        steps.first().copied(),
        Some(format!("placed on host {host}").as_str()),
        "{op}"
    );
    assert_eq!(steps.last().copied(), Some("instance now running"), "{op}");
    assert!(
        steps.contains(&"disk made, instance defined and started"),
        "{op}"
    );

    // The disk is an overlay on the cached image; the seed ISO exists.
    let dir = f.agents[0].dir.join("instances").join(&iid);
    let info = inst::qemu_img_info(&dir.join("disk.qcow2"))?;
    let backing = info["backing-filename"].as_str().unwrap_or_default();
    assert!(backing.contains("/images/"), "{info}");
    assert!(dir.join("seed.iso").exists());

    // The per-host view: the seed's fields, fuzzy search.
    let (status, page) = r.get(&format!("/v1/hosts/{host}/instances?q=WEB")).await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 1);
    let row = &page["items"][0];
    for field in [
        "name",
        "id",
        "resource_id",
        "tenant_email",
        "host_ip",
        "image_id",
        "gpu_type",
        "vcpus",
        "memory_bytes",
        "state",
        "created_at",
        "updated_at",
    ] {
        assert!(row.get(field).is_some(), "{field} missing in {row}");
    }
    assert_eq!(row["host_ip"], "127.0.0.11");
    assert_eq!(row["tenant_email"], "a@example.com");
    let (_, none) = r
        .get(&format!("/v1/hosts/{host}/instances?q=nomatch"))
        .await?;
    assert_eq!(none["total"], 0);

    // The host's domains (from the heartbeat) include it.
    wait_for("the domain in the heartbeat", SETTLE, || async {
        let h = r.host(host).await?;
        let found = h["domains"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["name"] == iid.as_str());
        Ok(found.then_some(()))
    })
    .await?;

    inst::act(r, &iid, "stop").await?;
    inst::expect_state(r, &iid, "stopped", SETTLE).await?;
    let (status, body) = r
        .post(&format!("/v1/instances/{iid}/stop"), json!({}))
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("invalid_instance_state"))
    );
    inst::act(r, &iid, "start").await?;
    inst::expect_state(r, &iid, "running", SETTLE).await?;
    inst::act(r, &iid, "reboot").await?;
    inst::expect_state(r, &iid, "running", SETTLE).await?;

    // Export: the flattened disk becomes a custom image of the tenant.
    let (status, image) = r
        .post(
            &format!("/v1/instances/{iid}/export-image"),
            json!({"name": "web-1 snapshot"}),
        )
        .await?;
    assert_eq!(status, 202, "{image}");
    assert_eq!(image["status"], "creating");
    assert_eq!(image["owner_tenant_id"], f.tenant.id.as_str());
    let exported = wait_for("the export", SETTLE, || async {
        let (_, img) = r.get(&format!("/v1/images/{}", id(&image))).await?;
        Ok((img["status"] != "creating").then_some(img))
    })
    .await?;
    assert_eq!(exported["status"], "available", "{exported}");
    assert_eq!(exported["format"], "qcow2");
    assert_eq!(exported["virtual_size_bytes"], running["disk_bytes"]);

    // The source image is in use: it cannot be deleted while the instance exists.
    let (status, _) = r
        .call(
            Method::DELETE,
            &format!("/v1/images/{}", f.image),
            Some(&r.admin_token),
            None,
        )
        .await?;
    assert_eq!(status, 409);

    inst::delete(r, &iid, SETTLE).await?;
    assert!(!dir.exists(), "the instance directory was left behind");
    assert_eq!(inst::allocation(r, host).await?, (0, 0));
    wait_for("the domain to leave the heartbeat", SETTLE, || async {
        let h = r.host(host).await?;
        let found = h["domains"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["name"] == iid.as_str());
        Ok((!found).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_creates_on_room_for_fifty() -> anyhow::Result<()> {
    let f = fixture(2, 21).await?;
    let r = &f.region;
    // Memory decides: each host takes exactly 25 instances of this size.
    let host_mem = r.host(&f.agents[0].host_id).await?["total_memory_bytes"]
        .as_u64()
        .unwrap_or(0);
    let per = host_mem / 25 / MIB * MIB;
    anyhow::ensure!(
        per >= 64 * MIB && 26 * per > host_mem,
        "test driver memory {host_mem}"
    );
    let creates = (0..100).map(|i| {
        let (r, token, image) = (r, f.tenant.token.clone(), f.image.clone());
        async move { inst::create(r, &token, &format!("vm-{i}"), &image, per, json!({})).await }
    });
    let results = futures_util::future::join_all(creates).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for res in results {
        let (status, body) = res?;
        match status {
            202 => accepted.push(id(&body)),
            409 => {
                assert_eq!(body["error"]["code"], "no_suitable_host", "{body}");
                refused += 1;
            }
            other => anyhow::bail!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((accepted.len(), refused), (50, 50));
    for a in &f.agents {
        let (cores, mem) = inst::allocation(r, &a.host_id).await?;
        assert_eq!(
            (cores, mem),
            (25, 25 * per),
            "host {} is over- or under-claimed",
            a.host_id
        );
    }
    for iid in &accepted {
        inst::expect_state(r, iid, "running", Duration::from_secs(180)).await?;
    }
    let (_, page) = r.get("/v1/instances?state=running&limit=1000").await?;
    assert_eq!(page["total"], 50);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_locked_hosts_and_tenant_isolation() -> anyhow::Result<()> {
    let f = fixture(2, 31).await?;
    let r = &f.region;
    let (a, b) = (&f.agents[0].host_id, &f.agents[1].host_id);

    // Quota: one instance.
    let (status, q) = r
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/quota", f.tenant.id),
            Some(&r.admin_token),
            Some(json!({"instances": 1, "cores": 8})),
        )
        .await?;
    assert_eq!(status, 200, "{q}");
    // A locked host gets nothing.
    let (status, _) = r.post(&format!("/v1/hosts/{a}/lock"), json!({})).await?;
    assert_eq!(status, 200);
    let (status, first) =
        inst::create(r, &f.tenant.token, "one", &f.image, 64 * MIB, json!({})).await?;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["host_id"], b.as_str());
    let (status, over) =
        inst::create(r, &f.tenant.token, "two", &f.image, 64 * MIB, json!({})).await?;
    assert_eq!(
        (status, over["error"]["code"].as_str()),
        (409, Some("quota_exceeded")),
        "{over}"
    );
    let (_, page) = r.get("/v1/instances").await?;
    assert_eq!(page["total"], 1, "a refused create left a row");
    assert_eq!(inst::allocation(r, a).await?, (0, 0));
    assert_eq!(inst::allocation(r, b).await?, (1, 64 * MIB));
    let (_, q) = r.get(&format!("/v1/tenants/{}/quota", f.tenant.id)).await?;
    assert_eq!(q["usage"]["instances"], 1);

    // Both hosts locked: no suitable host, and the reason says why.
    r.call(
        Method::PUT,
        &format!("/v1/tenants/{}/quota", f.tenant.id),
        Some(&r.admin_token),
        Some(json!({})),
    )
    .await?;
    r.post(&format!("/v1/hosts/{b}/lock"), json!({})).await?;
    let (status, none) =
        inst::create(r, &f.tenant.token, "three", &f.image, 64 * MIB, json!({})).await?;
    assert_eq!(status, 409, "{none}");
    assert!(
        none["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not available"),
        "{none}"
    );

    // Another tenant sees nothing of it and cannot act on it or boot from its image.
    let other = inst::tenant(r, "b@example.com").await?;
    let iid = id(&first);
    for (method, path) in [
        (Method::GET, format!("/v1/instances/{iid}")),
        (Method::POST, format!("/v1/instances/{iid}/stop")),
        (Method::DELETE, format!("/v1/instances/{iid}")),
        (Method::POST, format!("/v1/instances/{iid}/export-image")),
    ] {
        let body = path.ends_with("export-image").then(|| json!({"name": "x"}));
        let (status, resp) = r
            .call(method.clone(), &path, Some(&other.token), body)
            .await?;
        assert_eq!(status, 404, "{method} {path}: {resp}");
    }
    let (_, page) = r
        .call(Method::GET, "/v1/instances", Some(&other.token), None)
        .await?;
    assert_eq!(page["total"], 0);
    let (status, _) = r
        .call(
            Method::GET,
            &format!("/v1/instances?tenant={}", f.tenant.id),
            Some(&other.token),
            None,
        )
        .await?;
    assert_eq!(status, 403);
    let (status, body) =
        inst::create(r, &other.token, "steal", &f.image, 64 * MIB, json!({})).await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("image_id"),
        "{body}"
    );
    let (_, own) = r
        .call(Method::GET, "/v1/instances", Some(&f.tenant.token), None)
        .await?;
    assert_eq!(own["total"], 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_name_the_field_and_change_nothing() -> anyhow::Result<()> {
    let f = fixture(1, 41).await?;
    let r = &f.region;
    let tool_iso = r.dir.path().join("tool.iso");
    std::fs::write(&tool_iso, iso_bytes())?;
    let tool = inst::upload(
        r,
        &f.tenant.id,
        "tools",
        &tool_iso,
        json!({"type": "iso", "iso_purpose": "tool"}),
    )
    .await?;
    let cases = [
        (json!({"name": "Bad_Name"}), "name"),
        (json!({"vcpus": 0}), "vcpus"),
        (json!({"memory_bytes": 1024}), "memory_bytes"),
        (json!({"memory_bytes": 64 * MIB + 1}), "memory_bytes"),
        (json!({"admin_password": "short"}), "admin_password"),
        (json!({"disk_bytes": MIB}), "disk_bytes"),
        (json!({"image_id": "img-000000000000"}), "image_id"),
        (json!({"image_id": id(&tool)}), "image_id"),
        (json!({"cluster_id": "nowhere"}), "cluster_id"),
    ];
    for (extra, field) in cases {
        let (status, body) = inst::create(
            r,
            &f.tenant.token,
            "ok-name",
            &f.image,
            64 * MIB,
            extra.clone(),
        )
        .await?;
        assert_eq!(status, 400, "{extra}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{extra}: {message}");
    }
    let (status, body) = inst::create(
        r,
        &r.admin_token,
        "no-tenant",
        &f.image,
        64 * MIB,
        json!({}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("tenant_id")
    );
    let (_, page) = r.get("/v1/instances").await?;
    assert_eq!(page["total"], 0);
    assert_eq!(inst::allocation(r, &f.agents[0].host_id).await?, (0, 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_create_leaves_no_orphan() -> anyhow::Result<()> {
    let f = fixture(1, 51).await?;
    let r = &f.region;
    // Corrupt the stored image: the agent's SHA-256 check must refuse it.
    let blobs = r.data_dir().join("images");
    let mut corrupted = 0;
    for entry in walk(&blobs)? {
        if entry.metadata()?.len() > 0 {
            let mut bytes = std::fs::read(&entry)?;
            bytes[0] ^= 0xff;
            std::fs::write(&entry, bytes)?;
            corrupted += 1;
        }
    }
    anyhow::ensure!(corrupted == 1, "expected one blob, found {corrupted}");
    let (status, created) =
        inst::create(r, &f.tenant.token, "doomed", &f.image, 64 * MIB, json!({})).await?;
    assert_eq!(status, 202, "{created}");
    let iid = id(&created);
    let failed = inst::expect_state(r, &iid, "error", SETTLE).await?;
    let reason = failed["state_reason"].as_str().unwrap_or_default();
    assert!(reason.to_lowercase().contains("sha"), "{reason}");
    assert!(failed["host_id"].is_null(), "the claim was kept: {failed}");
    assert_eq!(inst::allocation(r, &f.agents[0].host_id).await?, (0, 0));
    let dir = f.agents[0].dir.join("instances").join(&iid);
    assert!(!dir.exists(), "the instance directory was left behind");
    let h = r.host(&f.agents[0].host_id).await?;
    assert!(
        !h["domains"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["name"] == iid.as_str())
    );
    // An instance in error can be deleted.
    inst::delete(r, &iid, SETTLE).await?;
    Ok(())
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// The smallest file qemu-img reads as a raw ISO 9660 image: a primary volume descriptor at
/// 32 KiB.
fn iso_bytes() -> Vec<u8> {
    let mut bytes = vec![0u8; 36 * 1024];
    bytes[32768] = 1;
    bytes[32769..32774].copy_from_slice(b"CD001");
    bytes
}
