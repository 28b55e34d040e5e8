//! Fixture sysfs trees shaped like the kernel's (devices under `/sys/devices/pci0000:00/...`,
//! reached through the bus symlinks, attribute files, `virtfnN`/`physfn`/`driver`/`mdev_type`
//! links), and a stand-in for the kernel that reacts to what is written to them as the kernel
//! would: a UUID written to a type's `create` makes the mdev device, `1` written to its
//! `remove` removes it, a count written to `sriov_numvfs` makes the VFs. Every write it sees is
//! logged, so tests check exactly what was written where. For tests (here and end to end) only.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fixture host: a temporary root with `sys/` in it.
pub struct FixtureHost {
    pub root: PathBuf,
}

/// An SR-IOV GPU's VFs as the fixture makes them when `sriov_numvfs` is written.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct VfTemplate {
    /// (id, name) per type in `creatable_vgpu_types`.
    types: Vec<(String, String)>,
    /// How many VFs of one type fit, by type id (the driver empties the lists of the other
    /// VFs once that many are typed).
    fit: Vec<(String, u32)>,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn link(target: &str, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(at);
    symlink(target, at).unwrap();
}

impl FixtureHost {
    pub fn new(root: &Path) -> FixtureHost {
        for dir in [
            "sys/bus/usb/devices",
            "sys/bus/pci/devices",
            "sys/bus/mdev/devices",
            "sys/class/mdev_bus",
            "sys/devices/pci0000:00",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        FixtureHost {
            root: root.to_path_buf(),
        }
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }

    /// A USB root hub `usbN` on the xHCI controller `0000:00:14.0`.
    pub fn usb_root_hub(&self, bus: u32) {
        let rel = format!("devices/pci0000:00/0000:00:14.0/usb{bus}");
        let dir = self.sys(&rel);
        for (name, value) in [
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("bDeviceClass", "09"),
            ("manufacturer", "Linux 6.8.0 xhci-hcd"),
            ("product", "xHCI Host Controller"),
            ("version", " 2.00"),
            ("busnum", &bus.to_string()),
            ("devnum", "1"),
            ("devpath", "0"),
        ] {
            write(&dir.join(name), &format!("{value}\n"));
        }
        link(
            &format!("../../../{rel}"),
            &self.sys(&format!("bus/usb/devices/usb{bus}")),
        );
    }

    /// A USB device `name` (`1-2`) under root hub `usbN`, with one interface of
    /// `interface_class` when `class` is 00.
    #[allow(clippy::too_many_arguments)]
    pub fn usb_device(
        &self,
        name: &str,
        ids: (&str, &str),
        strings: (Option<&str>, Option<&str>, Option<&str>),
        class: &str,
        interface_class: &str,
        version: &str,
        devnum: u32,
    ) {
        let (bus, port) = name.split_once('-').unwrap();
        let parent = match port.rsplit_once('.') {
            Some((up, _)) => format!("usb{bus}/{bus}-{up}"),
            None => format!("usb{bus}"),
        };
        let rel = format!("devices/pci0000:00/0000:00:14.0/{parent}/{name}");
        let dir = self.sys(&rel);
        let devnum = devnum.to_string();
        let mut attrs = vec![
            ("idVendor", ids.0),
            ("idProduct", ids.1),
            ("bDeviceClass", class),
            ("version", version),
            ("busnum", bus),
            ("devnum", &devnum),
            ("devpath", port),
        ];
        let (manufacturer, product, serial) = strings;
        attrs.extend(manufacturer.map(|v| ("manufacturer", v)));
        attrs.extend(product.map(|v| ("product", v)));
        attrs.extend(serial.map(|v| ("serial", v)));
        for (attr, value) in attrs {
            write(&dir.join(attr), &format!("{value}\n"));
        }
        let iface = dir.join(format!("{name}:1.0"));
        write(
            &iface.join("bInterfaceClass"),
            &format!("{interface_class}\n"),
        );
        let up = "../../../";
        link(
            &format!("{up}{rel}"),
            &self.sys(&format!("bus/usb/devices/{name}")),
        );
        link(
            &format!("{up}{rel}/{name}:1.0"),
            &self.sys(&format!("bus/usb/devices/{name}:1.0")),
        );
    }

    /// A PCI device at `address` with `class`, vendor and device ids, bound to `driver`.
    pub fn pci_device(
        &self,
        address: &str,
        class: &str,
        vendor: &str,
        device: &str,
        driver: Option<&str>,
    ) -> PathBuf {
        let rel = format!("devices/pci0000:00/0000:00:01.0/{address}");
        let dir = self.sys(&rel);
        for (name, value) in [("class", class), ("vendor", vendor), ("device", device)] {
            write(&dir.join(name), &format!("{value}\n"));
        }
        if let Some(driver) = driver {
            std::fs::create_dir_all(self.sys(&format!("bus/pci/drivers/{driver}"))).unwrap();
            link(
                &format!("../../../../bus/pci/drivers/{driver}"),
                &dir.join("driver"),
            );
        }
        link(
            &format!("../../../{rel}"),
            &self.sys(&format!("bus/pci/devices/{address}")),
        );
        dir
    }

    /// An mdev-capable GPU: `types` as (id, name, available_instances, description).
    pub fn mdev_gpu(
        &self,
        address: &str,
        vendor: &str,
        device: &str,
        types: &[(&str, &str, u32, &str)],
    ) {
        let dir = self.pci_device(address, "0x030200", vendor, device, Some("nvidia"));
        for (id, name, available, description) in types {
            let t = dir.join("mdev_supported_types").join(id);
            write(&t.join("name"), &format!("{name}\n"));
            write(&t.join("available_instances"), &format!("{available}\n"));
            write(&t.join("description"), &format!("{description}\n"));
            write(&t.join("device_api"), "vfio-pci\n");
            write(&t.join("create"), "");
            std::fs::create_dir_all(t.join("devices")).unwrap();
        }
        link(
            &format!("../../devices/pci0000:00/0000:00:01.0/{address}"),
            &self.sys(&format!("class/mdev_bus/{address}")),
        );
    }

    /// An SR-IOV vGPU GPU (NVIDIA driver) with `total_vfs` VFs possible, `enabled` of them
    /// enabled now; each VF lists `types` as creatable while fewer than the type's fit are
    /// typed.
    pub fn sriov_gpu(
        &self,
        address: &str,
        device: &str,
        total_vfs: u32,
        enabled: u32,
        types: &[(&str, &str, u32)],
    ) {
        let dir = self.pci_device(address, "0x030200", "0x10de", device, Some("nvidia"));
        write(&dir.join("sriov_totalvfs"), &format!("{total_vfs}\n"));
        write(&dir.join("sriov_numvfs"), "0\n");
        let template = VfTemplate {
            types: types
                .iter()
                .map(|(id, name, _)| (id.to_string(), name.to_string()))
                .collect(),
            fit: types
                .iter()
                .map(|(id, _, n)| (id.to_string(), *n))
                .collect(),
        };
        write(
            &dir.join(".fixture-template"),
            &serde_json::to_string(&template).unwrap(),
        );
        if enabled > 0 {
            self.make_vfs(&dir, address, enabled);
        }
    }

    fn template(dir: &Path) -> VfTemplate {
        let text = std::fs::read_to_string(dir.join(".fixture-template")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// VF `n` of PF `a:b:c.0` is at function `n + 1` of the same slot (`0000:41:00.1`...).
    fn vf_address(pf: &str, n: u32) -> String {
        let (slot, _) = pf.rsplit_once('.').unwrap();
        let (bus, dev) = slot.rsplit_once(':').unwrap();
        let dev = u32::from_str_radix(dev, 16).unwrap() + (n + 1) / 8;
        format!("{bus}:{dev:02x}.{}", (n + 1) % 8)
    }

    fn make_vfs(&self, pf_dir: &Path, pf: &str, count: u32) {
        let template = Self::template(pf_dir);
        for n in 0..count {
            let vf = Self::vf_address(pf, n);
            let dir = self.pci_device(&vf, "0x030200", "0x10de", "0x0000", Some("nvidia"));
            link(&format!("../{pf}"), &dir.join("physfn"));
            link(&format!("../{vf}"), &pf_dir.join(format!("virtfn{n}")));
            let mut listed = String::from("ID    : vGPU Name\n");
            for (id, name) in &template.types {
                listed.push_str(&format!("{id:<6}: {name}\n"));
            }
            write(&dir.join("nvidia/creatable_vgpu_types"), &listed);
            write(&dir.join("nvidia/current_vgpu_type"), "0\n");
        }
        write(&pf_dir.join("sriov_numvfs"), &format!("{count}\n"));
    }

    fn remove_vfs(pf_dir: &Path) {
        for name in super::sysfs::names(pf_dir) {
            if name.starts_with("virtfn") {
                let target = std::fs::canonicalize(pf_dir.join(&name)).unwrap();
                let address = target.file_name().unwrap().to_string_lossy().into_owned();
                let bus_link = pf_dir
                    .ancestors()
                    .find(|p| p.ends_with("sys"))
                    .unwrap()
                    .join("bus/pci/devices")
                    .join(address);
                let _ = std::fs::remove_file(bus_link);
                let _ = std::fs::remove_dir_all(target);
                let _ = std::fs::remove_file(pf_dir.join(name));
            }
        }
    }

    /// An mdev device the kernel made (as after a write to `create`).
    pub fn make_mdev(&self, parent: &str, type_id: &str, uuid: &str) {
        let parent_dir = self.sys(&format!("devices/pci0000:00/0000:00:01.0/{parent}"));
        let dir = parent_dir.join(uuid);
        std::fs::create_dir_all(&dir).unwrap();
        link(
            &format!("../mdev_supported_types/{type_id}"),
            &dir.join("mdev_type"),
        );
        write(&dir.join("remove"), "");
        link(
            &format!("../../../devices/pci0000:00/0000:00:01.0/{parent}/{uuid}"),
            &self.sys(&format!("bus/mdev/devices/{uuid}")),
        );
        link(
            &format!("../../../{uuid}"),
            &parent_dir
                .join("mdev_supported_types")
                .join(type_id)
                .join("devices")
                .join(uuid),
        );
        Self::add_available(&parent_dir.join("mdev_supported_types").join(type_id), -1);
    }

    fn add_available(type_dir: &Path, delta: i64) {
        let path = type_dir.join("available_instances");
        let now: i64 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::write(&path, format!("{}\n", now + delta)).unwrap();
    }

    fn remove_mdev(&self, uuid: &str) {
        let link_path = self.sys(&format!("bus/mdev/devices/{uuid}"));
        let dir = std::fs::canonicalize(&link_path).unwrap();
        let type_dir = std::fs::canonicalize(dir.join("mdev_type")).unwrap();
        let _ = std::fs::remove_file(type_dir.join("devices").join(uuid));
        Self::add_available(&type_dir, 1);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&link_path).unwrap();
    }

    /// Empties the other VFs' creatable lists of a type once `fit` VFs carry it, and fills
    /// them again below that, as NVIDIA's driver does.
    fn refresh_creatable(pf_dir: &Path) {
        let template = Self::template(pf_dir);
        let vfs = crate::devices::gpu::vfs(pf_dir);
        let typed: Vec<String> = vfs
            .iter()
            .filter_map(|(_, vf)| crate::devices::gpu::current_type(vf))
            .collect();
        for (_, vf) in &vfs {
            let mut listed = String::from("ID    : vGPU Name\n");
            let free = crate::devices::gpu::current_type(vf).is_none();
            for (id, name) in &template.types {
                let fit = template
                    .fit
                    .iter()
                    .find(|(t, _)| t == id)
                    .map_or(0, |(_, n)| *n);
                // One type per GPU at a time, as on time-sliced vGPUs.
                let other_type = typed.iter().any(|t| t != id);
                let used = typed.iter().filter(|t| *t == id).count() as u32;
                if free && !other_type && used < fit {
                    listed.push_str(&format!("{id:<6}: {name}\n"));
                }
            }
            std::fs::write(vf.join("nvidia/creatable_vgpu_types"), listed).unwrap();
        }
    }

    /// Starts the stand-in kernel; it runs until the returned handle is dropped.
    pub fn kernel(&self) -> Kernel {
        let state = Arc::new(KernelState {
            host: FixtureHost {
                root: self.root.clone(),
            },
            log: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        // A first look before returning: what is there now is not a write.
        state.look();
        state.log.lock().unwrap().clear();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    state.look();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Kernel {
            stop,
            state,
            thread: Some(thread),
        }
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_else(|_| path.display().to_string())
    }

    /// One look at every attribute the kernel acts on.
    fn react(&self, log: &Mutex<Vec<(String, String)>>, seen: &mut Vec<(PathBuf, String)>) {
        let record = |path: &Path, value: &str| {
            log.lock()
                .unwrap()
                .push((self.rel(path), value.to_string()));
        };
        let pci = self.sys("bus/pci/devices");
        // Types first: a type cleared just before its VFs are disabled is seen before they go
        // (the real kernel takes each write as it comes).
        for address in super::sysfs::names(&pci) {
            let dir = pci.join(&address);
            let current = dir.join("nvidia/current_vgpu_type");
            // Empty: caught between a writer's truncation and its write (a real attribute
            // has no such moment); the value comes with the next look.
            let Ok(value) = std::fs::read_to_string(&current) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            match seen.iter_mut().find(|(p, _)| *p == current) {
                Some((_, last)) if *last != value => {
                    record(&current, value.trim());
                    *last = value;
                    if let Ok(pf) = std::fs::canonicalize(dir.join("physfn")) {
                        Self::refresh_creatable(&pf);
                    }
                }
                Some(_) => {}
                None => {
                    // A VF the kernel made holds `0`: anything else was written before this
                    // look came round (a slow look on a busy machine).
                    if value.trim() != "0" {
                        record(&current, value.trim());
                        if let Ok(pf) = std::fs::canonicalize(dir.join("physfn")) {
                            Self::refresh_creatable(&pf);
                        }
                    }
                    seen.push((current, value));
                }
            }
        }
        for address in super::sysfs::names(&pci) {
            let dir = pci.join(&address);
            let types = dir.join("mdev_supported_types");
            for type_id in super::sysfs::names(&types) {
                let create = types.join(&type_id).join("create");
                let written = std::fs::read_to_string(&create).unwrap_or_default();
                if !written.is_empty() {
                    std::fs::write(&create, "").unwrap();
                    record(&create, &written);
                    self.make_mdev(&address, &type_id, written.trim());
                }
            }
            let numvfs = dir.join("sriov_numvfs");
            if let Some(value) = super::sysfs::attr(&dir, "sriov_numvfs") {
                let have = crate::devices::gpu::vfs(&dir).len() as u32;
                let want: u32 = value.parse().unwrap_or(have);
                if want != have {
                    record(&numvfs, &value);
                    Self::remove_vfs(&dir);
                    if want > 0 {
                        self.make_vfs(&dir, &address, want);
                    } else {
                        std::fs::write(&numvfs, "0\n").unwrap();
                    }
                }
            }
        }
        let mdevs = self.sys("bus/mdev/devices");
        for uuid in super::sysfs::names(&mdevs) {
            let remove = mdevs.join(&uuid).join("remove");
            let written = std::fs::read_to_string(&remove).unwrap_or_default();
            if !written.is_empty() {
                record(&remove, &written);
                self.remove_mdev(&uuid);
            }
        }
    }
}

struct KernelState {
    host: FixtureHost,
    log: Mutex<Vec<(String, String)>>,
    /// The last value of each `current_vgpu_type` (it is read and written alike).
    seen: Mutex<Vec<(PathBuf, String)>>,
}

impl KernelState {
    /// One look, never two at once (the thread's and a caller's).
    fn look(&self) {
        let mut seen = self.seen.lock().unwrap();
        self.host.react(&self.log, &mut seen);
    }
}

/// The running stand-in kernel and the writes it has seen: (path under the root, value).
pub struct Kernel {
    stop: Arc<AtomicBool>,
    state: Arc<KernelState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Kernel {
    /// Every write so far, after a look at what may have been written just now.
    pub fn writes(&self) -> Vec<(String, String)> {
        self.state.look();
        self.state.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.state.look();
        self.state.log.lock().unwrap().clear();
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The host the tests use: a root hub, a USB stick, a keyboard behind a hub, the hub, an
/// mdev-capable Tesla P40, an SR-IOV L4 with its VFs enabled but untyped, and the BMC's VGA.
pub fn standard_host(root: &Path) -> FixtureHost {
    let host = FixtureHost::new(root);
    host.usb_root_hub(1);
    host.usb_root_hub(2);
    host.usb_device(
        "1-2",
        ("0781", "5567"),
        (Some("SanDisk"), Some("Cruzer Blade"), Some("4C530001")),
        "00",
        "08",
        " 2.00",
        3,
    );
    host.usb_device(
        "1-3",
        ("05e3", "0610"),
        (Some("GenesysLogic"), Some("USB2.1 Hub"), None),
        "09",
        "09",
        " 2.10",
        4,
    );
    host.usb_device(
        "1-3.1",
        ("046d", "c31c"),
        (Some("Logitech"), Some("USB Keyboard"), None),
        "00",
        "03",
        " 1.10",
        5,
    );
    let bmc = host.pci_device("0000:02:00.0", "0x030000", "0x1a03", "0x2000", Some("ast"));
    write(&bmc.join("boot_vga"), "1\n");
    host.mdev_gpu(
        "0000:41:00.0",
        "0x10de",
        "0x1b38",
        &[
            ("nvidia-46", "GRID P40-1Q", 24, "num_heads=4, frl_config=60"),
            ("nvidia-49", "GRID P40-4Q", 6, "num_heads=4, frl_config=60"),
        ],
    );
    host.sriov_gpu(
        "0000:81:00.0",
        "0x27b8",
        4,
        4,
        &[("1144", "NVIDIA L4-6Q", 4), ("1147", "NVIDIA L4-24Q", 1)],
    );
    host
}
