//! Live migration through the agent API, driven as the coordinator drives it (its mTLS client
//! and certificate), between two real privileged libvirtd daemons running QEMU (TCG): the
//! target prepares the instance's files, the source migrates the running domain into them
//! peer to peer, copying the disk's top layer (the guest wrote 16 MiB there). Failures leave
//! the domain on the source: a target nobody answers at, an abort on request, a job that
//! overruns its time (the bandwidth capped at 1 MiB/s). Needs root;
//! `PLINTH_SKIP_REAL_LIBVIRT=1` skips when not root.

use plinth_common::api::{
    AgentCreateInstance, AgentImage, AgentMigrate, AgentMigration, AgentMigrationState,
    AgentPrepared,
};
use plinth_coordinator::agents::AgentEndpoint;
use plinth_coordinator::agents::{AgentClient, AgentError};
use plinth_e2e::agent_api::{coordinator_client, endpoint};
use plinth_e2e::instances::{self as inst, MIB, PASSWORD};
use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::{DomainState, DomainStateEnum};

const SETTLE: Duration = Duration::from_secs(120);
const IP_A: &str = "127.0.0.81";
const IP_B: &str = "127.0.0.82";

fn daemon(name: &str, ip: &str) -> anyhow::Result<Option<LibvirtDaemon>> {
    LibvirtDaemon::start(LibvirtDaemonOptions::new(name, ip.parse::<Ipv4Addr>()?))
}

/// Whether libvirt at `conn` runs `name`; its UUID when it does.
fn running_uuid(conn: &Connect, name: &str) -> anyhow::Result<Option<String>> {
    let Ok(dom) = conn.lookup_domain_by_name(name) else {
        return Ok(None);
    };
    anyhow::ensure!(
        dom.info()?.state == DomainStateEnum::Known(DomainState::Running),
        "{name} is defined but not running"
    );
    Ok(Some(dom.uuid_string()?))
}

/// Waits for the migration to end, asking the agent to answer at its end (a long poll).
async fn ended(c: &AgentClient, ep: &AgentEndpoint, id: &str) -> anyhow::Result<AgentMigration> {
    wait_for("the migration to end", SETTLE, || async {
        let now = c.migration(ep, id, Some(Duration::from_secs(20))).await?;
        Ok((now.state != AgentMigrationState::Running).then_some(now))
    })
    .await
}

fn refused_with(result: Result<impl std::fmt::Debug, AgentError>, want: u16) -> bool {
    matches!(result, Err(AgentError::Refused { status, .. }) if status == want)
}

/// The create request the coordinator sends for `instance` (of `image`).
fn create_request(instance: &Value, image: &Value) -> anyhow::Result<AgentCreateInstance> {
    let text = |v: &Value, f: &str| -> anyhow::Result<String> {
        Ok(v[f]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{f} in {v}"))?
            .to_string())
    };
    let number = |v: &Value, f: &str| -> anyhow::Result<u64> {
        v[f].as_u64().ok_or_else(|| anyhow::anyhow!("{f} in {v}"))
    };
    Ok(AgentCreateInstance {
        instance_id: text(instance, "id")?,
        hostname: text(instance, "name")?,
        vcpus: number(instance, "vcpus")? as u32,
        memory_bytes: number(instance, "memory_bytes")?,
        disk_bytes: number(instance, "disk_bytes")?,
        image: AgentImage {
            id: text(image, "id")?,
            sha256: text(image, "sha256")?,
            size_bytes: number(image, "size_bytes")?,
            format: text(image, "format")?,
        },
        admin_password: PASSWORD.into(),
        devices: Vec::new(),
        nics: Vec::new(),
    })
}

/// A boot sector (x86 real mode) that writes 16 MiB of 0xa5 to its disk through the BIOS
/// (LBA 1 on, 32 KiB a call), then halts: data in the instance's top qcow2 layer, which a
/// migration copies, at 1 MiB/s for long enough to overrun a short time limit.
const WRITER: &[u8] = &[
    0xfa, // cli
    0x31, 0xc0, // xor ax, ax
    0x8e, 0xd8, // mov ds, ax
    0x8e, 0xd0, // mov ss, ax
    0xbc, 0x00, 0x7c, // mov sp, 0x7c00
    0xfb, // sti
    0xb8, 0x00, 0x10, // mov ax, 0x1000
    0x8e, 0xc0, // mov es, ax
    0x31, 0xff, // xor di, di
    0xb8, 0xa5, 0xa5, // mov ax, 0xa5a5
    0xb9, 0x00, 0x40, // mov cx, 0x4000
    0xf3, 0xab, // rep stosw: the 32 KiB buffer at 0x10000
    0xbe, 0x38, 0x7c, // write: mov si, packet
    0xb4, 0x43, // mov ah, 0x43 (extended write)
    0xb0, 0x00, // mov al, 0
    0xb2, 0x80, // mov dl, 0x80 (the first disk)
    0xcd, 0x13, // int 0x13
    0x83, 0x06, 0x40, 0x7c, 0x40, // add word [packet.lba], 64
    0x81, 0x3e, 0x40, 0x7c, 0x01, 0x80, // cmp word [packet.lba], 0x8001
    0x72, 0xe8, // jb write
    0xf4, // hang: hlt
    0xeb, 0xfd, // jmp hang
    0x00, 0x00, 0x00, // to 0x7c38
    0x10, 0x00, 0x40, 0x00, // packet: its size, 64 sectors
    0x00, 0x00, 0x00, 0x10, // buffer 0x1000:0000
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // lba 1
];

