//! The `<hostdev>` elements that hand a device to a guest: a USB device by vendor, product and
//! bus address; a mediated device by UUID; a PCI device (a whole GPU or an SR-IOV VF) by
//! address, managed so that libvirt binds it to vfio-pci and back. Everything put in them is
//! checked first, so nothing needs escaping.

/// A PCI address `dddd:bb:ss.f` split into its parts, or `None` when it is not one.
pub fn pci_parts(address: &str) -> Option<(u32, u32, u32, u32)> {
    let (rest, function) = address.rsplit_once('.')?;
    let mut parts = rest.split(':');
    let (domain, bus, slot) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || domain.len() != 4 || bus.len() != 2 || slot.len() != 2 {
        return None;
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let (d, b, s, f) = (hex(domain)?, hex(bus)?, hex(slot)?, hex(function)?);
    (s < 32 && f < 8 && function.len() == 1).then_some((d, b, s, f))
}

/// The address as libvirt writes it in domain XML (what a domain naming it contains).
pub fn pci_libvirt_address(address: &str) -> Option<String> {
    let (d, b, s, f) = pci_parts(address)?;
    Some(format!(
        "domain='0x{d:04x}' bus='0x{b:02x}' slot='0x{s:02x}' function='0x{f:x}'"
    ))
}

/// A USB device; `startupPolicy='optional'` lets the guest boot when it is unplugged.
pub fn usb(vendor: &str, product: &str, bus: u32, devnum: u32) -> String {
    format!(
        "<hostdev mode='subsystem' type='usb' managed='yes'>
  <source startupPolicy='optional'>
    <vendor id='0x{vendor}'/>
    <product id='0x{product}'/>
    <address bus='{bus}' device='{devnum}'/>
  </source>
</hostdev>
"
    )
}

/// A mediated device (an mdev vGPU).
pub fn mdev(uuid: &str) -> String {
    format!(
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='off'>
  <source>
    <address uuid='{uuid}'/>
  </source>
</hostdev>
"
    )
}

/// A PCI device: a passthrough GPU or an SR-IOV vGPU VF.
pub fn pci(address: &str) -> Option<String> {
    let libvirt = pci_libvirt_address(address)?;
    Some(format!(
        "<hostdev mode='subsystem' type='pci' managed='yes'>
  <source>
    <address {libvirt}/>
  </source>
</hostdev>
"
    ))
}

/// `bus-port` as the kernel names USB devices (`1-2`, `3-1.4`).
pub fn is_usb_id(id: &str) -> bool {
    let Some((bus, port)) = id.split_once('-') else {
        return false;
    };
    !bus.is_empty()
        && bus.bytes().all(|b| b.is_ascii_digit())
        && !port.is_empty()
        && port
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A vGPU type id as sysfs names them (`nvidia-46`, `i915-GVTg_V5_4`, `1144`).
pub fn is_type_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Lowercase hex, four digits (`idVendor`).
pub fn is_usb_hex(id: &str) -> bool {
    id.len() == 4 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ids() {
        assert_eq!(pci_parts("0000:81:00.1"), Some((0, 0x81, 0, 1)));
        assert_eq!(
            pci_libvirt_address("0000:81:1f.7").as_deref(),
            Some("domain='0x0000' bus='0x81' slot='0x1f' function='0x7'")
        );
        for bad in [
            "81:00.1",
            "0000:81:00",
            "0000:81:00.8",
            "0000:81:00.1'",
            "x",
        ] {
            assert_eq!(pci_parts(bad), None, "{bad}");
        }
        for (id, ok) in [
            ("1-2", true),
            ("3-1.4", true),
            ("usb1", false),
            ("1-2:1.0", false),
            ("1-", false),
        ] {
            assert_eq!(is_usb_id(id), ok, "{id}");
        }
        assert!(is_type_id("nvidia-46") && is_type_id("1144") && !is_type_id("a/b"));
    }

    #[test]
    fn hostdev_xml() {
        let x = usb("0781", "5567", 1, 3);
        assert!(
            x.contains("<vendor id='0x0781'/>") && x.contains("<address bus='1' device='3'/>"),
            "{x}"
        );
        let x = mdev("3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11");
        assert!(x.contains("type='mdev' model='vfio-pci'"), "{x}");
        let x = pci("0000:81:00.1").expect("address");
        assert!(
            x.contains("bus='0x81' slot='0x00' function='0x1'") && x.contains("managed='yes'"),
            "{x}"
        );
    }
}
