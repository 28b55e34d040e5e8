//! The inventory, slicing and restore against fixture sysfs trees (fixture.rs) with the
//! stand-in kernel reacting to writes, and libvirt's test driver for the libvirt side.

use super::fixture::{FixtureHost, standard_host};
use super::records::{Attachment, RecordFile};
use super::{DeviceError, Devices};
use crate::libvirt::Libvirt;
use plinth_common::api::{DeviceState, GpuKind, GpuState, VgpuKind};

const P40: &str = "0000:41:00.0";
const L4: &str = "0000:81:00.0";
const P40_PCI: &str = "/sys/bus/pci/devices/0000:41:00.0";

struct Setup {
    _dir: tempfile::TempDir,
    host: FixtureHost,
    data: std::path::PathBuf,
    devices: Devices,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = standard_host(&dir.path().join("root"));
    let data = dir.path().join("data");
    let devices = Devices::new(&host.root, &data, Libvirt::new("test:///default"));
    Setup {
        _dir: dir,
        host,
        data,
        devices,
    }
}

#[tokio::test]
async fn inventory_matches_the_fixture() -> Result<(), DeviceError> {
    let s = setup();
    let inv = s.devices.inventory().await?;

    let ids: Vec<&str> = inv.usb.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["1-2", "1-3.1"], "no hub, no root hub, no interface");
    let stick = &inv.usb[0];
    assert_eq!(stick.name, "SanDisk Cruzer Blade");
    assert_eq!(stick.usb_id, "0781:5567");
    assert_eq!(stick.vendor, "SanDisk");
    assert_eq!(
        stick.class, "mass storage",
        "class from the first interface"
    );
    assert_eq!(stick.serial.as_deref(), Some("4C530001"));
    assert_eq!(stick.usb_version, "2.00");
    assert_eq!((stick.bus, stick.devnum), (1, 3));
    assert_eq!(stick.state, DeviceState::Free);
    let keyboard = &inv.usb[1];
    assert_eq!(keyboard.class, "HID");
    assert_eq!(keyboard.serial, None);
    assert_eq!(keyboard.usb_version, "1.10");

    let gpus: Vec<(&str, &str, GpuKind)> = inv
        .gpus
        .iter()
        .map(|g| (g.address.as_str(), g.name.as_str(), g.kind))
        .collect();
    assert_eq!(
        gpus,
        [
            (
                "0000:02:00.0",
                "ASPEED Graphics Family (BMC)",
                GpuKind::Passthrough
            ),
            (P40, "NVIDIA Tesla P40", GpuKind::Mdev),
            (L4, "NVIDIA L4", GpuKind::SriovVgpu),
        ],
        "VFs are not GPUs of their own"
    );
    assert!(inv.gpus[0].console, "the BMC's VGA is the boot console");
    let p40 = &inv.gpus[1];
    assert!(!p40.console);
    assert_eq!(p40.pci_id, "10de:1b38");
    assert_eq!(p40.memory_bytes, Some(24 << 30));
    assert_eq!(p40.driver.as_deref(), Some("nvidia"));
    assert_eq!(p40.state, GpuState::Free);
    let types: Vec<(&str, &str, u32)> = p40
        .vgpu_types
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str(), t.available))
        .collect();
    assert_eq!(
        types,
        [
            ("nvidia-46", "GRID P40-1Q", 24),
            ("nvidia-49", "GRID P40-4Q", 6)
        ]
    );
    let l4: Vec<(&str, u32)> = inv.gpus[2]
        .vgpu_types
        .iter()
        .map(|t| (t.id.as_str(), t.available))
        .collect();
    // 4 free VFs list both; 24 GiB holds four 6 GB vGPUs but one 24 GB vGPU.
    assert_eq!(l4, [("1144", 4), ("1147", 1)]);
    assert!(inv.vgpus.is_empty());
    Ok(())
}

