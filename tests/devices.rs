//! Host devices end to end: a real coordinator and agent whose sysfs is a fixture tree (a host
//! with two USB devices and a hub, an mdev-capable Tesla P40, an SR-IOV L4 and the BMC's VGA;
//! a stand-in kernel in this process reacts to what the agent writes). The inventory reaches
//! the API with the heartbeat; slicing and restore through the CLI write what the kernel
//! expects; USB assign and release change the domain's definition on a real libvirtd.

use plinth_agent::devices::fixture::standard_host;
use plinth_e2e::devices::{agent_on_fixture, listed};
use plinth_e2e::instances::{self as inst, MIB};
use plinth_e2e::libvirtd::{LibvirtDaemon, LibvirtDaemonOptions};
use plinth_e2e::{Region, wait_for};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(120);
const P40: &str = "0000:41:00.0";
const L4: &str = "0000:81:00.0";

fn cli(region: &Region, args: &[&str]) -> anyhow::Result<String> {
    let (ok, out, err) = region.cli(args)?;
    anyhow::ensure!(ok, "plinth {args:?} failed: {err}");
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inventory_slicing_and_restore_through_api_and_cli() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path().join("sysfs");
    let fixture = standard_host(&root);
    let kernel = fixture.kernel();
    let agent =
        agent_on_fixture(&region, "127.0.0.71", "az1", "test:///default", &root, &[]).await?;
    let host = agent.host_id.clone();

    // USB: the stick and the keyboard behind the hub; not the hub, not the root hubs.
    let usb = listed(&region, &host, "usb").await?;
    let ids: Vec<&str> = usb.iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids, ["1-2", "1-3.1"]);
    let stick = &usb[0];
    for (field, want) in [
        ("name", json!("SanDisk Cruzer Blade")),
        ("usb_id", json!("0781:5567")),
        ("vendor", json!("SanDisk")),
        ("type", json!("mass storage")),
        ("serial", json!("4C530001")),
        ("usb_version", json!("2.00")),
        ("state", json!("free")),
        ("instance_id", Value::Null),
    ] {
        assert_eq!(stick[field], want, "{field} in {stick}");
    }

    // GPUs: the BMC's VGA (passthrough), the P40 (mdev), the L4 (SR-IOV vGPU).
    let gpus = listed(&region, &host, "gpus").await?;
    let kinds: Vec<(&str, &str, &str)> = gpus
        .iter()
        .map(|g| {
            (
                g["address"].as_str().unwrap_or_default(),
                g["name"].as_str().unwrap_or_default(),
                g["type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "0000:02:00.0",
                "ASPEED Graphics Family (BMC)",
                "passthrough"
            ),
            (P40, "NVIDIA Tesla P40", "mdev"),
            (L4, "NVIDIA L4", "sriov-vgpu"),
        ]
    );
    assert_eq!(gpus[1]["memory_bytes"], 24u64 << 30);
    assert_eq!(gpus[1]["state"], "free");
    let table = cli(&region, &["hosts", "gpus", &host])?;
    assert!(table.contains("nvidia-46 GRID P40-1Q (24 free)"), "{table}");

    // Slice the P40 through the CLI: two UUIDs written to the type's create.
    let out = cli(
        &region,
        &[
            "--json",
            "hosts",
            "gpus",
            "slice",
            &host,
            P40,
            "--type",
            "nvidia-46",
            "--count",
            "2",
        ],
    )?;
    let made: Value = serde_json::from_str(&out)?;
    let uuids: Vec<String> = made["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(uuids.len(), 2, "{made}");
    let create = format!("/sys/bus/pci/devices/{P40}/mdev_supported_types/nvidia-46/create");
    let want: Vec<(String, String)> = uuids.iter().map(|u| (create.clone(), u.clone())).collect();
    assert_eq!(kernel.writes(), want);
    let vgpus = listed(&region, &host, "vgpus").await?;
    assert_eq!(vgpus.len(), 2);
    for v in &vgpus {
        assert_eq!(v["parent"], P40, "{v}");
        assert_eq!(v["type_name"], "GRID P40-1Q", "{v}");
        assert_eq!(v["state"], "free", "{v}");
    }
    let (_, gpus) = region.get(&format!("/v1/hosts/{host}/gpus")).await?;
    assert_eq!(gpus["items"][1]["state"], "sliced");
    assert_eq!(gpus["items"][1]["vgpu_types"][0]["available"], 22);

    // More than available: refused with the number available; a type it does not offer.
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/{P40}/slice"),
            json!({"type": "nvidia-46", "count": 23}),
        )
        .await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_enough_vgpus");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("22 vGPUs")),
        "{body}"
    );
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/{P40}/slice"),
            json!({"type": "nvidia-999", "count": 1}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("type:"))
    );
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/0000:02:00.0/slice"),
            json!({"type": "x", "count": 1}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("gpu_not_sliceable"))
    );

    // The SR-IOV L4, by type name: the VF's current_vgpu_type.
    kernel.clear();
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/{L4}/slice"),
            json!({"type": "NVIDIA L4-6Q", "count": 1}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["id"], "0000:81:00.1");
    assert_eq!(body["items"][0]["kind"], "sriov-vf");
    assert_eq!(
        kernel.writes(),
        [(
            "/sys/bus/pci/devices/0000:81:00.1/nvidia/current_vgpu_type".to_string(),
            "1144".to_string()
        )]
    );

    // Restore both through the CLI.
    kernel.clear();
    let out = cli(&region, &["hosts", "gpus", "restore", &host, P40])?;
    assert!(out.contains("restored: free"), "{out}");
    let mut writes = kernel.writes();
    writes.sort();
    let mut want: Vec<(String, String)> = uuids
        .iter()
        .map(|u| (format!("/sys/bus/mdev/devices/{u}/remove"), "1".to_string()))
        .collect();
    want.sort();
    assert_eq!(writes, want);
    cli(&region, &["hosts", "gpus", "restore", &host, L4])?;
    let (_, vgpus) = region.get(&format!("/v1/hosts/{host}/vgpus")).await?;
    assert_eq!(vgpus["items"], json!([]));
    let out = cli(&region, &["hosts", "vgpus", &host])?;
    assert_eq!(out, "no vGPUs\n");

    // A USB device goes only to an instance that exists; the test driver cannot attach
    // devices, so the agent's refusal comes back as the host's and the device stays free.
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/usb/1-2/assign"),
            json!({"instance_id": "inst-000000000000"}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("instance_not_found"))
    );
    let (status, _) = region
        .post(
            &format!("/v1/hosts/{host}/usb/9-9/assign"),
            json!({"instance_id": "inst-000000000000"}),
        )
        .await?;
    assert_eq!(status, 404);
    let tenant = inst::tenant(&region, "usb@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "usb-1",
        image["id"].as_str().unwrap_or_default(),
        64 * MIB,
        json!({}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let iid = created["id"].as_str().unwrap_or_default().to_string();
    inst::expect_state(&region, &iid, "running", SETTLE).await?;
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/usb/1-2/assign"),
            json!({"instance_id": iid}),
        )
        .await?;
    // The hypervisor cannot, which no retry changes: a conflict with the host, not an
    // outage (a 5xx would send a client into retries).
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("hypervisor_unsupported")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot attach USB devices") && m.contains("not supported")),
        "{body}"
    );
    let (_, usb) = region.get(&format!("/v1/hosts/{host}/usb")).await?;
    assert_eq!(usb["items"][0]["state"], "free");
    let (_, shown) = region.get(&format!("/v1/instances/{iid}")).await?;
    assert_eq!(shown["devices"], json!([]));
    Ok(())
}

