//! The image repository end to end: imports from real HTTP and FTP servers started here,
//! qcow2 files made with qemu-img, uploads, signed ranged downloads, delete rules, the recycle
//! bin, tenant visibility, and a coordinator killed in the middle of an import.

use plinth_e2e::servers::{self, Server};
use plinth_e2e::{Region, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Fixture {
    region: Region,
    tenant: String,
    files: PathBuf,
    http: Server,
}

async fn fixture() -> anyhow::Result<Fixture> {
    let region = Region::start().await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "a@example.com", "name": "A"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "{tenant}");
    let files = region.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &region.dir.path().join("http.log"))?;
    Ok(Fixture {
        tenant: tenant["id"].as_str().unwrap_or_default().to_string(),
        region,
        files,
        http,
    })
}

impl Fixture {
    fn url(&self, mode: &str, name: &str) -> String {
        format!("http://127.0.0.1:{}/{mode}/{name}", self.http.port)
    }

    /// A qcow2 of `virtual_size` in the served directory; returns its SHA-256.
    fn qcow2(&self, name: &str, virtual_size: &str) -> anyhow::Result<String> {
        let path = self.files.join(name);
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg(virtual_size)
            .status()?;
        anyhow::ensure!(ok.success(), "qemu-img create failed");
        sha256_of(&path)
    }

    fn body(&self, name: &str) -> Value {
        json!({"name": name, "tenant_id": self.tenant, "os_type": "linux", "architecture": "x86_64",
               "platform": "centos", "version": "7.9", "target_size_gb": 20})
    }

    async fn import(
        &self,
        url: &str,
        mut body: Value,
        extra: Value,
    ) -> anyhow::Result<(u16, Value)> {
        body["url"] = json!(url);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.region.post("/v1/images/import", body).await
    }

    /// Imports and waits for the image to leave `importing`.
    async fn import_done(&self, url: &str, name: &str, extra: Value) -> anyhow::Result<Value> {
        let (status, image) = self.import(url, self.body(name), extra).await?;
        anyhow::ensure!(status == 202, "import {name}: {status} {image}");
        self.settled(image["id"].as_str().unwrap_or_default()).await
    }

    async fn settled(&self, id: &str) -> anyhow::Result<Value> {
        wait_for(
            &format!("image {id} to settle"),
            Duration::from_secs(60),
            || async {
                let (_, image) = self.region.get(&format!("/v1/images/{id}")).await?;
                Ok(
                    (image["status"] != "importing" && image["status"] != "making")
                        .then_some(image),
                )
            },
        )
        .await
    }
}

fn sha256_of(path: &Path) -> anyhow::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

fn staging_is_empty(region: &Region) -> anyhow::Result<bool> {
    Ok(std::fs::read_dir(region.data_dir().join("images/staging"))?
        .next()
        .is_none())
}

