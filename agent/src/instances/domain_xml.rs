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
    /// Virtio NICs, one per bound EIP.
    pub nics: &'a [DomainNic],
}

/// A NIC on a host bridge whose traffic libvirt's nwfilter holds to its own MAC and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainNic {
    pub mac: String,
    pub bridge: String,
    /// The EIP it carries: the only source address its packets (and ARP) may use.
    pub address: std::net::IpAddr,
}

/// `nic` without its filter (libvirt's test driver).
fn plain_interface(nic: &DomainNic) -> String {
    format!(
        "<interface type='bridge'>
  <mac address='{mac}'/>
  <source bridge='{bridge}'/>
  <model type='virtio'/>
</interface>
",
        mac = escape(&nic.mac),
        bridge = escape(&nic.bridge),
    )
}

/// The `<interface>` element of `nic`, also what a hot-plug attaches.
pub fn interface(nic: &DomainNic) -> String {
    let (param, filter) = match nic.address {
        std::net::IpAddr::V4(_) => ("IP", crate::network::filter::NAME_V4),
        std::net::IpAddr::V6(_) => ("IPV6", crate::network::filter::NAME_V6),
    };
    format!(
        "<interface type='bridge'>
  <mac address='{mac}'/>
  <source bridge='{bridge}'/>
  <model type='virtio'/>
  <filterref filter='{filter}'>
    <parameter name='{param}' value='{address}'/>
  </filterref>
</interface>
",
        mac = escape(&nic.mac),
        bridge = escape(&nic.bridge),
        address = nic.address,
    )
}

/// Free PCIe root ports a QEMU domain is defined with, for NICs hot-plugged later.
pub const HOTPLUG_PORTS: usize = 6;

pub fn render(spec: &DomainSpec<'_>) -> String {
    let kind = match spec.hypervisor {
        Hypervisor::Test => "test",
        Hypervisor::Kvm => "kvm",
        Hypervisor::Qemu => "qemu",
    };
    // The test driver knows no machine types; QEMU gets q35.
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
    // CD-ROMs on virtio-scsi, not q35's SATA: stock cloud kernels (Debian's linux-image-cloud
    // has no AHCI driver) read the NoCloud seed only on a bus they have a driver for, and
    // SeaBIOS boots an installer ISO from it all the same.
    x.push_str("    <controller type='scsi' index='0' model='virtio-scsi'/>\n");
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
      <target dev='{dev}' bus='scsi'/>
      <readonly/>
{boot}    </disk>
",
            file = escape_path(file),
        );
    }
    for nic in spec.nics {
        let element = match spec.hypervisor {
            // The test driver has no nwfilter.
            Hypervisor::Test => plain_interface(nic),
            Hypervisor::Kvm | Hypervisor::Qemu => interface(nic),
        };
        for line in element.lines() {
            let _ = writeln!(x, "    {line}");
        }
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
        // q35 hot-plugs a PCIe device only into a free root port, and libvirt adds just the
        // ones the defined devices take: these are for NICs of EIPs bound later. (Given
        // without an index, the first would take index 0, which is q35's root.)
        x.push_str("    <controller type='pci' index='0' model='pcie-root'/>\n");
        for _ in 0..HOTPLUG_PORTS {
            x.push_str("    <controller type='pci' model='pcie-root-port'/>\n");
        }
    }
    x.push_str("  </devices>\n</domain>\n");
    x
}

/// The `<interface>` element of the NIC with `mac` in a domain's XML, as libvirt wrote it
/// (what a detach hands back to libvirt).
pub fn interface_with_mac(xml: &str, mac: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(start) = rest.find("<interface ") {
        let from = &rest[start..];
        let end = from.find("</interface>")? + "</interface>".len();
        let element = &from[..end];
        let wanted = mac.to_ascii_lowercase();
        if element.contains(&format!("<mac address='{wanted}'/>"))
            || element.contains(&format!("<mac address=\"{wanted}\"/>"))
        {
            return Some(element.to_string());
        }
        rest = &from[end..];
    }
    None
}