/// USB assign and release on a real libvirtd: the hostdev lands in the stopped instance's
/// definition, the instance lists the device and its drain plan names it, a second assign is
/// refused, and release takes it out again; a live attach libvirt refuses leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usb_assign_and_release_change_the_domain_on_real_libvirt() -> anyhow::Result<()> {
    let Some(daemon) = LibvirtDaemon::start(LibvirtDaemonOptions::new(
        "hv-usb",
        Ipv4Addr::new(127, 0, 0, 72),
    ))?
    else {
        return Ok(());
    };
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path().join("sysfs");
    standard_host(&root);
    let agent =
        agent_on_fixture(&region, "127.0.0.72", "az1", &daemon.unix_uri(), &root, &[]).await?;
    let host = agent.host_id.clone();
    listed(&region, &host, "usb").await?;
    let tenant = inst::tenant(&region, "usb@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "usb-1",
        image["id"].as_str().unwrap_or_default(),
        128 * MIB,
        json!({}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let iid = created["id"].as_str().unwrap_or_default().to_string();
    inst::expect_state(&region, &iid, "running", SETTLE).await?;
    inst::act(&region, &iid, "stop").await?;
    inst::expect_state(&region, &iid, "stopped", SETTLE).await?;

    let out = cli(
        &region,
        &["hosts", "usb", "assign", &host, "1-2", "--instance", &iid],
    )?;
    assert!(
        out.contains(&format!("assigned to instance {iid}")),
        "{out}"
    );
    let conn = daemon.connect()?;
    let defined = conn
        .lookup_domain_by_name(&iid)?
        .xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?;
    assert!(
        defined.contains("<hostdev mode='subsystem' type='usb'"),
        "{defined}"
    );
    assert!(defined.contains("<vendor id='0x0781'/>"), "{defined}");
    assert!(defined.contains("<product id='0x5567'/>"), "{defined}");
    assert!(
        defined.contains("<address bus='1' device='3'/>"),
        "{defined}"
    );

    let usb = listed(&region, &host, "usb").await?;
    assert_eq!(usb[0]["state"], "assigned");
    assert_eq!(usb[0]["instance_id"], iid.as_str());
    assert_eq!(usb[0]["tenant_email"], "usb@example.com");
    let (_, shown) = region.get(&format!("/v1/instances/{iid}")).await?;
    assert_eq!(shown["devices"], json!(["usb:1-2"]));
    let (status, plan) = region
        .get(&format!("/v1/hosts/{host}/maintenance/plan"))
        .await?;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["items"][0]["blocked_by"]
            .as_str()
            .is_some_and(|b| b.contains("usb:1-2")),
        "{plan}"
    );
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/usb/1-2/assign"),
            json!({"instance_id": iid}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("device_in_use"))
    );

    let out = cli(&region, &["hosts", "usb", "release", &host, "1-2"])?;
    assert!(out.contains("is free"), "{out}");
    let defined = conn
        .lookup_domain_by_name(&iid)?
        .xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?;
    assert!(!defined.contains("<hostdev"), "{defined}");
    let (_, shown) = region.get(&format!("/v1/instances/{iid}")).await?;
    assert_eq!(shown["devices"], json!([]));
    let (_, usb) = region.get(&format!("/v1/hosts/{host}/usb")).await?;
    assert_eq!(usb["items"][0]["state"], "free");

    // A running guest: libvirt attaches live and persistently, or neither. Here the device
    // exists only in the fixture, so the live attach fails (libvirt finds no USB bus), its
    // reason comes back, and nothing is left assigned or defined.
    inst::act(&region, &iid, "start").await?;
    inst::expect_state(&region, &iid, "running", SETTLE).await?;
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/usb/1-2/assign"),
            json!({"instance_id": iid}),
        )
        .await?;
    let live = conn.lookup_domain_by_name(&iid)?.xml_desc(0)?;
    let defined = conn
        .lookup_domain_by_name(&iid)?
        .xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("libvirt") && m.contains("/sys/bus/usb")),
        "{body}"
    );
    assert!(!live.contains("<hostdev") && !defined.contains("<hostdev"));
    let (_, usb) = region.get(&format!("/v1/hosts/{host}/usb")).await?;
    assert_eq!(usb["items"][0]["state"], "free");
    let (_, shown) = region.get(&format!("/v1/instances/{iid}")).await?;
    assert_eq!(shown["devices"], json!([]));
    Ok(())
}