#[tokio::test]
async fn http_imports_succeed_or_fail_with_a_reason() -> anyhow::Result<()> {
    let f = fixture().await?;
    let sha = f.qcow2("disk.qcow2", "1G")?;
    f.qcow2("huge.qcow2", "30G")?;
    std::fs::write(f.files.join("notqcow.raw"), vec![7u8; 1 << 20])?;

    let plain = f
        .import_done(&f.url("files", "disk.qcow2"), "plain", json!({}))
        .await?;
    assert_eq!(plain["status"], "available", "{plain}");
    assert_eq!(plain["sha256"], sha.as_str());
    assert_eq!(plain["format"], "qcow2");
    assert_eq!(plain["virtual_size_bytes"], 1u64 << 30);
    assert_eq!(plain["kind"], "custom");
    assert_eq!(plain["owner_tenant_id"], f.tenant.as_str());
    assert_eq!(plain["owner_email"], "a@example.com");
    let (_, op) = f
        .region
        .get(&format!(
            "/v1/operations/{}",
            plain["operation_id"].as_str().unwrap_or_default()
        ))
        .await?;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["progress_bytes"], op["total_bytes"], "{op}");
    // Its steps, in order, in plain words: no URL, path or tool output.
    let steps: Vec<&str> = op["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["message"].as_str()).collect())
        .unwrap_or_default();
    let want = [
        "downloading",
        "receiving the content",
        "received",
        "verified: qcow2",
        "stored",
    ];
    assert_eq!(steps.len(), want.len(), "{op}");
    for (step, start) in steps.iter().zip(want) {
        assert!(step.starts_with(start), "{step} (wanted {start}): {op}");
        assert!(!step.contains("http") && !step.contains('/'), "{step}");
    }
    assert_eq!(op["owner_tenant_id"], f.tenant.as_str(), "{op}");

    let with_sha = f
        .import_done(
            &f.url("files", "disk.qcow2"),
            "checked",
            json!({"sha256": sha.to_uppercase()}),
        )
        .await?;
    assert_eq!(with_sha["status"], "available", "{with_sha}");

    let failures = [
        (
            "sha mismatch",
            f.url("files", "disk.qcow2"),
            json!({"sha256": "0".repeat(64)}),
            "SHA-256 mismatch",
        ),
        (
            "not qcow2",
            f.url("files", "notqcow.raw"),
            json!({}),
            "not qcow2",
        ),
        (
            "virtual size over target",
            f.url("files", "huge.qcow2"),
            json!({}),
            "exceeds the target size",
        ),
        (
            "unreachable",
            "http://127.0.0.1:9/disk.qcow2".into(),
            json!({}),
            "cannot fetch",
        ),
        (
            "not found",
            f.url("files", "missing.qcow2"),
            json!({}),
            "404",
        ),
        (
            "cut mid-transfer",
            f.url("cut", "disk.qcow2"),
            json!({}),
            "ended early",
        ),
    ];
    for (label, url, extra, reason) in failures {
        let image = f.import_done(&url, label, extra).await?;
        assert_eq!(image["status"], "import_failed", "{label}: {image}");
        let why = image["failure_reason"].as_str().unwrap_or_default();
        assert!(
            why.contains(reason),
            "{label}: reason {why:?} lacks {reason:?}"
        );
        let (_, op) = f
            .region
            .get(&format!(
                "/v1/operations/{}",
                image["operation_id"].as_str().unwrap_or_default()
            ))
            .await?;
        assert_eq!(op["status"], "failed", "{label}: {op}");
    }
    assert!(
        staging_is_empty(&f.region)?,
        "a failed import keeps no partial content"
    );
    let blobs = std::fs::read_dir(f.region.data_dir().join("images/blobs"))?.count();
    assert_eq!(blobs, 2, "only the two good imports are stored");
    Ok(())
}

#[tokio::test]
async fn bad_imports_are_refused_before_anything_starts() -> anyhow::Result<()> {
    let f = fixture().await?;
    let url = f.url("files", "disk.qcow2");
    let cases = [
        ("target 19", json!({"target_size_gb": 19}), "target_size_gb"),
        (
            "target 501",
            json!({"target_size_gb": 501}),
            "target_size_gb",
        ),
        ("centos 8.0", json!({"version": "8.0"}), "version"),
        ("centos 6.4", json!({"version": "6.4"}), "version"),
        (
            "ubuntu 20.04 on aarch64",
            json!({"platform": "ubuntu", "version": "20.04", "architecture": "aarch64"}),
            "version",
        ),
        (
            "debian on aarch64",
            json!({"platform": "debian", "version": "10.12", "architecture": "aarch64"}),
            "architecture",
        ),
        (
            "windows 2022",
            json!({"os_type": "windows", "platform": "windows", "version": "2022"}),
            "version",
        ),
        (
            "linux named windows",
            json!({"platform": "windows", "version": "2019"}),
            "platform",
        ),
        ("bad sha", json!({"sha256": "xyz"}), "sha256"),
        ("iso without purpose", json!({"type": "iso"}), "iso_purpose"),
        ("no tenant", json!({"tenant_id": null}), "tenant_id"),
        ("scheme", json!({"url": "file:///etc/passwd"}), "url"),
        ("no file", json!({"url": "http://127.0.0.1/"}), "url"),
        ("bad os type", json!({"os_type": "beos"}), "os_type"),
    ];
    for (label, extra, field) in cases {
        let mut body = f.body(label);
        body["url"] = json!(url);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, err) = f.region.post("/v1/images/import", body).await?;
        assert_eq!(status, 400, "{label}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{label}: {err}"
        );
    }
    let (_, list) = f.region.get("/v1/images").await?;
    assert_eq!(list["total"], 0, "refused imports created nothing");
    Ok(())
}

