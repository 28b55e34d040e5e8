//! The real-libvirt fixture itself: a private privileged libvirtd runs a tiny TCG guest, two
//! run side by side (and live-migrate between them), and stopping one leaves no libvirtd or
//! QEMU behind. Needs root; `PLINTH_SKIP_REAL_LIBVIRT=1` skips when not root.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions, poll_until, process_running};
use plinth_e2e::{Region, wait_for};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};
use virt::connect::Connect;
use virt::domain::{Domain, DomainState, DomainStateEnum};

/// A 64 MiB, 1-vCPU TCG guest with no disks: enough for QEMU to run (and migrate).
fn tiny_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'>\
           <name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
           <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\
           <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
             <memballoon model='none'/></devices>\
         </domain>"
    )
}

fn start_tiny(conn: &Connect, name: &str) -> anyhow::Result<Domain> {
    let dom = conn.define_domain_xml(&tiny_xml(name))?;
    dom.create()?;
    Ok(dom)
}

fn assert_tiny_running(dom: &Domain) -> anyhow::Result<()> {
    let info = dom.info()?;
    assert_eq!(
        info.state,
        DomainStateEnum::Known(DomainState::Running),
        "{info:?}"
    );
    assert_eq!(info.nr_virt_cpu, 1, "{info:?}");
    assert_eq!(info.max_mem, 64 * 1024, "KiB: {info:?}");
    Ok(())
}

/// The QEMU pid libvirt recorded for `name` in this daemon's private /run/libvirt.
fn qemu_pid(daemon: &LibvirtDaemon, name: &str) -> anyhow::Result<u32> {
    let path = daemon.dir().join(format!("run/qemu/{name}.pid"));
    Ok(std::fs::read_to_string(&path)?.trim().parse()?)
}

fn start(
    name: &str,
    addr: [u8; 4],
    parent: Option<&Path>,
) -> anyhow::Result<Option<LibvirtDaemon>> {
    let mut opts = LibvirtDaemonOptions::new(name, Ipv4Addr::from(addr));
    opts.parent_dir = parent.map(Path::to_path_buf);
    let t = Instant::now();
    let daemon = LibvirtDaemon::start(opts)?;
    if let Some(d) = &daemon {
        eprintln!(
            "libvirtd {name} (pid {:?}, {}) answered after {:?}",
            d.pid(),
            d.tcp_uri(),
            t.elapsed()
        );
    }
    Ok(daemon)
}

#[test]
fn a_private_libvirtd_runs_a_tiny_guest_and_stops_clean() -> anyhow::Result<()> {
    let Some(mut daemon) = start("solo", [127, 0, 0, 41], None)? else {
        return Ok(());
    };
    let pid = daemon.pid().expect("running");
    let conn = daemon.connect()?;
    assert_eq!(conn.hostname()?, "solo", "its own UTS namespace");
    assert!(
        conn.capabilities()?.contains(daemon.host_uuid()),
        "its own host_uuid"
    );

    let t = Instant::now();
    let dom = start_tiny(&conn, "tiny")?;
    eprintln!("define + start tiny: {:?}", t.elapsed());
    assert_tiny_running(&dom)?;
    let qemu = qemu_pid(&daemon, "tiny")?;
    assert!(process_running(qemu));

    dom.destroy()?;
    dom.undefine()?;
    assert!(!process_running(qemu), "destroy ended QEMU {qemu}");
    assert!(conn.list_all_domains(0)?.is_empty());
    drop(dom);
    drop(conn);

    let t = Instant::now();
    daemon.stop();
    eprintln!("stop: {:?}", t.elapsed());
    assert_eq!(daemon.pid(), None);
    assert!(!process_running(pid), "libvirtd {pid} is gone");
    Ok(())
}

