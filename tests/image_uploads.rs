//! Image content writers end to end (issue 16, point 4): one upload per image at a time, no
//! blob orphaned, and the start-up sweep that removes what no image names — against a real
//! coordinator, with real qcow2 files from qemu-img.

use plinth_e2e::{Region, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::sync::watch;

const UPLOADS: usize = 10;
/// What a gated upload sends before it waits for the gate.
const HEAD: usize = 64 << 10;

struct Fixture {
    region: Region,
    tenant: String,
    disk: Vec<u8>,
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
    let path = region.dir.path().join("disk.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("1G")
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img create failed");
    let disk = std::fs::read(&path)?;
    anyhow::ensure!(
        disk.len() > HEAD,
        "the qcow2 is smaller than one gated head"
    );
    Ok(Fixture {
        tenant: tenant["id"].as_str().unwrap_or_default().to_string(),
        region,
        disk,
    })
}

impl Fixture {
    /// A new custom image awaiting its upload; returns its id.
    async fn image(&self, name: &str) -> anyhow::Result<String> {
        let body = json!({"name": name, "tenant_id": self.tenant, "os_type": "linux",
            "architecture": "x86_64", "platform": "centos", "version": "7.9", "target_size_gb": 20});
        let (status, image) = self.region.post("/v1/images", body).await?;
        anyhow::ensure!(status == 201, "{image}");
        Ok(image["id"].as_str().unwrap_or_default().to_string())
    }

    async fn show(&self, id: &str) -> anyhow::Result<Value> {
        let (status, image) = self.region.get(&format!("/v1/images/{id}")).await?;
        anyhow::ensure!(status == 200, "{image}");
        Ok(image)
    }

    /// `PUT /content` whose body sends the disk's first `HEAD` bytes, then the rest once `gate`
    /// opens; answers the status and JSON.
    async fn gated_upload(
        &self,
        id: &str,
        mut gate: watch::Receiver<bool>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let head = self.disk[..HEAD].to_vec();
        let rest = self.disk[HEAD..].to_vec();
        let first = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) });
        let then = futures_util::stream::once(async move {
            gate.wait_for(|open| *open)
                .await
                .map_err(std::io::Error::other)?;
            Ok(rest)
        });
        use futures_util::StreamExt;
        let resp = self
            .region
            .http
            .put(format!("{}/v1/images/{id}/content", self.region.url))
            .bearer_auth(&self.region.admin_token)
            .header("content-length", self.disk.len())
            .body(reqwest::Body::wrap_stream(first.chain(then)))
            .send()
            .await?;
        let status = resp.status();
        Ok((status, resp.json().await?))
    }

    /// An upload that sends the disk's first `HEAD` bytes and then nothing, until aborted.
    fn stalled_upload(&self, id: &str) -> tokio::task::JoinHandle<()> {
        use futures_util::StreamExt;
        let head = self.disk[..HEAD].to_vec();
        let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) })
            .chain(futures_util::stream::pending());
        let request = self
            .region
            .http
            .put(format!("{}/v1/images/{id}/content", self.region.url))
            .bearer_auth(&self.region.admin_token)
            .body(reqwest::Body::wrap_stream(body));
        tokio::spawn(async move {
            let _ = request.send().await;
        })
    }

    fn images_dir(&self, sub: &str) -> PathBuf {
        self.region.data_dir().join("images").join(sub)
    }
}

fn files_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[tokio::test]
async fn ten_concurrent_uploads_one_accepted_one_blob() -> anyhow::Result<()> {
    let f = fixture().await?;
    let id = f.image("contested").await?;
    let (open, gate) = watch::channel(false);
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let f = std::sync::Arc::new(f);
    for _ in 0..UPLOADS {
        let (f, id, gate, done_tx) = (f.clone(), id.clone(), gate.clone(), done_tx.clone());
        tokio::spawn(async move {
            let _ = done_tx.send(f.gated_upload(&id, gate).await);
        });
    }
    drop(done_tx);

    // Every body waits at the gate, so the one upload that took the image holds it while the
    // other nine are answered.
    let mut refused = Vec::new();
    while refused.len() < UPLOADS - 1 {
        let answer = tokio::time::timeout(Duration::from_secs(30), done.recv())
            .await
            .map_err(|_| anyhow::anyhow!("only {} uploads were answered", refused.len()))?
            .ok_or_else(|| anyhow::anyhow!("an upload task ended without an answer"))??;
        refused.push(answer);
    }
    for (status, body) in &refused {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "upload_in_progress", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&id),
            "the message names the image: {message}"
        );
    }
    // The refusals changed nothing: one upload is still writing.
    let image = f.show(&id).await?;
    assert_eq!(image["status"], "importing", "{image}");
    assert!(files_in(&f.images_dir("blobs"))?.is_empty());
    assert_eq!(files_in(&f.images_dir("staging"))?.len(), 1);

    open.send(true)?;
    let (status, image) = tokio::time::timeout(Duration::from_secs(60), done.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the accepted upload never answered"))??;
    assert_eq!(status, StatusCode::OK, "{image}");
    assert!(done.recv().await.is_none(), "exactly ten answers");
    assert_eq!(image["status"], "available", "{image}");
    assert_eq!(image["sha256"], hex::encode(Sha256::digest(&f.disk)));
    assert_eq!(image["size_bytes"], f.disk.len());
    assert_eq!(
        files_in(&f.images_dir("blobs"))?.len(),
        1,
        "exactly one blob"
    );
    assert!(files_in(&f.images_dir("staging"))?.is_empty());

    // After it: content is written once.
    let (status, again) = f.gated_upload(&id, watch::channel(true).1).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(
        again["error"]["code"], "image_not_awaiting_upload",
        "{again}"
    );
    assert_eq!(files_in(&f.images_dir("blobs"))?.len(), 1);
    Ok(())
}