/// A damaged qcow2 makes qemu-img fail with the staged file's path (in the coordinator's data
/// directory) in its stderr: the tenant reads a short reason without it, the log keeps it.
#[tokio::test]
async fn a_damaged_image_fails_with_a_reason_that_shows_no_path_or_stderr() -> anyhow::Result<()> {
    let f = fixture().await?;
    // The qcow2 magic, then a version qemu-img does not know.
    let mut damaged = b"QFI\xfb\x00\x00\x00\x63".to_vec();
    damaged.resize(1 << 16, 0);
    std::fs::write(f.files.join("damaged.qcow2"), &damaged)?;
    let image = f
        .import_done(&f.url("files", "damaged.qcow2"), "damaged", json!({}))
        .await?;
    assert_eq!(image["status"], "import_failed", "{image}");
    let (_, op) = f
        .region
        .get(&format!(
            "/v1/operations/{}",
            image["operation_id"].as_str().unwrap_or_default()
        ))
        .await?;
    let data_dir = f.region.data_dir().to_string_lossy().to_string();
    for (what, shown) in [
        ("failure_reason", &image["failure_reason"]),
        ("operation error", &op["error"]),
    ] {
        let shown = shown.as_str().unwrap_or_default();
        assert_eq!(shown, "the file is not a valid qcow2 image", "{what}");
        assert!(
            !shown.contains('/') && !shown.contains("qemu-img:") && !shown.contains(&data_dir),
            "{what} shows a path or stderr: {shown}"
        );
    }
    let id = image["id"].as_str().unwrap_or_default();
    let log = std::fs::read_to_string(f.region.dir.path().join("coordinator.log"))?;
    assert!(
        log.lines()
            .any(|l| l.contains(id) && l.contains("Unsupported qcow2 version")),
        "the log keeps qemu-img's words with the image id"
    );
    Ok(())
}

#[tokio::test]
async fn ftp_import_with_credentials_never_shows_the_password() -> anyhow::Result<()> {
    let f = fixture().await?;
    let sha = f.qcow2("disk.qcow2", "1G")?;
    let ftp = servers::ftp(
        &f.files,
        "imports",
        "pa:ss@word",
        &f.region.dir.path().join("ftp.log"),
    )?;
    let url = format!(
        "ftp://imports:pa%3Ass%40word@127.0.0.1:{}/disk.qcow2",
        ftp.port
    );
    let image = f
        .import_done(&url, "from ftp", json!({"sha256": sha}))
        .await?;
    assert_eq!(image["status"], "available", "{image}");
    let shown = image["source_url"].as_str().unwrap_or_default();
    assert!(
        shown.contains("***") && !shown.contains("pa%3Ass") && !shown.contains("word"),
        "{shown}"
    );

    let wrong = format!("ftp://imports:nope@127.0.0.1:{}/disk.qcow2", ftp.port);
    let failed = f.import_done(&wrong, "wrong password", json!({})).await?;
    assert_eq!(failed["status"], "import_failed", "{failed}");
    let log = std::fs::read_to_string(f.region.dir.path().join("coordinator.log"))?;
    assert!(
        !log.contains("pa:ss@word") && !log.contains("pa%3Ass%40word"),
        "the password reached the log"
    );
    Ok(())
}

