//! Drains on real libvirt: hosts that are each a private libvirtd + QEMU (TCG) and an agent
//! offering it for migrations, guests created on one of them, and the drain's report.

use crate::instances::{self as inst, MIB};
use crate::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
use crate::{Agent, Region, wait_for};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::{DomainState, DomainStateEnum};

pub const SETTLE: Duration = Duration::from_secs(120);
pub const DRAIN: Duration = Duration::from_secs(180);

pub struct Hv {
    pub daemon: LibvirtDaemon,
    pub agent: Agent,
}

impl Hv {
    pub fn conn(&self) -> anyhow::Result<Connect> {
        self.daemon.connect()
    }

    /// The domain's UUID when libvirt runs it here.
    pub fn running(&self, name: &str) -> anyhow::Result<Option<String>> {
        let conn = self.conn()?;
        let Ok(dom) = conn.lookup_domain_by_name(name) else {
            return Ok(None);
        };
        let running = dom.info()?.state == DomainStateEnum::Known(DomainState::Running);
        Ok(running.then(|| dom.uuid_string()).transpose()?)
    }
}

/// `n` hosts on 127.0.0.{base+i}, each a libvirtd and an agent that offers its daemon for
/// migrations; `None` where real libvirt is not allowed.
pub async fn hosts(region: &Region, names: &[&str], base: u8) -> anyhow::Result<Option<Vec<Hv>>> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let ip = Ipv4Addr::new(127, 0, 0, base + i as u8);
        let Some(daemon) = LibvirtDaemon::start(LibvirtDaemonOptions::new(name, ip))? else {
            return Ok(None);
        };
        let agent = region
            .start_migrating_agent(
                &ip.to_string(),
                "az1",
                &daemon.unix_uri(),
                &daemon.tcp_uri(),
            )
            .await?;
        region.wait_agent(&agent.host_id, "online").await?;
        out.push(Hv { daemon, agent });
    }
    Ok(Some(out))
}

pub async fn host_action(
    region: &Region,
    host: &str,
    action: &str,
) -> anyhow::Result<(u16, Value)> {
    region
        .post(&format!("/v1/hosts/{host}/{action}"), json!({}))
        .await
}

/// Creates `names` running on `on` (the other hosts locked meanwhile) from a blank disk:
/// the guests idle in the firmware, so their migrations are quick.
pub async fn instances_on(
    region: &Region,
    hvs: &[Hv],
    on: usize,
    names: &[&str],
) -> anyhow::Result<Vec<String>> {
    let tenant = inst::tenant(region, "ops@example.com").await?;
    let image = inst::qcow2_image(region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default();
    guests_on(region, hvs, on, &tenant.token, image, names).await
}

/// Creates `names` of the tenant acting with `token`, from `image`, running on `on`.
pub async fn guests_on(
    region: &Region,
    hvs: &[Hv],
    on: usize,
    token: &str,
    image: &str,
    names: &[&str],
) -> anyhow::Result<Vec<String>> {
    for (i, hv) in hvs.iter().enumerate() {
        if i != on {
            host_action(region, &hv.agent.host_id, "lock").await?;
        }
    }
    let mut ids = Vec::new();
    for name in names {
        let (status, body) = inst::create(region, token, name, image, 128 * MIB, json!({})).await?;
        anyhow::ensure!(status == 202, "create {name}: {status} {body}");
        ids.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    for id in &ids {
        let running = inst::expect_state(region, id, "running", SETTLE).await?;
        anyhow::ensure!(
            running["host_id"] == hvs[on].agent.host_id.as_str(),
            "{running}"
        );
    }
    for (i, hv) in hvs.iter().enumerate() {
        if i != on {
            host_action(region, &hv.agent.host_id, "unlock").await?;
        }
    }
    Ok(ids)
}

/// An image whose guest boots into a loop that rewrites 512 KiB of its memory without end:
/// with the migration bandwidth held low, its live migration never converges and runs until
/// it is aborted.
pub async fn busy_image(region: &Region, tenant: &str) -> anyhow::Result<Value> {
    // Real-mode boot sector: for each segment 0x1000..0x8000, `inc byte [bx]` over all
    // 64 KiB; then again from the first.
    const LOOP: [u8; 28] = [
        0xFA, // cli
        0xBA, 0x00, 0x10, // mov dx, 0x1000
        0x8E, 0xDA, // outer: mov ds, dx
        0x31, 0xDB, // xor bx, bx
        0xFE, 0x07, // inner: inc byte [bx]
        0x43, // inc bx
        0x75, 0xFB, // jnz inner
        0x81, 0xC2, 0x00, 0x10, // add dx, 0x1000
        0x81, 0xFA, 0x00, 0x90, // cmp dx, 0x9000
        0x72, 0xED, // jb outer
        0xBA, 0x00, 0x10, // mov dx, 0x1000
        0xEB, 0xE8, // jmp outer
    ];
    let mut sector = [0u8; 512];
    sector[..LOOP.len()].copy_from_slice(&LOOP);
    sector[510..].copy_from_slice(&[0x55, 0xAA]);
    let raw = region.dir.path().join("busy.raw");
    let file = std::fs::File::create(&raw)?;
    file.set_len(64 * MIB)?;
    std::os::unix::fs::FileExt::write_all_at(&file, &sector, 0)?;
    let qcow2 = region.dir.path().join("busy.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img convert failed");
    inst::upload(region, tenant, "busy", &qcow2, json!({})).await
}

pub async fn drain_report(region: &Region, host: &str) -> anyhow::Result<Value> {
    let (status, body) = region.get(&format!("/v1/hosts/{host}/maintenance")).await?;
    anyhow::ensure!(status == 200, "GET maintenance: {status} {body}");
    Ok(body)
}

/// Waits for the drain of `host` to end; returns its report. On a timeout, prints the last
/// report and the coordinator's log.
pub async fn drain_ended(region: &Region, host: &str) -> anyhow::Result<Value> {
    let ended = wait_for("the drain to end", DRAIN, || async {
        let d = drain_report(region, host).await?;
        Ok((d["status"] != "running").then_some(d))
    })
    .await;
    let incomplete = ended.as_ref().map_or(true, |d| d["left"] != 0);
    if incomplete {
        eprintln!("last report: {:#}", drain_report(region, host).await?);
        if let Some(root) = region.data_dir().parent() {
            let text = std::fs::read_to_string(root.join("coordinator.log")).unwrap_or_default();
            let mut tail: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .rev()
                .take(40)
                .collect();
            tail.reverse();
            eprintln!("coordinator warnings:\n{}", tail.join("\n"));
        }
    }
    ended
}

pub fn item<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["instance_id"] == id))
        .unwrap_or(&Value::Null)
}

/// Marks an instance as holding a USB device (devices arrive with a later issue; the drain
/// must already leave such an instance), straight in the coordinator's database.
pub fn attach_usb(region: &Region, id: &str) -> anyhow::Result<()> {
    let db = region.data_dir().join("plinth.db");
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE instances SET devices_json='[\\\"usb-1-2\\\"]' WHERE id=?\", (sys.argv[2],)); \
             c.commit()",
        ])
        .arg(&db)
        .arg(id)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "python sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