#[tokio::test]
async fn mdev_slicing_writes_uuids_to_create_and_restore_removes_them() -> Result<(), DeviceError> {
    let s = setup();
    let kernel = s.host.kernel();
    let made = s.devices.slice(P40, "nvidia-46", 2).await?;
    assert_eq!(made.len(), 2);
    let writes = kernel.writes();
    let create = format!("{P40_PCI}/mdev_supported_types/nvidia-46/create");
    assert_eq!(
        writes,
        made.iter()
            .map(|v| (create.clone(), v.id.clone()))
            .collect::<Vec<_>>(),
        "one UUID per write to the type's create, nothing else written"
    );
    for v in &made {
        assert_eq!(v.id.len(), 36);
        assert_eq!(&v.id[14..15], "4", "a version 4 UUID: {}", v.id);
    }

    let inv = s.devices.inventory().await?;
    assert_eq!(inv.vgpus.len(), 2);
    for v in &inv.vgpus {
        assert_eq!(
            (
                v.kind,
                v.type_id.as_str(),
                v.type_name.as_str(),
                v.parent.as_str()
            ),
            (VgpuKind::Mdev, "nvidia-46", "GRID P40-1Q", P40)
        );
    }
    let p40 = &inv.gpus[1];
    assert_eq!(p40.state, GpuState::Sliced);
    assert_eq!(p40.vgpu_types[0].available, 22);

    // Beyond what the kernel says is available: refused with the number available.
    let err = s
        .devices
        .slice(P40, "GRID P40-1Q", 23)
        .await
        .expect_err("too many");
    assert!(
        matches!(
            err,
            DeviceError::NotEnough {
                available: 22,
                asked: 23,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("22"), "{err}");
    let err = s
        .devices
        .slice(P40, "nvidia-99", 1)
        .await
        .expect_err("type");
    assert!(err.to_string().contains("nvidia-46 (GRID P40-1Q)"), "{err}");
    let err = s
        .devices
        .slice("0000:02:00.0", "x", 1)
        .await
        .expect_err("passthrough");
    assert!(matches!(err, DeviceError::Conflict(_)), "{err}");

    // Attached to an instance: restore is refused and names it.
    let file = RecordFile::new(&s.data);
    let mut records = file.load().expect("records");
    assert_eq!(records.slices.len(), 2, "each slice recorded");
    records.attachments.push(Attachment {
        device: format!("vgpu:{}", made[0].id),
        instance_id: "inst-gpu1".into(),
        xml: String::new(),
    });
    file.save(&records).expect("save");
    let err = s.devices.restore(P40).await.expect_err("attached");
    assert!(
        matches!(&err, DeviceError::Conflict(m) if m.contains("inst-gpu1")),
        "{err}"
    );
    let inv = s.devices.inventory().await?;
    assert_eq!(inv.vgpus.len(), 2, "nothing removed");
    assert_eq!(
        inv.vgpus
            .iter()
            .find(|v| v.id == made[0].id)
            .map(|v| (v.state, v.instance_id.clone())),
        Some((DeviceState::Assigned, Some("inst-gpu1".into())))
    );

    s.devices.forget_instance("inst-gpu1").await?;
    kernel.clear();
    s.devices.restore(P40).await?;
    let mut writes = kernel.writes();
    writes.sort();
    let mut want: Vec<(String, String)> = made
        .iter()
        .map(|v| (format!("/sys/bus/mdev/devices/{}/remove", v.id), "1".into()))
        .collect();
    want.sort();
    assert_eq!(writes, want);
    let inv = s.devices.inventory().await?;
    assert!(inv.vgpus.is_empty());
    assert_eq!(inv.gpus[1].state, GpuState::Free);
    assert_eq!(inv.gpus[1].vgpu_types[0].available, 24);
    assert!(file.load().expect("records").slices.is_empty());
    Ok(())
}

#[tokio::test]
async fn sriov_slicing_types_vfs_and_enables_them_first_when_off() -> Result<(), DeviceError> {
    let s = setup();
    let kernel = s.host.kernel();
    let made = s.devices.slice(L4, "NVIDIA L4-6Q", 2).await?;
    let ids: Vec<&str> = made.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["0000:81:00.1", "0000:81:00.2"]);
    assert_eq!(
        kernel.writes(),
        [
            (
                "/sys/bus/pci/devices/0000:81:00.1/nvidia/current_vgpu_type".to_string(),
                "1144".to_string()
            ),
            (
                "/sys/bus/pci/devices/0000:81:00.2/nvidia/current_vgpu_type".to_string(),
                "1144".to_string()
            ),
        ]
    );
    let inv = s.devices.inventory().await?;
    assert_eq!(inv.vgpus.len(), 2);
    assert!(
        inv.vgpus.iter().all(|v| v.kind == VgpuKind::SriovVf
            && v.type_name == "NVIDIA L4-6Q"
            && v.parent == L4)
    );
    let l4 = &inv.gpus[2];
    assert_eq!(l4.state, GpuState::Sliced);
    let err = s.devices.slice(L4, "1144", 3).await.expect_err("too many");
    assert!(
        matches!(err, DeviceError::NotEnough { available: 2, .. }),
        "{err}"
    );

    // A second L4 whose VFs are not enabled yet: enabled (all of them) first.
    s.host.sriov_gpu(
        "0000:c1:00.0",
        "0x27b8",
        2,
        0,
        &[("1147", "NVIDIA L4-24Q", 1)],
    );
    let inv = s.devices.inventory().await?;
    let fresh = inv
        .gpus
        .iter()
        .find(|g| g.address == "0000:c1:00.0")
        .expect("second L4");
    assert_eq!(
        fresh.kind,
        GpuKind::SriovVgpu,
        "nvidia driver, SR-IOV capable"
    );
    assert!(fresh.vgpu_types.is_empty(), "no VFs to count yet");
    kernel.clear();
    let made = s.devices.slice("0000:c1:00.0", "1147", 1).await?;
    assert_eq!(made.len(), 1);
    assert_eq!(
        kernel.writes(),
        [
            (
                "/sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs".to_string(),
                "2".to_string()
            ),
            (
                "/sys/bus/pci/devices/0000:c1:00.1/nvidia/current_vgpu_type".to_string(),
                "1147".to_string()
            ),
        ]
    );

    kernel.clear();
    s.devices.restore("0000:c1:00.0").await?;
    assert_eq!(
        kernel.writes(),
        [
            (
                "/sys/bus/pci/devices/0000:c1:00.1/nvidia/current_vgpu_type".to_string(),
                "0".to_string()
            ),
            (
                "/sys/bus/pci/devices/0000:c1:00.0/sriov_numvfs".to_string(),
                "0".to_string()
            ),
        ],
        "the type cleared, then the VFs plinth enabled disabled again"
    );
    kernel.clear();
    s.devices.restore(L4).await?;
    let writes = kernel.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|(p, v)| p.ends_with("nvidia/current_vgpu_type") && v == "0")
    );
    assert!(s.devices.inventory().await?.vgpus.is_empty());
    Ok(())
}