#[tokio::test]
async fn upload_then_download_with_range_and_signed_links() -> anyhow::Result<()> {
    let f = fixture().await?;
    f.qcow2("disk.qcow2", "2G")?;
    let bytes = std::fs::read(f.files.join("disk.qcow2"))?;
    let (status, image) = f.region.post("/v1/images", f.body("uploaded")).await?;
    assert_eq!(status, 201, "{image}");
    assert_eq!(image["status"], "importing");
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let resp = f
        .region
        .http
        .put(format!("{}/v1/images/{id}/content", f.region.url))
        .bearer_auth(&f.region.admin_token)
        .body(bytes.clone())
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let uploaded: Value = resp.json().await?;
    assert_eq!(uploaded["status"], "available", "{uploaded}");
    assert_eq!(uploaded["size_bytes"], bytes.len());

    let (status, link) = f
        .region
        .post(&format!("/v1/images/{id}/download-link"), json!({}))
        .await?;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().unwrap_or_default().to_string();
    let whole = f.region.http.get(&url).send().await?;
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await?.to_vec(), bytes);

    // A resumed download: the rest from byte 1000.
    let rest = f
        .region
        .http
        .get(&url)
        .header("Range", "bytes=1000-")
        .send()
        .await?;
    assert_eq!(rest.status().as_u16(), 206);
    let range = rest
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        range,
        format!("bytes 1000-{}/{}", bytes.len() - 1, bytes.len())
    );
    assert_eq!(rest.bytes().await?.to_vec(), bytes[1000..].to_vec());
    let bad_range = f
        .region
        .http
        .get(&url)
        .header("Range", format!("bytes={}-", bytes.len()))
        .send()
        .await?;
    assert_eq!(bad_range.status().as_u16(), 416);

    // Tampering: another expiry, another image id, another signature.
    let expires: i64 = url
        .split("expires=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let tampered = [
        url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        ),
        url.replace(&id, "img-000000000000"),
        format!("{}0", url.trim_end_matches(char::is_alphanumeric)),
    ];
    for bad in tampered {
        let resp = f.region.http.get(&bad).send().await?;
        assert_eq!(resp.status().as_u16(), 403, "{bad}");
    }
    // An expired link with a valid signature: 410.
    let secrets = plinth_coordinator::secrets::Secrets::load_or_create(
        &f.region.data_dir().join("master.key"),
    )?;
    let past = expires - 2 * 86_400;
    let sig = secrets.sign_link(&plinth_coordinator::images::api::downloads::link_message(
        &id, past,
    ));
    let expired = format!(
        "{}/v1/image-downloads/{id}?expires={past}&signature={sig}",
        f.region.url
    );
    assert_eq!(
        f.region.http.get(&expired).send().await?.status().as_u16(),
        410
    );

    // Content can be uploaded once.
    let again = f
        .region
        .http
        .put(format!("{}/v1/images/{id}/content", f.region.url))
        .bearer_auth(&f.region.admin_token)
        .body(bytes)
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 409);
    Ok(())
}

