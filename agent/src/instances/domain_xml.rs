//! The libvirt domain XML of an instance: a pure function of what the instance is, so it can be
//! read and tested without libvirt. Everything interpolated is XML-escaped.

use crate::libvirt::Hypervisor;
use std::fmt::Write;
use std::path::Path;

pub struct DomainSpec<'a> {
    pub name: &'a str,
    pub hypervisor: Hypervisor,
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// The instance's qcow2 disk.
    pub disk: &'a Path,
    /// The cloud-init NoCloud seed, attached read-only.
    pub seed: &'a Path,
    /// An installer ISO that boots first, in front of the (then empty) disk.
    pub boot_iso: Option<&'a Path>,
    /// `<hostdev>` elements (a vGPU or GPU), built and checked by the devices module.
    pub hostdevs: &'a [String],
    /// The files are on shared storage: no host page cache (`cache='none'`), so a live
    /// migration may leave them where they are.
    pub shared: bool,
}

pub fn render(spec: &DomainSpec<'_>) -> String {
    let kind = match spec.hypervisor {
        Hypervisor::Test => "test",
        Hypervisor::Kvm => "kvm",
        Hypervisor::Qemu => "qemu",
    };
    // The test driver knows no machine types; QEMU gets q35, whose SATA controller the
    // CD-ROMs sit on.
    let machine = match spec.hypervisor {
        Hypervisor::Test => "",
        Hypervisor::Kvm | Hypervisor::Qemu => " machine='q35'",
    };
    let memory_kib = spec.memory_bytes.div_ceil(1024);
    let mut x = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        x,
        "<domain type='{kind}'>
  <name>{name}</name>
  <memory unit='KiB'>{memory_kib}</memory>
  <currentMemory unit='KiB'>{memory_kib}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64'{machine}>hvm</type>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
",
        name = escape(spec.name),
        vcpus = spec.vcpus,
    );
    x.push_str(
        "  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
",
    );
    let disk_boot = if spec.boot_iso.is_some() { 2 } else { 1 };
    let cache = if spec.shared { " cache='none'" } else { "" };
    let _ = write!(
        x,
        "    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'{cache}/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
      <boot order='{disk_boot}'/>
    </disk>
",
        disk = escape_path(spec.disk),
    );
    let mut cdroms = Vec::new();
    if let Some(iso) = spec.boot_iso {
        cdroms.push((iso, Some(1)));
    }
    cdroms.push((spec.seed, None));
    for ((file, boot), dev) in cdroms.into_iter().zip(["sda", "sdb"]) {
        let boot = boot
            .map(|order| format!("      <boot order='{order}'/>\n"))
            .unwrap_or_default();
        let _ = write!(
            x,
            "    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'{cache}/>
      <source file='{file}'/>
      <target dev='{dev}' bus='sata'/>
      <readonly/>
{boot}    </disk>
",
            file = escape_path(file),
        );
    }
    x.push_str(
        "    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
",
    );
    for hostdev in spec.hostdevs {
        for line in hostdev.lines() {
            let _ = writeln!(x, "    {line}");
        }
    }
    if spec.hypervisor != Hypervisor::Test {
        x.push_str("    <memballoon model='virtio'/>\n");
    }
    x.push_str("  </devices>\n</domain>\n");
    x
}

fn escape_path(path: &Path) -> String {
    escape(&path.to_string_lossy())
}

