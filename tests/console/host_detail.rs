//! The host detail screen's workflows in a real browser (see main.rs): a host whose sysfs is
//! the devices fixture (two USB devices, an mdev P40, an SR-IOV L4, the BMC's VGA) on
//! libvirt's test driver, with instances on it and one holding a vGPU of the L4; its metrics
//! ring filled every second. Where real libvirt may run, a second host on a real libvirtd
//! with a stopped instance, for assigning and releasing a USB device (skipped with
//! PLINTH_SKIP_REAL_LIBVIRT=1, as the other real-libvirt tests are).

use plinth_agent::devices::fixture::standard_host;
use plinth_e2e::Region;
use plinth_e2e::devices::{agent_on_fixture, listed};
use plinth_e2e::instances::{self as inst, MIB};
use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(120);
const L4: &str = "0000:81:00.0";
const GPU_HOST_IP: &str = "127.0.0.200";
const USB_HOST_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 201);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn host_detail_shows_a_host_and_manages_its_devices() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path().join("sysfs-gpu");
    let fixture = standard_host(&root);
    let _kernel = fixture.kernel();
    let agent = agent_on_fixture(
        &region,
        GPU_HOST_IP,
        "az1",
        "test:///default",
        &root,
        &["--metrics-step", "1s"],
    )
    .await?;
    let host = agent.host_id.clone();
    // The devices come with the heartbeat after the agent is online.
    listed(&region, &host, "usb").await?;

    let tenant = inst::tenant(&region, "hostdetail@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default().to_string();
    let az1 = json!({"cluster_id": "az1"});
    let run = |name: &'static str, extra: serde_json::Value| {
        inst::running(&region, &tenant.token, name, &image, 64 * MIB, extra)
    };
    run("hd-web-1", az1.clone()).await?;
    run("hd-db-1", az1.clone()).await?;
    // One vGPU of the L4, held by an instance: the restore the script tries is refused.
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/{L4}/slice"),
            json!({"type": "NVIDIA L4-6Q", "count": 1}),
        )
        .await?;
    anyhow::ensure!(status == 200, "slice the L4: {status} {body}");
    let holder = run(
        "hd-gpu-1",
        json!({"cluster_id": "az1", "gpu_type": "NVIDIA L4-6Q"}),
    )
    .await?;

    let mut env = super::BrowserEnv::new(&region)?;
    env.set("CONSOLE_HOST_ID", &host)
        .set("CONSOLE_GPU_HOLDER", &holder);

    // A host on a real libvirtd, for USB assign and release (the test driver cannot attach).
    let daemon = LibvirtDaemon::start(LibvirtDaemonOptions::new("hv-hostdetail", USB_HOST_IP))?;
    let mut usb_agent = None;
    if let Some(daemon) = &daemon {
        region.create_cluster("az2").await?;
        let usb_root = region.dir.path().join("sysfs-usb");
        standard_host(&usb_root);
        let usb = agent_on_fixture(
            &region,
            &USB_HOST_IP.to_string(),
            "az2",
            &daemon.unix_uri(),
            &usb_root,
            &["--metrics-step", "1s"],
        )
        .await?;
        listed(&region, &usb.host_id, "usb").await?;
        let iid = inst::running(
            &region,
            &tenant.token,
            "hd-usb-1",
            &image,
            128 * MIB,
            json!({"cluster_id": "az2"}),
        )
        .await?;
        inst::act(&region, &iid, "stop").await?;
        inst::expect_state(&region, &iid, "stopped", SETTLE).await?;
        env.set("CONSOLE_USB_HOST", &usb.host_id)
            .set("CONSOLE_USB_INSTANCE", &iid);
        usb_agent = Some(usb);
    }

    env.run(&["tests/host_detail.mjs"]).await?;
    drop(usb_agent);
    drop(daemon);
    Ok(())
}
