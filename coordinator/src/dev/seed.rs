//! The dev region's demo, made once through the public API like any client would: a demo
//! tenant with a token and a quota; a tiny bootable image imported from a local HTTP server
//! through the real import path; two running instances of it; an IPv4 and an IPv6 segment
//! with EIPs (one bound); the simulated BMCs as the demo tenant's bare-metal servers.

use super::bmc::Bmc;
use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

pub const DEMO_EMAIL: &str = "demo@example.com";
/// The demo instances' administrator password (dev mode only).
const DEMO_PASSWORD: &str = "plinth-demo-1";
/// How long the image import, the instances and the servers may take to settle.
const SETTLE: Duration = Duration::from_secs(180);

/// What the demo made, for dev mode's closing lines.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Demo {
    pub tenant_id: String,
    pub tenant_token: String,
    pub instances: Vec<String>,
    pub baremetal: Vec<String>,
}

/// The admin's client of the region's own API.
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    pub fn new(url: &str, ca_pem: &str, token: &str) -> anyhow::Result<Api> {
        let tls = plinth_common::tls::client_config(ca_pem, None)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Api {
            http,
            url: url.to_string(),
            token: token.to_string(),
        })
    }

    /// One call as `token` (the admin's when `None`); the answer's body, or why it failed.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(token.unwrap_or(&self.token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None, None).await
    }

    /// The host an instance runs on.
    pub async fn host_of(&self, instance: &str) -> anyhow::Result<String> {
        let v = self.get(&format!("/v1/instances/{instance}")).await?;
        Ok(v["host_id"]
            .as_str()
            .context("the instance has no host")?
            .to_string())
    }

    /// Re-reads `path` until `field` is one of `done` (then its body) or `fail` (an error).
    async fn settled(
        &self,
        path: &str,
        field: &str,
        done: &[&str],
        fail: &[&str],
    ) -> anyhow::Result<Value> {
        let until = Instant::now() + SETTLE;
        loop {
            let v = self.get(path).await?;
            let state = v[field].as_str().unwrap_or_default();
            if done.contains(&state) {
                return Ok(v);
            }
            if fail.contains(&state) || Instant::now() > until {
                bail!("{path} is {state}: {v}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// Makes the demo; `work` is a directory of the data dir for the image it serves.
/// The demo segments' NIC on hosts of libvirt's test driver, as a real region's would be named.
pub const DEMO_NIC: &str = "eth1";
/// The dev region's own uplink on real QEMU hosts, and the far end of it (the "switch port").
const DEV_UPLINK: &str = "pldev0";
const DEV_UPLINK_PEER: &str = "pldev0sw";

/// A veth pair on this machine for the demo segments when the hosts run real guests (they all
/// share this kernel, so it is every host's NIC): the agents bridge `pldev0` like a real
/// uplink and the demo's EIP is a real NIC in its guest. Made once; it stays with the region's
/// data, whose segments name it. Untagged: not every kernel has 802.1Q.
pub fn dev_uplink() -> anyhow::Result<&'static str> {
    let exists = std::process::Command::new("ip")
        .args(["link", "show", "dev", DEV_UPLINK])
        .output()?
        .status
        .success();
    if !exists {
        for args in [
            vec![
                "link",
                "add",
                DEV_UPLINK,
                "type",
                "veth",
                "peer",
                "name",
                DEV_UPLINK_PEER,
            ],
            vec!["link", "set", DEV_UPLINK, "up"],
            vec!["link", "set", DEV_UPLINK_PEER, "up"],
        ] {
            let out = std::process::Command::new("ip").args(&args).output()?;
            anyhow::ensure!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(DEV_UPLINK)
}

pub async fn seed(api: &Api, work: &Path, bmcs: &[Bmc], nic: &str) -> anyhow::Result<Demo> {
    let tenant = api
        .post(
            "/v1/tenants",
            None,
            json!({"email": DEMO_EMAIL, "name": "Demo tenant"}),
        )
        .await?;
    let tenant_id = id(&tenant);
    api.call(
        Method::PUT,
        &format!("/v1/tenants/{tenant_id}/quota"),
        None,
        Some(json!({"cores": 16, "memory_bytes": 16u64 << 30, "instances": 10})),
    )
    .await?;
    let token = api
        .post(
            "/v1/tokens",
            None,
            json!({"role": "tenant", "tenant_id": tenant_id, "name": "demo"}),
        )
        .await?;
    let tenant_token = token["secret"]
        .as_str()
        .context("the token's secret")?
        .to_string();

    let image = import_image(api, work, &tenant_id).await?;
    let mut instances = Vec::new();
    for name in ["demo-web-1", "demo-web-2"] {
        let created = api
            .post(
                "/v1/instances",
                Some(&tenant_token),
                json!({"name": name, "image_id": image, "vcpus": 1,
                       "memory_bytes": 128u64 << 20, "admin_password": DEMO_PASSWORD}),
            )
            .await?;
        instances.push(id(&created));
    }
    for inst in &instances {
        api.settled(
            &format!("/v1/instances/{inst}"),
            "state",
            &["running"],
            &["error"],
        )
        .await?;
    }

    let v4 = api
        .post(
            "/v1/segments",
            None,
            json!({"name": "demo-public-v4", "cidr": "203.0.113.0/24",
                   "gateway": "203.0.113.1", "nic": nic, "route_policy": "default"}),
        )
        .await?;
    let v6 = api
        .post(
            "/v1/segments",
            None,
            json!({"name": "demo-public-v6", "cidr": "2001:db8:100::/64",
                   "gateway": "2001:db8:100::1", "nic": nic, "route_policy": "default"}),
        )
        .await?;
    let mut eips = Vec::new();
    for seg in [&v4, &v4, &v6] {
        let eip = api
            .post(
                "/v1/eips",
                Some(&tenant_token),
                json!({"segment_id": id(seg)}),
            )
            .await?;
        eips.push(id(&eip));
    }
    if let (Some(eip), Some(inst)) = (eips.first(), instances.first()) {
        api.post(
            &format!("/v1/eips/{eip}/bind"),
            Some(&tenant_token),
            json!({"instance_id": inst}),
        )
        .await?;
    }

    let mut baremetal = Vec::new();
    for (i, bmc) in bmcs.iter().enumerate() {
        let added = api
            .post(
                "/v1/baremetal",
                None,
                json!({"name": format!("demo-bm-{}", i + 1), "ipmi_ip": bmc.ip(),
                       "ipmi_username": "admin", "ipmi_password": bmc.password(),
                       "rack_location": format!("R1-U{}", 10 + i), "label": "demo",
                       "tenant_email": DEMO_EMAIL}),
            )
            .await?;
        baremetal.push(id(&added));
    }
    for bm in &baremetal {
        api.settled(
            &format!("/v1/baremetal/{bm}"),
            "state",
            &["running"],
            &["failed"],
        )
        .await?;
    }
    Ok(Demo {
        tenant_id,
        tenant_token,
        instances,
        baremetal,
    })
}

/// A 64 MiB qcow2 whose guest boots and halts at once (a real boot sector: no CPU spent,
/// quick to migrate), served once over HTTP on loopback and imported for the demo tenant,
/// public.
async fn import_image(api: &Api, work: &Path, tenant: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(work)?;
    let raw = work.join("tiny.raw");
    let qcow2 = work.join("tiny.qcow2");
    let mut sector = [0u8; 512];
    // cli; hlt; jmp back to hlt.
    sector[..4].copy_from_slice(&[0xFA, 0xF4, 0xEB, 0xFD]);
    sector[510..].copy_from_slice(&[0x55, 0xAA]);
    let file = std::fs::File::create(&raw)?;
    file.set_len(64 << 20)?;
    std::os::unix::fs::FileExt::write_all_at(&file, &sector, 0)?;
    let _ = std::fs::remove_file(&qcow2);
    let ok = tokio::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()
        .await
        .context("running qemu-img")?;
    anyhow::ensure!(ok.success(), "qemu-img convert failed");
    let _ = std::fs::remove_file(&raw);
    let bytes = bytes::Bytes::from(std::fs::read(&qcow2)?);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/tiny.qcow2",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { bytes }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let imported = async {
        let image = api
            .post(
                "/v1/images/import",
                None,
                json!({"url": format!("http://{addr}/tiny.qcow2"), "name": "tiny-demo", "tenant_id": tenant,
                       "os_type": "linux", "architecture": "x86_64", "platform": "centos",
                       "version": "7.9", "target_size_gb": 20, "visibility": "public",
                       "note": "A boot sector that halts: made by plinth-coordinator dev.",
                       "tags": ["demo"]}),
            )
            .await?;
        let image = id(&image);
        api.settled(
            &format!("/v1/images/{image}"),
            "status",
            &["available"],
            &["import_failed"],
        )
        .await?;
        anyhow::Ok(image)
    }
    .await;
    server.abort();
    imported
}
