//! What the bare-metal end-to-end tests (tests/baremetal*.rs) share: a region that syncs
//! power every second, request bodies, calls that keep every response to search for the
//! password at the end, and waits on a server's state.

use crate::{Region, RegionOptions, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The simulators' admin password: distinctive, so a leak is found by a plain search.
pub const SECRET: &str = "Zq7-sEcReT-91x";
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn region() -> anyhow::Result<Region> {
    region_with(&[]).await
}

/// [`region`] with more coordinator flags (`--baremetal-health-interval 1s`, say).
pub async fn region_with(flags: &[&str]) -> anyhow::Result<Region> {
    let mut extra_args = vec!["--baremetal-sync-interval".to_string(), "1s".into()];
    extra_args.extend(flags.iter().map(|f| f.to_string()));
    let opts = RegionOptions {
        extra_args,
        ..RegionOptions::default()
    };
    let r = Region::start_with(opts).await?;
    r.create_cluster("az1").await?;
    Ok(r)
}

pub fn add_body(name: &str, ip: &str, password: &str, tenant: Option<&str>) -> Value {
    let mut b = json!({
        "name": name, "ipmi_ip": ip, "ipmi_username": "admin", "ipmi_password": password,
        "rack_location": "R7-U12", "label": "db",
    });
    if let Some(t) = tenant {
        b["tenant_email"] = json!(t);
    }
    b
}

/// Every response body the test saw, to search for the password at the end.
#[derive(Default)]
pub struct Seen(pub Vec<String>);

impl Seen {
    pub fn keep(&mut self, v: &Value) -> Value {
        self.0.push(v.to_string());
        v.clone()
    }

    /// POST as the admin; the answer is kept.
    pub async fn post(
        &mut self,
        r: &Region,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        call(r, self, Method::POST, path, None, Some(body)).await
    }

    /// POST with `token` (a tenant's, say); the answer is kept.
    pub async fn post_as(
        &mut self,
        r: &Region,
        token: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        call(r, self, Method::POST, path, Some(token), Some(body)).await
    }

    /// DELETE as the admin; the answer is kept.
    pub async fn delete(&mut self, r: &Region, path: &str) -> anyhow::Result<(u16, Value)> {
        call(r, self, Method::DELETE, path, None, None).await
    }
}

pub async fn call(
    r: &Region,
    seen: &mut Seen,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let token = token.unwrap_or(&r.admin_token);
    let (status, v) = r.call(method, path, Some(token), body).await?;
    seen.keep(&v);
    Ok((status, v))
}

/// Waits until operation `op` ends, read with `token` (the admin's when `None`); returns it.
pub async fn operation_ended(r: &Region, op: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let token = token.unwrap_or(&r.admin_token);
    wait_for(&format!("operation {op} to end"), WAIT, || async {
        let (status, v) = r
            .call(
                Method::GET,
                &format!("/v1/operations/{op}"),
                Some(token),
                None,
            )
            .await?;
        anyhow::ensure!(status == 200, "GET operation {op}: {status} {v}");
        Ok((v["status"] != "running").then_some(v))
    })
    .await
}

/// A power action (`POST /v1/baremetal/{id}/power`, with `token` or the admin's): answered
/// 202 with its operation, which is followed to its end. The status and the ended operation
/// (the refusal's body when it was not 202).
pub async fn power(
    r: &Region,
    seen: &mut Seen,
    id: &str,
    body: Value,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let path = format!("/v1/baremetal/{id}/power");
    let (status, v) = call(r, seen, Method::POST, &path, token, Some(body)).await?;
    if status != 202 {
        return Ok((status, v));
    }
    anyhow::ensure!(
        v["kind"] == "baremetal_power" && v["target_id"] == id,
        "not the power operation: {v}"
    );
    let op = v["id"].as_str().unwrap_or_default().to_string();
    let ended = operation_ended(r, &op, token).await?;
    Ok((status, seen.keep(&ended)))
}

pub async fn server(r: &Region, id: &str) -> anyhow::Result<Value> {
    let (status, v) = r.get(&format!("/v1/baremetal/{id}")).await?;
    anyhow::ensure!(status == 200, "GET {id}: {status} {v}");
    Ok(v)
}

/// Waits until the server leaves `preparing`; returns it.
pub async fn settled(r: &Region, id: &str) -> anyhow::Result<Value> {
    wait_for(&format!("{id} prepared"), WAIT, || async {
        let v = server(r, id).await?;
        Ok((v["state"] != "preparing").then_some(v))
    })
    .await
}

/// Waits until the agent has read the server's inventory (from Redfish, or found none);
/// returns the server.
pub async fn inventory_read(r: &Region, id: &str) -> anyhow::Result<Value> {
    wait_for("the inventory to be read", WAIT, || async {
        let v = server(r, id).await?;
        Ok((v["inventory"]["note"]
            .as_str()
            .is_none_or(|n| !n.starts_with("not read yet")))
        .then_some(v))
    })
    .await
}

/// No log file the test produced, no response it saw and no byte of the store holds `secret`.
pub fn assert_no_secret(r: &Region, seen: &Seen, secret: &str) -> anyhow::Result<()> {
    let mut checked = 0;
    let mut stack = vec![r.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".log") || name.contains(".db") {
                let bytes = std::fs::read(&path)?;
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                anyhow::ensure!(!found, "the password is in {}", path.display());
                checked += 1;
            }
        }
    }
    anyhow::ensure!(
        checked >= 2,
        "found only {checked} logs and stores to search"
    );
    for body in &seen.0 {
        anyhow::ensure!(
            !body.contains(secret),
            "the password is in a response: {body}"
        );
    }
    Ok(())
}