/// After a reboot sysfs has none of the slices: the agent makes each again, with the same
/// UUID and type, from its records.
#[tokio::test]
async fn recorded_slices_come_back_after_a_reboot() -> Result<(), DeviceError> {
    let s = setup();
    let (mdev, vf) = {
        let _kernel = s.host.kernel();
        let mdev = s.devices.slice(P40, "nvidia-49", 1).await?;
        let vf = s.devices.slice(L4, "1147", 1).await?;
        (mdev[0].id.clone(), vf[0].id.clone())
    };
    // The agent restarting on an unchanged host makes nothing.
    assert_eq!(s.devices.recreate().await, 0);

    let rebooted = tempfile::tempdir().expect("tempdir");
    let host = standard_host(rebooted.path());
    let kernel = host.kernel();
    let devices = Devices::new(&host.root, &s.data, Libvirt::new("test:///default"));
    assert!(devices.inventory().await?.vgpus.is_empty());
    assert_eq!(devices.recreate().await, 2);
    assert_eq!(
        kernel.writes(),
        [
            (
                format!("{P40_PCI}/mdev_supported_types/nvidia-49/create"),
                mdev.clone()
            ),
            (
                format!("/sys/bus/pci/devices/{vf}/nvidia/current_vgpu_type"),
                "1147".into()
            ),
        ]
    );
    let mut ids: Vec<String> = devices
        .inventory()
        .await?
        .vgpus
        .into_iter()
        .map(|v| v.id)
        .collect();
    ids.sort();
    assert_eq!(ids, [vf, mdev]);
    Ok(())
}

/// libvirt's test driver cannot attach devices: the attach fails as unsupported and
/// leaves the device free (the real attach runs against libvirtd in tests/devices.rs).
#[tokio::test]
async fn a_failed_usb_attach_leaves_the_device_free() -> Result<(), DeviceError> {
    let s = setup();
    let err = s
        .devices
        .attach_usb("1-2", "test")
        .await
        .expect_err("the test driver");
    assert!(
        matches!(&err, DeviceError::Libvirt { source, .. } if source.is_unsupported()),
        "{err}"
    );
    let stick = s.devices.inventory().await?.usb.remove(0);
    assert_eq!((stick.state, stick.instance_id), (DeviceState::Free, None));
    let err = s.devices.attach_usb("1-3", "test").await.expect_err("hub");
    assert!(matches!(err, DeviceError::NotFound { .. }), "{err}");
    let err = s
        .devices
        .attach_usb("1-2", "../x")
        .await
        .expect_err("bad instance");
    assert!(matches!(err, DeviceError::Invalid(_)), "{err}");
    Ok(())
}