/// Escapes text for an element body or a quoted attribute (either quote).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(hypervisor: Hypervisor, boot_iso: Option<&'a Path>) -> DomainSpec<'a> {
        DomainSpec {
            name: "inst-1",
            hypervisor,
            vcpus: 3,
            memory_bytes: 2 << 30,
            disk: Path::new("/var/lib/plinth-agent/instances/inst-1/disk.qcow2"),
            seed: Path::new("/var/lib/plinth-agent/instances/inst-1/seed.iso"),
            boot_iso,
            hostdevs: &[],
            shared: false,
        }
    }

    #[test]
    fn disks_on_shared_storage_bypass_the_host_cache() {
        let local = render(&spec(Hypervisor::Qemu, None));
        assert!(!local.contains("cache="), "{local}");
        let shared = render(&DomainSpec {
            shared: true,
            ..spec(Hypervisor::Qemu, None)
        });
        assert!(
            shared.contains("<driver name='qemu' type='qcow2' cache='none'/>")
                && shared.contains("<driver name='qemu' type='raw' cache='none'/>"),
            "{shared}"
        );
    }

    #[test]
    fn escapes_everything_interpolated() {
        assert_eq!(escape(r#"a&b<c>d'e"f"#), "a&amp;b&lt;c&gt;d&apos;e&quot;f");
        let xml = render(&DomainSpec {
            name: "x'><evil/>&",
            disk: Path::new("/d/it's <here>.qcow2"),
            seed: Path::new("/d/\"seed\".iso"),
            ..spec(Hypervisor::Qemu, None)
        });
        assert!(
            xml.contains("<name>x&apos;&gt;&lt;evil/&gt;&amp;</name>"),
            "{xml}"
        );
        assert!(
            xml.contains("file='/d/it&apos;s &lt;here&gt;.qcow2'"),
            "{xml}"
        );
        assert!(xml.contains("file='/d/&quot;seed&quot;.iso'"), "{xml}");
        assert!(!xml.contains("<evil/>"));
    }

    #[test]
    fn sizes_and_hypervisors() {
        let cases = [
            (
                "test driver",
                Hypervisor::Test,
                "<domain type='test'>",
                false,
            ),
            ("kvm", Hypervisor::Kvm, "<domain type='kvm'>", true),
            ("tcg", Hypervisor::Qemu, "<domain type='qemu'>", true),
        ];
        for (label, hv, head, qemu) in cases {
            let xml = render(&spec(hv, None));
            assert!(xml.starts_with(head), "{label}: {xml}");
            assert!(xml.contains("<vcpu placement='static'>3</vcpu>"), "{label}");
            assert!(
                xml.contains("<memory unit='KiB'>2097152</memory>"),
                "{label}"
            );
            assert!(
                xml.contains("<on_poweroff>destroy</on_poweroff>"),
                "{label}"
            );
            assert!(xml.contains("<serial type='pty'>"), "{label}");
            assert_eq!(xml.contains("machine='q35'"), qemu, "{label}");
            // No <cpu>: QEMU's default model starts on every host (host-model fails on
            // some nested KVM hosts) and migrates between any two.
            assert!(!xml.contains("<cpu"), "{label}");
        }
        // Memory that is not whole KiB rounds up rather than shrinking the guest.
        let xml = render(&DomainSpec {
            memory_bytes: 1025,
            ..spec(Hypervisor::Test, None)
        });
        assert!(xml.contains("<memory unit='KiB'>2</memory>"), "{xml}");
    }

    #[test]
    fn hostdevs_go_in_devices() {
        let hostdevs = vec![crate::devices::hostdev::mdev(
            "3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11",
        )];
        let xml = render(&DomainSpec {
            hostdevs: &hostdevs,
            ..spec(Hypervisor::Kvm, None)
        });
        assert!(
            xml.contains(
                "    <hostdev mode='subsystem' type='mdev' model='vfio-pci' display='off'>\n      <source>\n        <address uuid='3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11'/>"
            ),
            "{xml}"
        );
        assert!(xml.find("<hostdev").unwrap_or(0) < xml.find("</devices>").unwrap_or(0));
    }

    #[test]
    fn disk_boots_unless_an_iso_is_attached() {
        let xml = render(&spec(Hypervisor::Kvm, None));
        assert_eq!(xml.matches("<boot order=").count(), 1);
        assert!(xml.contains("<target dev='vda' bus='virtio'/>\n      <boot order='1'/>"));
        assert!(xml.contains(
            "seed.iso'/>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>"
        ));

        let iso = Path::new("/var/lib/plinth-agent/images/abc.iso");
        let xml = render(&spec(Hypervisor::Kvm, Some(iso)));
        assert!(xml.contains("<target dev='vda' bus='virtio'/>\n      <boot order='2'/>"));
        assert!(xml.contains(
            "images/abc.iso'/>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n      <boot order='1'/>"
        ));
        assert!(xml.contains(
            "seed.iso'/>\n      <target dev='sdb' bus='sata'/>\n      <readonly/>\n    </disk>"
        ));
    }
}