#[test]
fn two_daemons_run_side_by_side_and_migrate() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let Some(a) = start("hostA", [127, 0, 0, 42], Some(tmp.path()))? else {
        return Ok(());
    };
    let Some(mut b) = start("hostB", [127, 0, 0, 43], Some(tmp.path()))? else {
        return Ok(());
    };
    assert_ne!(a.host_uuid(), b.host_uuid());
    assert_ne!(a.migration_ports(), b.migration_ports());
    let conn_a = a.connect()?;
    // B over TCP, as a migration source would reach it.
    let conn_b = Connect::open(Some(&b.tcp_uri()))?;
    assert_eq!(conn_a.hostname()?, "hostA");
    assert_eq!(conn_b.hostname()?, "hostB");

    // The same name on both: each daemon has its own state.
    let on_a = start_tiny(&conn_a, "tiny")?;
    let on_b = start_tiny(&conn_b, "tiny")?;
    assert_tiny_running(&on_a)?;
    assert_tiny_running(&on_b)?;
    assert_ne!(qemu_pid(&a, "tiny")?, qemu_pid(&b, "tiny")?);
    assert_eq!(conn_a.list_all_domains(0)?.len(), 1);
    assert_eq!(conn_b.list_all_domains(0)?.len(), 1);
    on_b.destroy()?;
    on_b.undefine()?;

    // Live migration A -> B over B's TCP listener and its 127.0.0.x migration address.
    let t = Instant::now();
    on_a.migrate_to_uri(
        &b.tcp_uri(),
        virt::sys::VIR_MIGRATE_LIVE
            | virt::sys::VIR_MIGRATE_PEER2PEER
            | virt::sys::VIR_MIGRATE_PERSIST_DEST
            | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE,
        None,
        0,
    )?;
    eprintln!("A -> B live migration: {:?}", t.elapsed());
    assert!(conn_a.list_all_domains(0)?.is_empty());
    let moved = conn_b.lookup_domain_by_name("tiny")?;
    assert_tiny_running(&moved)?;

    // Dropping B with the guest still running stops its QEMU too.
    let qemu = qemu_pid(&b, "tiny")?;
    let b_pid = b.pid().expect("running");
    drop((on_a, on_b, moved, conn_a, conn_b));
    b.stop();
    assert!(!process_running(b_pid), "libvirtd {b_pid} is gone");
    assert!(
        !process_running(qemu),
        "QEMU {qemu} was destroyed with its daemon"
    );
    drop(a);
    Ok(())
}

#[test]
fn a_crashed_daemon_leaves_no_qemu_behind() -> anyhow::Result<()> {
    let Some(mut daemon) = start("crashy", [127, 0, 0, 45], None)? else {
        return Ok(());
    };
    let conn = daemon.connect()?;
    let dom = start_tiny(&conn, "tiny")?;
    let qemu = qemu_pid(&daemon, "tiny")?;
    drop((dom, conn));
    // libvirtd dies without a word; its QEMU lives on (as it would on a real host).
    let pid = daemon.pid().expect("running");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
    wait_until("libvirtd to die", || !process_running(pid));
    assert!(process_running(qemu), "QEMU {qemu} outlives libvirtd");

    daemon.stop();
    assert!(
        !process_running(qemu),
        "stop() killed the orphaned QEMU {qemu}"
    );
    Ok(())
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    assert!(
        poll_until(Duration::from_secs(15), done),
        "timed out waiting for {what}"
    );
}

#[tokio::test]
async fn an_agent_reports_online_against_a_real_libvirtd() -> anyhow::Result<()> {
    let Some(daemon) = start("agenthost", [127, 0, 0, 44], None)? else {
        return Ok(());
    };
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region
        .start_agent_with_uri("127.0.0.44", "az1", &daemon.unix_uri())
        .await?;
    assert_eq!(agent.libvirt_uri, daemon.unix_uri());
    region.wait_agent(&agent.host_id, "online").await?;
    let host = wait_for("the agent's facts", Duration::from_secs(30), || async {
        let host = region.host(&agent.host_id).await?;
        Ok(Some(host))
    })
    .await?;
    eprintln!("host: {host}");
    Ok(())
}
