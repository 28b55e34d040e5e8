//! The instance lifecycle on a real privileged libvirtd running QEMU (TCG), started by the test:
//! the domain runs with the requested vCPUs and memory, its disk is an overlay whose backing
//! file is the cached image, the cloud-init seed carries the password (hashed), stop (graceful,
//! then forced) / start / reboot / delete leave libvirt and the store in agreement, and
//! reconciliation follows a domain stopped behind plinth's back and reports a stray domain.

use plinth_e2e::instances::{self as inst, MIB, PASSWORD};
use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::{DomainState, DomainStateEnum};

const SETTLE: Duration = Duration::from_secs(120);

fn state_of(conn: &Connect, name: &str) -> anyhow::Result<Option<DomainState>> {
    match conn.lookup_domain_by_name(name) {
        Ok(dom) => match dom.info()?.state {
            DomainStateEnum::Known(s) => Ok(Some(s)),
            other => anyhow::bail!("unknown domain state {other:?}"),
        },
        Err(_) => Ok(None),
    }
}

async fn host_field(region: &Region, host: &str, field: &str) -> anyhow::Result<Value> {
    Ok(region.host(host).await?[field].clone())
}

/// `isoinfo -R -x /<file>` of the seed ISO.
fn seed_file(iso: &std::path::Path, file: &str) -> anyhow::Result<String> {
    let out = Command::new("isoinfo")
        .args(["-R", "-x", &format!("/{file}"), "-i"])
        .arg(iso)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "isoinfo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Whether `hash` (crypt(3) format) is a hash of `password`, by Python's crypt.
fn crypt_matches(password: &str, hash: &str) -> anyhow::Result<bool> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
        ])
        .args([password, hash])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "python crypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim() == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_on_real_libvirt() -> anyhow::Result<()> {
    let Some(mut daemon) = LibvirtDaemon::start(LibvirtDaemonOptions::new(
        "hv1",
        Ipv4Addr::new(127, 0, 0, 61),
    ))?
    else {
        return Ok(());
    };
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region
        .start_agent_with_uri("127.0.0.61", "az1", &daemon.unix_uri())
        .await?;
    let host = agent.host_id.clone();
    region.wait_agent(&host, "online").await?;
    let tenant = inst::tenant(&region, "ops@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let sha = image["sha256"].as_str().unwrap_or_default().to_string();

    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "tcg-1",
        image["id"].as_str().unwrap_or_default(),
        128 * MIB,
        json!({"vcpus": 2}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let iid = created["id"].as_str().unwrap_or_default().to_string();
    let running = inst::expect_state(&region, &iid, "running", SETTLE).await?;

    // libvirt agrees: running, 2 vCPUs, 128 MiB.
    let conn = daemon.connect()?;
    let dom = conn.lookup_domain_by_name(&iid)?;
    let info = dom.info()?;
    assert_eq!(info.state, DomainStateEnum::Known(DomainState::Running));
    assert_eq!(info.nr_virt_cpu, 2);
    assert_eq!(info.max_mem, 128 * 1024, "KiB");
    assert_eq!(
        running["resource_id"].as_str(),
        Some(dom.uuid_string()?.as_str())
    );

    // The disk is an overlay on the cached image, which is named by its SHA-256.
    let dir = agent.dir.join("instances").join(&iid);
    let disk = dir.join("disk.qcow2");
    assert!(dom.xml_desc(0)?.contains(disk.to_str().unwrap_or_default()));
    let info = inst::qemu_img_info(&disk)?;
    let backing = info["full-backing-filename"]
        .as_str()
        .or(info["backing-filename"].as_str())
        .unwrap_or_default();
    assert!(backing.ends_with(&format!("images/{sha}.qcow2")), "{info}");
    assert_eq!(info["backing-filename-format"], "qcow2");

    // The seed carries the admin password as a hash, never in plain text.
    let seed = dir.join("seed.iso");
    let user_data = seed_file(&seed, "user-data")?;
    assert!(user_data.starts_with("#cloud-config"), "{user_data}");
    assert!(
        !user_data.contains(PASSWORD),
        "the seed holds the plain password"
    );
    let hash = user_data
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == '}')
        .find(|w| w.starts_with("$6$"))
        .unwrap_or_default()
        .to_string();
    assert!(
        crypt_matches(PASSWORD, &hash)?,
        "hash {hash} does not match the password"
    );
    assert!(seed_file(&seed, "meta-data")?.contains(&iid));

    // Stop: the guest has no OS to heed ACPI, so the stop is forced after its timeout.
    let (status, body) = region
        .post(
            &format!("/v1/instances/{iid}/stop"),
            json!({"timeout_s": 2}),
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    inst::expect_state(&region, &iid, "stopped", SETTLE).await?;
    assert_eq!(state_of(&conn, &iid)?, Some(DomainState::Shutoff));
    inst::act(&region, &iid, "start").await?;
    inst::expect_state(&region, &iid, "running", SETTLE).await?;
    assert_eq!(state_of(&conn, &iid)?, Some(DomainState::Running));
    inst::act(&region, &iid, "reboot").await?;
    inst::expect_state(&region, &iid, "running", SETTLE).await?;
    assert_eq!(state_of(&conn, &iid)?, Some(DomainState::Running));

    // Behind plinth's back: the domain is stopped, and a stray domain appears.
    conn.lookup_domain_by_name(&iid)?.destroy()?;
    wait_for("reconciliation to see the stop", SETTLE, || async {
        let (_, i) = region.get(&format!("/v1/instances/{iid}")).await?;
        Ok((i["state"] == "stopped").then_some(()))
    })
    .await?;
    let stray = conn.define_domain_xml(
        "<domain type='qemu'><name>stray</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>",
    )?;
    wait_for("the stray domain to be reported", SETTLE, || async {
        let unknown = host_field(&region, &host, "unknown_domains").await?;
        Ok(unknown
            .as_array()
            .is_some_and(|u| u.iter().any(|d| d == "stray"))
            .then_some(()))
    })
    .await?;
    let (_, audit) = region.get("/v1/audit?limit=200").await?;
    assert!(audit.to_string().contains("reconcile instance"), "{audit}");

    inst::delete(&region, &iid, SETTLE).await?;
    assert_eq!(state_of(&conn, &iid)?, None, "the domain is still defined");
    assert!(!dir.exists(), "the instance directory was left behind");
    assert_eq!(inst::allocation(&region, &host).await?, (0, 0));
    // The stray domain is reported, never deleted.
    assert!(conn.lookup_domain_by_name("stray").is_ok());
    stray.undefine()?;
    drop(agent);
    daemon.stop();
    Ok(())
}