/// GPU instances: placed only on a host with a free vGPU of the asked type (mdev or SR-IOV),
/// given that vGPU in their domain, named by the drain plan, holding the GPU against a
/// restore, and freeing it when deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gpu_instances_go_where_a_free_vgpu_is() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let with_gpus = region.dir.path().join("sysfs-gpu");
    let fixture = standard_host(&with_gpus);
    // And a T4 bound to vfio-pci, for passthrough whole.
    fixture.pci_device(
        "0000:3b:00.0",
        "0x030200",
        "0x10de",
        "0x1eb8",
        Some("vfio-pci"),
    );
    let _kernel = fixture.kernel();
    let bare = region.dir.path().join("sysfs-bare");
    plinth_agent::devices::fixture::FixtureHost::new(&bare);
    let gpu_agent = agent_on_fixture(
        &region,
        "127.0.0.73",
        "az1",
        "test:///default",
        &with_gpus,
        &[],
    )
    .await?;
    let other =
        agent_on_fixture(&region, "127.0.0.74", "az1", "test:///default", &bare, &[]).await?;
    let host = gpu_agent.host_id.clone();
    listed(&region, &host, "gpus").await?;
    for (address, vgpu_type) in [(P40, "nvidia-46"), (L4, "NVIDIA L4-6Q")] {
        let (status, body) = region
            .post(
                &format!("/v1/hosts/{host}/gpus/{address}/slice"),
                json!({"type": vgpu_type, "count": 1}),
            )
            .await?;
        assert_eq!(status, 200, "{body}");
    }
    let tenant = inst::tenant(&region, "gpu@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default().to_string();

    // Each type has one free vGPU (or GPU), on one host: the creates land there, with it.
    let mut made = Vec::new();
    for (name, vgpu_type) in [
        ("gpu-1", "nvidia-46"),
        ("gpu-2", "NVIDIA L4-6Q"),
        ("gpu-5", "NVIDIA Tesla T4"),
    ] {
        let (status, created) = inst::create(
            &region,
            &tenant.token,
            name,
            &image,
            64 * MIB,
            json!({"gpu_type": vgpu_type}),
        )
        .await?;
        assert_eq!(status, 202, "{created}");
        assert_eq!(created["host_id"], host.as_str(), "{created}");
        let iid = created["id"].as_str().unwrap_or_default().to_string();
        let running = inst::expect_state(&region, &iid, "running", SETTLE).await?;
        let devices = running["devices"].as_array().cloned().unwrap_or_default();
        assert_eq!(devices.len(), 1, "{running}");
        made.push((iid, devices[0].as_str().unwrap_or_default().to_string()));
    }
    let (mdev_instance, mdev_key) = made[0].clone();
    let (vf_instance, vf_key) = made[1].clone();
    let (t4_instance, t4_key) = made[2].clone();
    assert_eq!(t4_key, "gpu:0000:3b:00.0");
    assert!(
        mdev_key.starts_with("vgpu:") && mdev_key.len() == 5 + 36,
        "{mdev_key}"
    );
    assert_eq!(vf_key, "vgpu:0000:81:00.1");

    // The agent defined each domain with its vGPU: an mdev hostdev, the VF as a PCI hostdev.
    let records = std::fs::read_to_string(gpu_agent.dir.join("devices.json"))?;
    let records: Value = serde_json::from_str(&records)?;
    let xml_of = |key: &str| -> String {
        records["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["device"] == key)
            .and_then(|a| a["xml"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let uuid = &mdev_key["vgpu:".len()..];
    assert!(xml_of(&mdev_key).contains("type='mdev' model='vfio-pci'"));
    assert!(xml_of(&mdev_key).contains(&format!("<address uuid='{uuid}'/>")));
    assert!(xml_of(&vf_key).contains("bus='0x81' slot='0x00' function='0x1'"));
    assert!(xml_of(&t4_key).contains("type='pci' managed='yes'"));
    assert!(xml_of(&t4_key).contains("bus='0x3b' slot='0x00' function='0x0'"));
    let (_, gpus) = region.get(&format!("/v1/hosts/{host}/gpus")).await?;
    let t4 = gpus["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["address"] == "0000:3b:00.0")
        .cloned()
        .unwrap_or_default();
    assert_eq!(t4["state"], "assigned", "{t4}");
    assert_eq!(t4["instance_id"], t4_instance.as_str());

    let vgpus = listed(&region, &host, "vgpus").await?;
    let held = vgpus
        .iter()
        .find(|v| format!("vgpu:{}", v["id"].as_str().unwrap_or_default()) == mdev_key);
    let held = held.cloned().unwrap_or_default();
    assert_eq!(held["state"], "assigned", "{held}");
    assert_eq!(held["instance_id"], mdev_instance.as_str());
    assert_eq!(held["tenant_email"], "gpu@example.com");

    // None of that type is left anywhere: refused, and the reason says so.
    let (status, body) = inst::create(
        &region,
        &tenant.token,
        "gpu-3",
        &image,
        64 * MIB,
        json!({"gpu_type": "nvidia-46"}),
    )
    .await?;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no free GPU of that type")),
        "{body}"
    );
    let _ = &other;
    // The BMC's VGA is the host's console: never given to a guest.
    let (status, body) = inst::create(
        &region,
        &tenant.token,
        "gpu-6",
        &image,
        64 * MIB,
        json!({"gpu_type": "ASPEED Graphics Family (BMC)"}),
    )
    .await?;
    assert_eq!(status, 409, "{body}");

    // The drain plan names the vGPU; restore is refused, naming the instance.
    let (_, plan) = region
        .get(&format!("/v1/hosts/{host}/maintenance/plan"))
        .await?;
    let blocked: Vec<String> = plan["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["blocked_by"].as_str().map(str::to_string))
        .collect();
    assert!(blocked.iter().any(|b| b.contains(&mdev_key)), "{plan}");
    let (status, body) = region
        .post(&format!("/v1/hosts/{host}/gpus/{P40}/restore"), json!({}))
        .await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "gpu_in_use");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&mdev_instance)),
        "{body}"
    );

    // Deleted: the vGPU is free again, a new instance can have it, and then the GPU can be
    // restored once that one is gone too.
    inst::delete(&region, &mdev_instance, SETTLE).await?;
    // The agent's next report frees it: the vGPU's user comes from the host, a beat behind.
    wait_for("the deleted instance's vGPU to be free", SETTLE, || async {
        let vgpus = listed(&region, &host, "vgpus").await?;
        let free = vgpus
            .iter()
            .all(|v| v["instance_id"] != mdev_instance.as_str());
        Ok(free.then_some(()))
    })
    .await?;
    let (status, again) = inst::create(
        &region,
        &tenant.token,
        "gpu-4",
        &image,
        64 * MIB,
        json!({"gpu_type": "GRID P40-1Q"}),
    )
    .await?;
    assert_eq!(status, 202, "{again}");
    let again = again["id"].as_str().unwrap_or_default().to_string();
    inst::expect_state(&region, &again, "running", SETTLE).await?;
    inst::delete(&region, &again, SETTLE).await?;
    inst::delete(&region, &vf_instance, SETTLE).await?;
    inst::delete(&region, &t4_instance, SETTLE).await?;
    wait_for("the agent to free the vGPUs", SETTLE, || async {
        let (status, body) = region
            .post(&format!("/v1/hosts/{host}/gpus/{P40}/restore"), json!({}))
            .await?;
        Ok((status == 200).then_some(body))
    })
    .await?;
    Ok(())
}

/// Waits until a (re)started agent has reported: its API, on a new port, answers through the
/// coordinator only once its first heartbeat told the port (the agent makes recorded slices
/// again before that beat).
async fn beaten(region: &Region, host: &str) -> anyhow::Result<()> {
    wait_for("the agent's first heartbeat", SETTLE, || async {
        let (status, _) = region.get(&format!("/v1/hosts/{host}/agent")).await?;
        Ok((status == 200).then_some(()))
    })
    .await
}

/// Slices outlive the agent and the host: an agent restart writes nothing, and after a reboot
/// (a fresh sysfs with no vGPUs, VFs enabled again at boot as NVIDIA's service does) the agent
/// makes each recorded slice again, same UUID, same VF, same type, before reporting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slices_come_back_after_an_agent_restart_and_a_reboot() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path().join("sysfs");
    let fixture = standard_host(&root);
    let kernel = fixture.kernel();
    let mut agent =
        agent_on_fixture(&region, "127.0.0.75", "az1", "test:///default", &root, &[]).await?;
    let host = agent.host_id.clone();
    listed(&region, &host, "gpus").await?;
    let mut ids = Vec::new();
    for (address, vgpu_type) in [(P40, "nvidia-49"), (L4, "1147")] {
        let (status, body) = region
            .post(
                &format!("/v1/hosts/{host}/gpus/{address}/slice"),
                json!({"type": vgpu_type, "count": 1}),
            )
            .await?;
        assert_eq!(status, 200, "{body}");
        ids.push(
            body["items"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let (uuid, vf) = (ids[0].clone(), ids[1].clone());
    let shown = |vgpus: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = vgpus
            .iter()
            .filter_map(|v| v["id"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let mut want = vec![uuid.clone(), vf.clone()];
    want.sort();

    kernel.clear();
    agent.stop();
    agent.run()?;
    beaten(&region, &host).await?;
    assert_eq!(shown(&listed(&region, &host, "vgpus").await?), want);
    assert_eq!(kernel.writes(), [], "a restart makes nothing");

    // The reboot: everything in sysfs is new, and no vGPU is there.
    agent.stop();
    drop(kernel);
    std::fs::remove_dir_all(&root)?;
    let fixture = standard_host(&root);
    let kernel = fixture.kernel();
    agent.run()?;
    beaten(&region, &host).await?;
    wait_for("the vGPUs made again", SETTLE, || async {
        let (_, body) = region.get(&format!("/v1/hosts/{host}/vgpus")).await?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        Ok((shown(&items) == want).then_some(()))
    })
    .await?;
    assert_eq!(
        kernel.writes(),
        [
            (
                format!("/sys/bus/pci/devices/{P40}/mdev_supported_types/nvidia-49/create"),
                uuid
            ),
            (
                format!("/sys/bus/pci/devices/{vf}/nvidia/current_vgpu_type"),
                "1147".to_string()
            ),
        ]
    );
    Ok(())
}

/// A GPU create that fails gives its vGPU back (the instance is unplaced); starting it again
/// places it only where a vGPU is free, claiming one anew; delete frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_gpu_create_frees_its_vgpu_and_a_start_claims_one_again() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let root = region.dir.path().join("sysfs");
    let fixture = standard_host(&root);
    let _kernel = fixture.kernel();
    let agent =
        agent_on_fixture(&region, "127.0.0.76", "az1", "test:///default", &root, &[]).await?;
    let host = agent.host_id.clone();
    listed(&region, &host, "gpus").await?;
    let (status, body) = region
        .post(
            &format!("/v1/hosts/{host}/gpus/{P40}/slice"),
            json!({"type": "nvidia-49", "count": 1}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let key = format!(
        "vgpu:{}",
        body["items"][0]["id"].as_str().unwrap_or_default()
    );
    let tenant = inst::tenant(&region, "gpu@example.com").await?;
    // The first image's stored bytes are corrupted: the agent's SHA-256 check refuses them.
    let doomed_image = inst::qcow2_image(&region, &tenant.id, "doomed", "32M").await?;
    let mut corrupted = 0;
    let mut dirs = vec![region.data_dir().join("images")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.metadata()?.len() > 0 {
                let mut bytes = std::fs::read(&path)?;
                bytes[0] ^= 0xff;
                std::fs::write(&path, bytes)?;
                corrupted += 1;
            }
        }
    }
    assert_eq!(corrupted, 1);
    let good_image = inst::qcow2_image(&region, &tenant.id, "good", "64M").await?;
    let gpu = json!({"gpu_type": "GRID P40-4Q"});
    let create = |name: &'static str, image: &Value| {
        let image = image["id"].as_str().unwrap_or_default().to_string();
        let (region, token, gpu) = (&region, tenant.token.clone(), gpu.clone());
        async move { inst::create(region, &token, name, &image, 64 * MIB, gpu).await }
    };

    let (status, doomed) = create("doomed-1", &doomed_image).await?;
    assert_eq!(status, 202, "{doomed}");
    let doomed = doomed["id"].as_str().unwrap_or_default().to_string();
    let failed = inst::expect_state(&region, &doomed, "error", SETTLE).await?;
    assert!(failed["host_id"].is_null(), "{failed}");
    assert_eq!(failed["devices"], json!([]), "the vGPU was given back");
    assert_eq!(vgpu_holder(&region, &host, &key).await?, None);

    let (status, good) = create("good-1", &good_image).await?;
    assert_eq!(status, 202, "{good}");
    let good = good["id"].as_str().unwrap_or_default().to_string();
    let running = inst::expect_state(&region, &good, "running", SETTLE).await?;
    assert_eq!(running["devices"], json!([key.clone()]));

    // Nothing free for the failed one now: its start is refused and says why.
    let (status, body) = region
        .post(&format!("/v1/instances/{doomed}/start"), json!({}))
        .await?;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no free GPU of that type")),
        "{body}"
    );
    let (_, still) = region.get(&format!("/v1/instances/{doomed}")).await?;
    assert_eq!(
        (still["state"].clone(), still["host_id"].clone()),
        (json!("error"), Value::Null)
    );

    // Once the vGPU is free, the start places it and claims the vGPU. Its image still fails;
    // a start that fails leaves the instance placed, holding its cores, memory and vGPU for
    // the next start, as any placed instance does, until it is deleted.
    inst::delete(&region, &good, SETTLE).await?;
    assert_eq!(vgpu_holder(&region, &host, &key).await?, None);
    inst::act(&region, &doomed, "start").await?;
    let failed = inst::expect_state(&region, &doomed, "error", SETTLE).await?;
    assert!(
        failed["state_reason"]
            .as_str()
            .is_some_and(|r| r.to_lowercase().contains("sha")),
        "it was placed and built again: {failed}"
    );
    assert_eq!(failed["host_id"], host.as_str());
    assert_eq!(failed["devices"], json!([key.clone()]));
    assert_eq!(
        vgpu_holder(&region, &host, &key).await?.as_deref(),
        Some(doomed.as_str())
    );
    inst::delete(&region, &doomed, SETTLE).await?;
    assert_eq!(vgpu_holder(&region, &host, &key).await?, None);
    Ok(())
}

/// The instance holding vGPU `key` of `host`, as the API shows it.
async fn vgpu_holder(region: &Region, host: &str, key: &str) -> anyhow::Result<Option<String>> {
    let (_, vgpus) = region.get(&format!("/v1/hosts/{host}/vgpus")).await?;
    Ok(vgpus["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| format!("vgpu:{}", v["id"].as_str().unwrap_or_default()) == key)
        .and_then(|v| v["instance_id"].as_str().map(str::to_string)))
}