/// `PLINTH_LOG` output has ANSI colours around field names; the sweep's line without them.
fn last_sweep_line(log: &str) -> Option<String> {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .rfind(|l| l.contains("Swept the image store"))
        .map(str::to_string)
}

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn start_up_sweeps_what_no_image_names() -> anyhow::Result<()> {
    let mut f = fixture().await?;
    // Real content, uploaded and kept.
    let kept = f.image("kept").await?;
    let (status, image) = f.gated_upload(&kept, watch::channel(true).1).await?;
    assert_eq!(status, StatusCode::OK, "{image}");
    let kept_blobs = files_in(&f.images_dir("blobs"))?;
    assert_eq!(kept_blobs.len(), 1);

    // A client that goes away mid-upload: the upload fails, its mark and staging file go.
    let dropped = f.image("dropped").await?;
    let upload = f.stalled_upload(&dropped);
    wait_for(
        "the dropped upload to stage",
        Duration::from_secs(30),
        || async { Ok((files_in(&f.images_dir("staging"))?.len() == 1).then_some(())) },
    )
    .await?;
    upload.abort();
    let failed = wait_for(
        "the dropped upload to fail",
        Duration::from_secs(30),
        || async {
            let image = f.show(&dropped).await?;
            Ok((image["status"] == "import_failed").then_some(image))
        },
    )
    .await?;
    assert!(failed["failure_reason"].is_string(), "{failed}");
    assert!(files_in(&f.images_dir("staging"))?.is_empty());
    assert_eq!(files_in(&f.images_dir("blobs"))?, kept_blobs);

    // A coordinator killed mid-upload, plus files planted without a row.
    let cut = f.image("cut").await?;
    let cut_upload = f.stalled_upload(&cut);
    wait_for(
        "the cut upload to stage",
        Duration::from_secs(30),
        || async { Ok((files_in(&f.images_dir("staging"))?.len() == 1).then_some(())) },
    )
    .await?;
    let planted = [
        ("blobs", "blob-00000000dead", 3000usize),
        ("blobs", "not-a-blob", 20),
        ("staging", "blob-00000000beef.part", 500),
    ];
    for (dir, name, len) in planted {
        std::fs::write(f.images_dir(dir).join(name), vec![1u8; len])?;
    }
    f.region.kill();
    cut_upload.abort();
    f.region.restart().await?;

    assert_eq!(
        files_in(&f.images_dir("blobs"))?,
        kept_blobs,
        "only real content is left"
    );
    assert!(files_in(&f.images_dir("staging"))?.is_empty());
    let log = std::fs::read_to_string(f.region.dir.path().join("coordinator.log"))?;
    let line = last_sweep_line(&log).ok_or_else(|| anyhow::anyhow!("no sweep line:\n{log}"))?;
    assert_eq!(
        field(&line, "files"),
        Some(4),
        "3 planted + the cut upload's: {line}"
    );
    let planted_bytes: usize = planted.iter().map(|(_, _, len)| len).sum();
    assert!(
        field(&line, "bytes").is_some_and(|b| b >= planted_bytes as u64),
        "{line}"
    );
    assert_eq!(
        field(&line, "marks"),
        Some(1),
        "the cut upload's mark: {line}"
    );

    let cut_image = f.show(&cut).await?;
    assert_eq!(cut_image["status"], "import_failed", "{cut_image}");
    // Kept content still downloads whole.
    let (status, link) = f
        .region
        .post(&format!("/v1/images/{kept}/download-link"), json!({}))
        .await?;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().unwrap_or_default();
    let got = f.region.http.get(url).send().await?;
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await?.to_vec(), f.disk);
    Ok(())
}
