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
    hosts_with(region, names, base, &[]).await
}

/// [`hosts`] whose agents run with more flags.
pub async fn hosts_with(
    region: &Region,
    names: &[&str],
    base: u8,
    agent_args: &[String],
) -> anyhow::Result<Option<Vec<Hv>>> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let ip = Ipv4Addr::new(127, 0, 0, base + i as u8);
        let Some(daemon) = LibvirtDaemon::start(LibvirtDaemonOptions::new(name, ip))? else {
            return Ok(None);
        };
        let agent = region
            .start_migrating_agent_with(
                &ip.to_string(),
                "az1",
                &daemon.unix_uri(),
                &daemon.tcp_uri(),
                agent_args,
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
    let guests = Guests {
        token: tenant.token,
        image: image["id"].as_str().unwrap_or_default().to_string(),
        vcpus: 1,
    };
    guests.on(region, hvs, on, names).await
}

/// Guests of one tenant (acting with `token`) from one image, 128 MiB each.
pub struct Guests {
    pub token: String,
    pub image: String,
    pub vcpus: u64,
}

impl Guests {
    /// Creates `names` running on host `on` (the other hosts locked meanwhile).
    pub async fn on(
        &self,
        region: &Region,
        hvs: &[Hv],
        on: usize,
        names: &[&str],
    ) -> anyhow::Result<Vec<String>> {
        for (i, hv) in hvs.iter().enumerate() {
            if i != on {
                host_action(region, &hv.agent.host_id, "lock").await?;
            }
        }
        let mut ids = Vec::new();
        for name in names {
            let extra = json!({"vcpus": self.vcpus});
            let (status, body) =
                inst::create(region, &self.token, name, &self.image, 128 * MIB, extra).await?;
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
}

/// An image whose guest boots into a loop that rewrites 16 MiB of its disk without end (BIOS
/// extended writes of 127 sectors of its ROM): with the migration bandwidth held low, the
/// copy of its disk never catches up, so its live migration runs until it is aborted.
pub async fn busy_image(region: &Region, tenant: &str) -> anyhow::Result<Value> {
    // Real mode, loaded at 0x7C00; the disk address packet (DAP) is at 0x7C25, its LBA at
    // 0x7C2D.
    const CODE: [u8; 53] = [
        0xFB, // sti
        0x31, 0xC0, // xor ax, ax
        0x8E, 0xD8, // mov ds, ax
        0xBE, 0x25, 0x7C, // again: mov si, DAP
        0xB4, 0x43, // mov ah, 0x43 (extended write)
        0xB0, 0x00, // mov al, 0 (no verify)
        0xB2, 0x80, // mov dl, 0x80 (first disk)
        0xCD, 0x13, // int 0x13
        0x83, 0x06, 0x2D, 0x7C, 0x7F, // add word [LBA], 127
        0x81, 0x3E, 0x2D, 0x7C, 0x00, 0x88, // cmp word [LBA], 0x8800
        0x72, 0x06, // jb next
        0xC7, 0x06, 0x2D, 0x7C, 0x00, 0x08, // mov word [LBA], 0x0800
        0xEB, 0xE0, // next: jmp again
        // DAP: size 16, 127 sectors, from F000:0000 (the BIOS ROM), to LBA 0x800.
        0x10, 0x00, 0x7F, 0x00, 0x00, 0x00, 0x00, 0xF0, //
        0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    boot_sector_image(region, tenant, "busy", &CODE).await
}

/// An image whose guest boots and halts at once: it costs the host no CPU (a blank disk's
/// firmware would keep trying to boot from the network), so timings are not disturbed.
pub async fn idle_image(region: &Region, tenant: &str) -> anyhow::Result<Value> {
    const CODE: [u8; 4] = [
        0xFA, // cli
        0xF4, // hlt
        0xEB, 0xFD, // jmp back to hlt
    ];
    boot_sector_image(region, tenant, "idle", &CODE).await
}

/// A 64 MiB qcow2 whose first sector boots `code` (x86 real mode), uploaded as `name`.
async fn boot_sector_image(
    region: &Region,
    tenant: &str,
    name: &str,
    code: &[u8],
) -> anyhow::Result<Value> {
    let mut sector = [0u8; 512];
    sector[..code.len()].copy_from_slice(code);
    sector[510..].copy_from_slice(&[0x55, 0xAA]);
    let raw = region.dir.path().join(format!("{name}.raw"));
    let file = std::fs::File::create(&raw)?;
    file.set_len(64 * MIB)?;
    std::os::unix::fs::FileExt::write_all_at(&file, &sector, 0)?;
    let qcow2 = region.dir.path().join(format!("{name}.qcow2"));
    let ok = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img convert failed");
    inst::upload(region, tenant, name, &qcow2, json!({})).await
}

/// The dry run of a drain of `host`.
pub async fn drain_plan(region: &Region, host: &str) -> anyhow::Result<Value> {
    let (status, body) = region
        .get(&format!("/v1/hosts/{host}/maintenance/plan"))
        .await?;
    anyhow::ensure!(status == 200, "GET plan: {status} {body}");
    Ok(body)
}

/// Waits until host `host`'s drain has a migration under way (or done).
pub async fn migration_started(region: &Region, host: &str) -> anyhow::Result<()> {
    wait_for("a migration to start", DRAIN, || async {
        let d = drain_report(region, host).await?;
        Ok(d["items"]
            .as_array()
            .is_some_and(|i| {
                i.iter()
                    .any(|i| i["status"] == "migrating" || i["status"] == "moved")
            })
            .then_some(()))
    })
    .await
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

/// A drain of three real libvirtd hosts (on 127.0.0.`hosts_base` and the two after it) of
/// the HA region `ha`, asked through coordinator `api`, with `fail` done to the region once
/// the first migration is under way: the drain must still end with every guest moved off
/// host A, each running on exactly one host and started migrating once (one "Live migration
/// started." per guest across the agents), a coordinator of `survivors` holding the job
/// lease, and the claims adding up. `Ok(false)` where real libvirt is not allowed.
pub async fn ha_drain_survives(
    ha: &mut crate::ha::Ha,
    api: usize,
    hosts_base: u8,
    survivors: &[usize],
    fail: impl FnOnce(&mut crate::ha::Ha) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let ca = std::fs::read_to_string(ha.members[0].data.join("ca.pem"))?;
    let region = Region::attached(&ha.members[api].url, &ha.admin_token, &ca)?;
    region.create_cluster("az1").await?;
    let urls: Vec<String> = ha.members.iter().map(|m| m.url.clone()).collect();
    // A beat a second: a host busy with a migration (QEMU under TCG) still beats in time.
    let agent_args = vec![
        "--coordinator-urls".to_string(),
        urls.join(","),
        "--heartbeat-interval".to_string(),
        "1s".to_string(),
    ];
    let Some(mut hvs) =
        hosts_with(&region, &["haA", "haB", "haC"], hosts_base, &agent_args).await?
    else {
        return Ok(false);
    };
    let a = hvs[0].agent.host_id.clone();
    let names = ["web-1", "web-2", "web-3", "web-4"];
    let ids = instances_on(&region, &hvs, 0, &names).await?;
    assert_eq!(host_action(&region, &a, "lock").await?.0, 200);
    let (status, started) = region
        .post(
            &format!("/v1/hosts/{a}/maintenance/enter"),
            json!({"parallelism": 2}),
        )
        .await?;
    assert_eq!(status, 202, "{started}");
    migration_started(&region, &a).await?;
    fail(ha)?;

    let report = drain_ended(&region, &a)
        .await
        .map_err(|e| e.context(ha.log(api)))?;
    eprintln!("drain report: {report:#}");
    assert_eq!(report["host_state"], "maintenance", "{report}");
    assert_eq!(report["moved"], json!(ids.len()), "{report}");
    assert!(survivors.contains(&ha.holder(survivors).await?));
    for id in &ids {
        moved_off(&region, &hvs, id, &a).await?;
        let started: usize = hvs
            .iter()
            .map(|hv| {
                hv.agent
                    .log_text()
                    .lines()
                    .filter(|l| l.contains("Live migration started.") && l.contains(id.as_str()))
                    .count()
            })
            .sum();
        assert_eq!(started, 1, "{id}: migrations started");
    }
    let (cores_a, _) = inst::allocation(&region, &a).await?;
    assert_eq!(cores_a, 0, "nothing left on A");
    let mut total = 0;
    for hv in &hvs[1..] {
        total += inst::allocation(&region, &hv.agent.host_id).await?.0;
    }
    assert_eq!(total, ids.len() as u64, "every vCPU moved to B and C");
    for hv in &mut hvs {
        hv.agent.stop();
    }
    Ok(true)
}

/// Checks that guest `id` is `running` on a host other than `off` and that exactly one of
/// `hvs`'s libvirtd runs it, the one of its host; returns that one's index.
pub async fn moved_off(region: &Region, hvs: &[Hv], id: &str, off: &str) -> anyhow::Result<usize> {
    let i = inst::expect_state(region, id, "running", SETTLE).await?;
    let host = i["host_id"].as_str().unwrap_or_default();
    assert_ne!(host, off, "{i}");
    let on: Vec<usize> = (0..hvs.len())
        .filter(|n| hvs[*n].running(id).ok().flatten().is_some())
        .collect();
    assert_eq!(on.len(), 1, "{id} runs on hosts {on:?}");
    assert_eq!(hvs[on[0]].agent.host_id, host, "{id}");
    Ok(on[0])
}