#[tokio::test]
async fn delete_rules_recycle_bin_and_copy_to_base() -> anyhow::Result<()> {
    let f = fixture().await?;
    f.qcow2("disk.qcow2", "1G")?;
    let a = f
        .import_done(&f.url("files", "disk.qcow2"), "a", json!({}))
        .await?;
    let b = f
        .import_done(&f.url("files", "disk.qcow2"), "b", json!({}))
        .await?;
    let failed = f
        .import_done(&f.url("files", "missing.qcow2"), "failed", json!({}))
        .await?;
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();

    // Copy to base: making, then available, as a public base image with its own content.
    let (status, base) = f
        .region
        .post(
            &format!("/v1/images/{}/copy-to-base", id(&a)),
            json!({"name": "golden"}),
        )
        .await?;
    assert_eq!(status, 202, "{base}");
    assert_eq!(
        (base["kind"].as_str(), base["status"].as_str()),
        (Some("base"), Some("making"))
    );
    let base = f.settled(&id(&base)).await?;
    assert_eq!(base["status"], "available", "{base}");
    assert!(base["owner_tenant_id"].is_null());

    // An instance uses b: no delete.
    let store = plinth_coordinator::db::Store::open(&f.region.data_dir().join("plinth.db")).await?;
    store
        .insert_instance_ref("inst-000000000001", &f.tenant, &id(&b), 0)
        .await?;
    let (status, err) = f
        .region
        .call(
            Method::DELETE,
            &format!("/v1/images/{}", id(&b)),
            Some(&f.region.admin_token),
            None,
        )
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("image_in_use")),
        "{err}"
    );
    // The refusal names the instance that holds the image.
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("inst-000000000001 (inst-000000000001)"),
        "{err}"
    );

    // Custom images go to the recycle bin; restore brings them back as they were.
    for img in [&a, &failed] {
        let (status, body) = f
            .region
            .call(
                Method::DELETE,
                &format!("/v1/images/{}", id(img)),
                Some(&f.region.admin_token),
                None,
            )
            .await?;
        assert_eq!(status, 204, "{body}");
    }
    let (_, bin) = f.region.get("/v1/recycle-bin").await?;
    assert_eq!(bin["items"].as_array().map(Vec::len), Some(2), "{bin}");
    let (_, list) = f.region.get("/v1/images?kind=custom").await?;
    assert_eq!(list["total"], 1, "deleted images leave the list: {list}");
    let (status, restored) = f
        .region
        .post(
            &format!("/v1/recycle-bin/{}/restore", id(&failed)),
            json!({}),
        )
        .await?;
    assert_eq!(
        (status, restored["status"].as_str()),
        (200, Some("import_failed")),
        "{restored}"
    );

    // Destroy removes the content for good.
    let blobs = || {
        std::fs::read_dir(f.region.data_dir().join("images/blobs"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = blobs();
    let (status, _) = f
        .region
        .call(
            Method::DELETE,
            &format!("/v1/recycle-bin/{}", id(&a)),
            Some(&f.region.admin_token),
            None,
        )
        .await?;
    assert_eq!(status, 204);
    assert_eq!(blobs(), before - 1);
    let (_, bin) = f.region.get("/v1/recycle-bin").await?;
    assert_eq!(bin["items"], json!([]));

    // Base images are deleted outright; an importing image cannot be deleted.
    let (status, _) = f
        .region
        .call(
            Method::DELETE,
            &format!("/v1/images/{}", id(&base)),
            Some(&f.region.admin_token),
            None,
        )
        .await?;
    assert_eq!(status, 204);
    let (status, _) = f.region.get(&format!("/v1/images/{}", id(&base))).await?;
    assert_eq!(status, 404);
    let (_, slow) = f
        .import(&f.url("slow", "disk.qcow2"), f.body("slow"), json!({}))
        .await?;
    let (status, err) = f
        .region
        .call(
            Method::DELETE,
            &format!("/v1/images/{}", id(&slow)),
            Some(&f.region.admin_token),
            None,
        )
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("image_not_deletable")),
        "{err}"
    );

    // Batch delete reports per image.
    let (status, results) = f
        .region
        .post(
            "/v1/images/batch-delete",
            json!({"ids": [id(&failed), id(&b), "img-000000000000"]}),
        )
        .await?;
    assert_eq!(status, 200, "{results}");
    let outcome: Vec<(bool, Option<&str>)> = results
        .as_array()
        .map(|r| {
            r.iter()
                .map(|i| (i["deleted"] == true, i["error"]["code"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        outcome,
        [
            (true, None),
            (false, Some("image_in_use")),
            (false, Some("image_not_found"))
        ]
    );

    // Name, note, tags and visibility change; source, format and virtualization do not.
    let path = format!("/v1/images/{}", id(&b));
    let (status, edited) = f
        .region
        .call(
            Method::PATCH,
            &path,
            Some(&f.region.admin_token),
            Some(json!({"name": "renamed", "tags": ["web", "prod"], "visibility": "public"})),
        )
        .await?;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["tags"], json!(["prod", "web"]));
    for field in ["source_url", "format", "virtualization"] {
        let (status, err) = f
            .region
            .call(
                Method::PATCH,
                &path,
                Some(&f.region.admin_token),
                Some(json!({field: "x"})),
            )
            .await?;
        assert_eq!(status, 400, "{field}: {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{err}"
        );
    }
    let (_, tagged) = f.region.get("/v1/images?tag=web").await?;
    assert_eq!(tagged["total"], 1);
    Ok(())
}

#[tokio::test]
async fn tenants_see_only_their_own_and_shared_images() -> anyhow::Result<()> {
    let f = fixture().await?;
    f.qcow2("disk.qcow2", "1G")?;
    let (_, other) = f
        .region
        .post(
            "/v1/tenants",
            json!({"email": "b@example.com", "name": "B"}),
        )
        .await?;
    let other_id = other["id"].as_str().unwrap_or_default().to_string();
    let token = |tenant: &str| {
        let region = &f.region;
        let tenant = tenant.to_string();
        async move {
            let (_, t) = region
                .post(
                    "/v1/tokens",
                    json!({"role": "tenant", "tenant_id": tenant, "name": "t"}),
                )
                .await?;
            anyhow::Ok(t["secret"].as_str().unwrap_or_default().to_string())
        }
    };
    let (ta, tb) = (token(&f.tenant).await?, token(&other_id).await?);
    let mine = f
        .import_done(&f.url("files", "disk.qcow2"), "a-private", json!({}))
        .await?;
    let mine_id = mine["id"].as_str().unwrap_or_default().to_string();
    let (_, base) = f
        .region
        .post(
            &format!("/v1/images/{mine_id}/copy-to-base"),
            json!({"name": "shared"}),
        )
        .await?;
    let base_id = base["id"].as_str().unwrap_or_default().to_string();
    f.settled(&base_id).await?;

    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .filter_map(|x| x["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let (_, seen_a) = f
        .region
        .call(Method::GET, "/v1/images", Some(&ta), None)
        .await?;
    let mut want_a = vec![mine_id.clone(), base_id.clone()];
    want_a.sort();
    assert_eq!(ids(&seen_a), want_a);
    let (_, seen_b) = f
        .region
        .call(Method::GET, "/v1/images", Some(&tb), None)
        .await?;
    assert_eq!(
        ids(&seen_b),
        vec![base_id.clone()],
        "B sees the public base image only"
    );
    for path in [
        format!("/v1/images/{mine_id}"),
        format!(
            "/v1/operations/{}",
            mine["operation_id"].as_str().unwrap_or_default()
        ),
    ] {
        let (status, _) = f.region.call(Method::GET, &path, Some(&tb), None).await?;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = f
        .region
        .call(
            Method::DELETE,
            &format!("/v1/images/{mine_id}"),
            Some(&tb),
            None,
        )
        .await?;
    assert_eq!(status, 404);
    let (status, _) = f
        .region
        .call(
            Method::POST,
            &format!("/v1/images/{mine_id}/download-link"),
            Some(&tb),
            Some(json!({})),
        )
        .await?;
    assert_eq!(status, 404);

    // A base image made private is the admins' alone; tenants cannot feature images.
    f.region
        .call(
            Method::PATCH,
            &format!("/v1/images/{base_id}"),
            Some(&f.region.admin_token),
            Some(json!({"visibility": "private"})),
        )
        .await?;
    let (_, seen_b) = f
        .region
        .call(Method::GET, "/v1/images", Some(&tb), None)
        .await?;
    assert_eq!(ids(&seen_b), Vec::<String>::new());
    let (status, _) = f
        .region
        .call(
            Method::PATCH,
            &format!("/v1/images/{mine_id}"),
            Some(&ta),
            Some(json!({"visibility": "featured"})),
        )
        .await?;
    assert_eq!(status, 400);

    // A tenant's recycle bin is its own.
    f.region
        .call(
            Method::DELETE,
            &format!("/v1/images/{mine_id}"),
            Some(&ta),
            None,
        )
        .await?;
    let (_, bin_b) = f
        .region
        .call(Method::GET, "/v1/recycle-bin", Some(&tb), None)
        .await?;
    assert_eq!(bin_b["items"], json!([]));
    let (_, bin_a) = f
        .region
        .call(Method::GET, "/v1/recycle-bin", Some(&ta), None)
        .await?;
    assert_eq!(bin_a["items"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn an_import_survives_a_coordinator_crash() -> anyhow::Result<()> {
    let mut f = fixture().await?;
    // About 3 MiB served at ~1.3 MB/s: the import is still running when the coordinator dies.
    let sha = plinth_e2e::incompressible_qcow2(&f.files, "slowdisk", 3)?;
    let (status, image) = f
        .import(
            &f.url("slow", "slowdisk.qcow2"),
            f.body("survivor"),
            json!({"sha256": sha}),
        )
        .await?;
    assert_eq!(status, 202, "{image}");
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let op = image["operation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(
        "the import to make progress",
        Duration::from_secs(30),
        || async {
            let (_, op) = f.region.get(&format!("/v1/operations/{op}")).await?;
            Ok((op["progress_bytes"].as_u64().unwrap_or(0) > 0).then_some(()))
        },
    )
    .await?;

    f.region.kill();
    f.region.restart().await?;
    let image = match f.settled(&id).await {
        Ok(image) => image,
        Err(err) => {
            let log = std::fs::read_to_string(f.region.dir.path().join("coordinator.log"))
                .unwrap_or_default();
            anyhow::bail!("{err}\ncoordinator log:\n{log}");
        }
    };
    assert_eq!(
        image["status"], "available",
        "the restarted import finished: {image}"
    );
    assert_eq!(image["sha256"], sha.as_str());
    assert!(staging_is_empty(&f.region)?);
    Ok(())
}

#[tokio::test]
async fn isos_and_https_imports() -> anyhow::Result<()> {
    // A test CA the coordinator is told to trust for imports, and an HTTPS server using it.
    let certs = tempfile::tempdir()?;
    let (ca, _) = plinth_common::tls::Ca::generate("import test CA")?;
    let mut spec = plinth_common::tls::LeafSpec::new(
        "files",
        plinth_common::tls::Role::Coordinator,
        Duration::from_secs(3600),
    );
    spec.ips.push("127.0.0.1".parse()?);
    spec.server = true;
    let (cert, key) = ca.issue_with_new_key(&spec)?;
    let (ca_path, cert_path, key_path) = (
        certs.path().join("ca.pem"),
        certs.path().join("cert.pem"),
        certs.path().join("key.pem"),
    );
    std::fs::write(&ca_path, ca.cert_pem())?;
    std::fs::write(&cert_path, cert)?;
    std::fs::write(&key_path, key)?;

    let region = Region::start_with(plinth_e2e::RegionOptions {
        import_ca_file: Some(ca_path),
        ..Default::default()
    })
    .await?;
    let (_, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "a@example.com", "name": "A"}),
        )
        .await?;
    let files = region.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let https = servers::https(
        &files,
        &cert_path,
        &key_path,
        &region.dir.path().join("https.log"),
    )?;
    let http = servers::http(&files, &region.dir.path().join("http.log"))?;
    let f = Fixture {
        region,
        tenant: tenant["id"].as_str().unwrap_or_default().to_string(),
        files,
        http,
    };

    let sha = f.qcow2("disk.qcow2", "1G")?;
    let url = format!("https://127.0.0.1:{}/files/disk.qcow2", https.port);
    let image = f
        .import_done(&url, "over https", json!({"sha256": sha}))
        .await?;
    assert_eq!(image["status"], "available", "{image}");

    // An ISO 9660 volume: "CD001" in the primary volume descriptor at 0x8001.
    let mut iso = vec![0u8; 0x9000];
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    std::fs::write(f.files.join("tools.iso"), &iso)?;
    let tools = f
        .import_done(
            &f.url("files", "tools.iso"),
            "tools",
            json!({"type": "iso", "iso_purpose": "tool"}),
        )
        .await?;
    assert_eq!(
        (tools["status"].as_str(), tools["format"].as_str()),
        (Some("available"), Some("iso")),
        "{tools}"
    );
    assert_eq!(tools["iso_purpose"], "tool");
    let not_iso = f
        .import_done(
            &f.url("files", "disk.qcow2"),
            "fake iso",
            json!({"type": "iso", "iso_purpose": "os"}),
        )
        .await?;
    assert_eq!(not_iso["status"], "import_failed", "{not_iso}");
    assert!(
        not_iso["failure_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ISO 9660"),
        "{not_iso}"
    );
    let (_, isos) = f.region.get("/v1/images?type=iso&status=available").await?;
    assert_eq!(isos["total"], 1);
    Ok(())
}