/// How much [`WRITER`] writes.
const WRITTEN: u64 = 16 * MIB;

/// A qcow2 image whose disk boots [`WRITER`], uploaded and available.
async fn writer_image(region: &Region, tenant: &str) -> anyhow::Result<Value> {
    let raw = region.dir.path().join("writer.raw");
    let mut disk = vec![0u8; 1 << 20];
    disk[..WRITER.len()].copy_from_slice(WRITER);
    disk[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&raw, &disk)?;
    let qcow2 = region.dir.path().join("writer.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "qemu-img convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst::upload(region, tenant, "writer", &qcow2, json!({})).await
}

/// Creates an instance that lands on `on`, with `other` locked meanwhile; waits till it runs.
async fn place(
    region: &Region,
    token: &str,
    name: &str,
    image: &str,
    on: &str,
    other: &str,
) -> anyhow::Result<Value> {
    let (status, body) = region
        .post(&format!("/v1/hosts/{other}/lock"), json!({}))
        .await?;
    anyhow::ensure!(status == 200, "lock {other}: {status} {body}");
    let (status, created) = inst::create(region, token, name, image, 128 * MIB, json!({})).await?;
    anyhow::ensure!(status == 202, "create {name}: {status} {created}");
    let id = created["id"].as_str().unwrap_or_default();
    let running = inst::expect_state(region, id, "running", SETTLE).await?;
    anyhow::ensure!(running["host_id"] == on, "{name} is not on {on}: {running}");
    let (status, body) = region
        .post(&format!("/v1/hosts/{other}/unlock"), json!({}))
        .await?;
    anyhow::ensure!(status == 200, "unlock {other}: {status} {body}");
    Ok(running)
}

fn backing_of(disk: &Path) -> anyhow::Result<String> {
    let info = inst::qemu_img_info(disk)?;
    Ok(info["full-backing-filename"]
        .as_str()
        .or(info["backing-filename"].as_str())
        .unwrap_or_default()
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_live_migrate_a_running_instance() -> anyhow::Result<()> {
    let Some(mut lv_a) = daemon("mig-a", IP_A)? else {
        return Ok(());
    };
    let Some(mut lv_b) = daemon("mig-b", IP_B)? else {
        return Ok(());
    };
    let mut region = Region::start().await?;
    region.create_cluster("az1").await?;
    let (uri_a, uri_b) = (lv_a.tcp_uri(), lv_b.tcp_uri());
    let qemu_b = format!("tcp://{IP_B}");
    let mut agent_a = region
        .start_migrating_agent(IP_A, "az1", &lv_a.unix_uri(), &uri_a)
        .await?;
    let mut agent_b = region
        .start_migrating_agent(IP_B, "az1", &lv_b.unix_uri(), &uri_b)
        .await?;
    let (host_a, host_b) = (agent_a.host_id.clone(), agent_b.host_id.clone());
    region.wait_agent(&host_a, "online").await?;
    region.wait_agent(&host_b, "online").await?;
    let client = coordinator_client(&region)?;
    let ep_a = endpoint(&region, &client, &host_a).await?;
    let ep_b = endpoint(&region, &client, &host_b).await?;
    // What the agents offer for migration: as configured; QEMU's address is libvirt's pick.
    assert_eq!(ep_a.migration_uri.as_deref(), Some(uri_a.as_str()));
    assert_eq!(ep_b.migration_uri.as_deref(), Some(uri_b.as_str()));
    assert_eq!(ep_b.migrate_uri, None);

    // B has the image in its cache already, from an earlier instance of it (the coordinator
    // serves an image only to a host with an instance of it). Then an instance on A.
    let tenant = inst::tenant(&region, "ops@example.com").await?;
    let image = writer_image(&region, &tenant.id).await?;
    let image_id = image["id"].as_str().unwrap_or_default().to_string();
    let earlier = place(
        &region,
        &tenant.token,
        "earlier",
        &image_id,
        &host_b,
        &host_a,
    )
    .await?;
    // Gone from B (the coordinator still lists it: this test is the only driver here).
    let earlier_id = earlier["id"].as_str().unwrap_or_default();
    client.delete_instance(&ep_b, earlier_id).await?;
    let instance = place(&region, &tenant.token, "mover", &image_id, &host_a, &host_b).await?;
    let iid = instance["id"].as_str().unwrap_or_default().to_string();
    let conn_a = lv_a.connect()?;
    let uuid = running_uuid(&conn_a, &iid)?.expect("the instance runs on A");
    let dir_a = agent_a.dir.join("instances").join(&iid);
    let dir_b = agent_b.dir.join("instances").join(&iid);
    let disk_a = dir_a.join("disk.qcow2");
    wait_for("the guest to write its disk", SETTLE, || async {
        Ok((std::fs::metadata(&disk_a)?.len() >= WRITTEN).then_some(()))
    })
    .await?;

    // The target's files, from the request the create was made with.
    let req = create_request(&instance, &image)?;
    assert!(
        refused_with(client.prepare_migration(&ep_a, &req, None).await, 409),
        "A runs the domain: nothing to prepare there"
    );
    let prepared = client.prepare_migration(&ep_b, &req, None).await?;
    assert_eq!(
        Path::new(&prepared.disk_path),
        dir_b.join("disk.qcow2").as_path()
    );
    assert_eq!(
        Path::new(&prepared.seed_path),
        dir_b.join("seed.iso").as_path()
    );
    assert_eq!(prepared.iso_path, None);
    assert_eq!(client.prepare_migration(&ep_b, &req, None).await?, prepared);
    let sha = req.image.sha256.clone();
    let cached_b = agent_b.dir.join(format!("images/{sha}.qcow2"));
    assert_eq!(
        backing_of(Path::new(&prepared.disk_path))?,
        cached_b.to_string_lossy()
    );
    let to_b = |prepared: &AgentPrepared, timeout_s| AgentMigrate {
        dest_uri: uri_b.clone(),
        migrate_uri: Some(qemu_b.clone()),
        prepared: prepared.clone(),
        timeout_s,
        bandwidth_mib_s: None,
        shared_storage: false,
    };

    // A target nobody answers at: failed, and the instance runs on A as before.
    let nobody = TcpListener::bind((IP_B, 0))?.local_addr()?.port();
    let mut nowhere = to_b(&prepared, 60);
    nowhere.dest_uri = format!("qemu+tcp://{IP_B}:{nobody}/system");
    let started = client.migrate(&ep_a, &iid, &nowhere).await?;
    assert_eq!(started.state, AgentMigrationState::Running);
    let failed = ended(&client, &ep_a, &iid).await?;
    assert_eq!(failed.state, AgentMigrationState::Failed, "{failed:?}");
    let reason = failed.error.clone().unwrap_or_default();
    assert!(reason.contains("connect"), "{reason}");
    assert!(failed.libvirt_ms.is_some(), "{failed:?}");
    assert_eq!(running_uuid(&conn_a, &iid)?.as_deref(), Some(uuid.as_str()));
    assert!(client.instance(&ep_a, &iid).await?.is_some());

    // At 1 MiB/s the guest's 16 MiB take a while. Aborted on request, the migration fails,
    // and the instance runs on A as before; meanwhile libvirt's numbers show, reads answer
    // and changes are refused.
    let crawl = |timeout_s| AgentMigrate {
        bandwidth_mib_s: Some(1),
        ..to_b(&prepared, timeout_s)
    };
    client.migrate(&ep_a, &iid, &crawl(600)).await?;
    let moving = wait_for("the memory transfer", SETTLE, || async {
        let now = client.migration(&ep_a, &iid, None).await?;
        anyhow::ensure!(now.state == AgentMigrationState::Running, "{now:?}");
        Ok((now.progress.data_processed_bytes > 0).then_some(now))
    })
    .await?;
    assert!(moving.progress.data_total_bytes >= WRITTEN, "{moving:?}");
    assert!(moving.progress.elapsed_ms > 0, "{moving:?}");
    let on_a = client
        .instance(&ep_a, &iid)
        .await?
        .expect("A answers a read");
    assert_eq!(on_a.state, "running");
    assert!(refused_with(
        client.migrate(&ep_a, &iid, &crawl(600)).await,
        409
    ));
    assert!(refused_with(client.delete_instance(&ep_a, &iid).await, 409));
    let aborting = client.abort_migration(&ep_a, &iid).await?;
    assert_eq!(aborting.state, AgentMigrationState::Running, "{aborting:?}");
    assert_eq!(
        aborting.error.as_deref(),
        Some("aborted on request; aborting")
    );
    let aborted = ended(&client, &ep_a, &iid).await?;
    assert_eq!(aborted.state, AgentMigrationState::Failed, "{aborted:?}");
    assert!(
        aborted
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("aborted on request: ")),
        "{aborted:?}"
    );
    assert_eq!(running_uuid(&conn_a, &iid)?.as_deref(), Some(uuid.as_str()));

    // Past its time, the agent aborts it itself.
    client.migrate(&ep_a, &iid, &crawl(2)).await?;
    let timed_out = ended(&client, &ep_a, &iid).await?;
    assert_eq!(
        timed_out.state,
        AgentMigrationState::Failed,
        "{timed_out:?}"
    );
    assert!(
        timed_out
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("timed out after 2s: ")),
        "{timed_out:?}"
    );
    assert!(
        timed_out.libvirt_ms.unwrap_or_default() >= 2000,
        "{timed_out:?}"
    );
    assert_eq!(running_uuid(&conn_a, &iid)?.as_deref(), Some(uuid.as_str()));
    let conn_b = lv_b.connect()?;
    wait_for("B to drop the incoming domain", SETTLE, || async {
        Ok(conn_b.lookup_domain_by_name(&iid).is_err().then_some(()))
    })
    .await?;

    // The coordinator's clean-up after failed attempts: B's files go, with no domain there.
    client.delete_instance(&ep_b, &iid).await?;
    assert!(!dir_b.exists(), "B's prepared files are left");
    assert!(cached_b.exists(), "B's cache stays");

    // And now the real thing, to where B's facts say (QEMU's address given explicitly).
    let prepared = client.prepare_migration(&ep_b, &req, None).await?;
    let migrate = AgentMigrate {
        dest_uri: ep_b.migration_uri.clone().unwrap_or_default(),
        ..to_b(&prepared, 120)
    };
    let started = client.migrate(&ep_a, &iid, &migrate).await?;
    assert_eq!(started.state, AgentMigrationState::Running);
    let done = ended(&client, &ep_a, &iid).await?;
    assert_eq!(done.state, AgentMigrationState::Succeeded, "{done:?}");
    assert_eq!(done.error, None);
    let libvirt_ms = done.libvirt_ms.unwrap_or_default();
    assert!(libvirt_ms > 0, "{done:?}");
    eprintln!(
        "A -> B live migration: libvirt {libvirt_ms} ms, {} of {} bytes",
        done.progress.data_processed_bytes, done.progress.data_total_bytes
    );
    assert_eq!(
        client.migration(&ep_a, &iid, None).await?,
        done,
        "remembered"
    );
    assert_eq!(
        client.migration(&ep_b, &iid, None).await?.state,
        AgentMigrationState::None
    );

    // B runs the same domain, persistently, on its own overlay of its own cached image.
    assert_eq!(running_uuid(&conn_b, &iid)?.as_deref(), Some(uuid.as_str()));
    assert!(conn_b.lookup_domain_by_name(&iid)?.is_persistent()?);
    let on_b = client
        .instance(&ep_b, &iid)
        .await?
        .expect("B has the instance");
    assert_eq!(
        (on_b.state.as_str(), on_b.domain_uuid.as_str()),
        ("running", uuid.as_str())
    );
    assert_eq!(on_b.disk_path, prepared.disk_path);
    assert_eq!(
        on_b.backing_file.as_deref(),
        Some(cached_b.to_string_lossy().as_ref())
    );
    assert_eq!(
        backing_of(Path::new(&prepared.disk_path))?,
        cached_b.to_string_lossy()
    );
    let copied = std::fs::metadata(&prepared.disk_path)?.len();
    assert!(
        copied >= WRITTEN,
        "B's disk holds {copied} bytes: the top layer was not copied"
    );
    let xml = conn_b.lookup_domain_by_name(&iid)?.xml_desc(0)?;
    assert!(xml.contains(&prepared.seed_path), "{xml}");
    assert!(!xml.contains(&agent_a.dir.to_string_lossy().into_owned()));

    // A has nothing left of it.
    assert!(client.instance(&ep_a, &iid).await?.is_none());
    assert!(conn_a.lookup_domain_by_name(&iid).is_err());
    assert!(!dir_a.exists(), "A's instance directory is left");

    client.delete_instance(&ep_b, &iid).await?;
    assert!(conn_b.lookup_domain_by_name(&iid).is_err());
    assert!(!dir_b.exists());
    drop((conn_a, conn_b));
    agent_a.stop();
    agent_b.stop();
    region.stop();
    lv_a.stop();
    lv_b.stop();
    Ok(())
}