/// The bridges a domain's XML puts NICs on (libvirt writes `<source bridge='NAME'/>`).
pub fn bridges(xml: &str) -> Vec<String> {
    quoted_after(xml, "<source bridge=")
}

/// The MACs of a domain's NICs (`<mac address='M'/>`).
pub fn macs(xml: &str) -> Vec<String> {
    quoted_after(xml, "<mac address=")
}

/// Each distinct quoted value right after `prefix` in `xml`, in order.
fn quoted_after(xml: &str, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in xml.split(prefix).skip(1) {
        let mut chars = part.chars();
        let Some(quote) = chars.next().filter(|q| *q == '\'' || *q == '"') else {
            continue;
        };
        let name: String = chars.take_while(|c| *c != quote).collect();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
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
            nics: &[],
        }
    }

    #[test]
    fn nics_sit_on_their_bridges_behind_the_filter() {
        let nics = [
            DomainNic {
                mac: "52:54:00:00:00:01".into(),
                bridge: "pl-bond1.100".into(),
                address: "203.0.113.10".parse().expect("ip"),
            },
            DomainNic {
                mac: "52:54:00:00:00:02".into(),
                bridge: "pl-bond2".into(),
                address: "2001:db8::10".parse().expect("ip"),
            },
        ];
        let xml = render(&DomainSpec {
            nics: &nics,
            ..spec(Hypervisor::Qemu, None)
        });
        assert!(
            xml.contains(
                "    <interface type='bridge'>\n      <mac address='52:54:00:00:00:01'/>\n      <source bridge='pl-bond1.100'/>\n      <model type='virtio'/>\n      <filterref filter='plinth-clean-traffic'>\n        <parameter name='IP' value='203.0.113.10'/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<filterref filter='plinth-clean-traffic-ipv6'>\n        <parameter name='IPV6' value='2001:db8::10'/>"),
            "{xml}"
        );
        assert!(xml.find("<interface").unwrap_or(0) < xml.find("<serial").unwrap_or(0));
        assert_eq!(bridges(&xml), ["pl-bond1.100", "pl-bond2"]);
        let second = interface_with_mac(&xml, "52:54:00:00:00:02").expect("the second NIC");
        assert!(
            second.starts_with("<interface type='bridge'>") && second.ends_with("</interface>")
        );
        assert!(
            second.contains("pl-bond2") && !second.contains("pl-bond1.100"),
            "{second}"
        );
        assert_eq!(interface_with_mac(&xml, "52:54:00:00:00:09"), None);
        // libvirt's own spelling of a running domain.
        assert_eq!(
            bridges(
                "<interface type=\"bridge\"><source bridge=\"pl-eth1\"/><target dev=\"vnet3\"/></interface>"
            ),
            ["pl-eth1"]
        );
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
            assert_eq!(
                xml.matches("<controller type='pci' model='pcie-root-port'/>")
                    .count(),
                if qemu { HOTPLUG_PORTS } else { 0 },
                "{label}: free ports for hot-plugged NICs"
            );
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
            "seed.iso'/>\n      <target dev='sda' bus='scsi'/>\n      <readonly/>\n    </disk>"
        ));

        let iso = Path::new("/var/lib/plinth-agent/images/abc.iso");
        let xml = render(&spec(Hypervisor::Kvm, Some(iso)));
        assert!(xml.contains("<target dev='vda' bus='virtio'/>\n      <boot order='2'/>"));
        assert!(xml.contains(
            "images/abc.iso'/>\n      <target dev='sda' bus='scsi'/>\n      <readonly/>\n      <boot order='1'/>"
        ));
        assert!(xml.contains(
            "seed.iso'/>\n      <target dev='sdb' bus='scsi'/>\n      <readonly/>\n    </disk>"
        ));
    }
}
