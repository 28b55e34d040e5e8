//! USB devices from `/sys/bus/usb/devices`: every device that is not a hub or a root hub
//! (`usbN`), skipping interfaces (`1-2:1.0`). A device whose class is defined per interface
//! takes the class of its first interface.

use super::sysfs::{Sysfs, attr, hex, names, number};
use plinth_common::api::{DeviceState, UsbDevice};

const HUB: u32 = 0x09;

pub fn inventory(sysfs: &Sysfs) -> Vec<UsbDevice> {
    let base = sysfs.path("bus/usb/devices");
    let mut out = Vec::new();
    for name in names(&base) {
        if name.starts_with("usb") || name.contains(':') {
            continue;
        }
        let dir = base.join(&name);
        let Some(class) = hex(&dir, "bDeviceClass") else {
            continue;
        };
        if class == HUB {
            continue;
        }
        let (Some(vendor_id), Some(product_id)) = (attr(&dir, "idVendor"), attr(&dir, "idProduct"))
        else {
            continue;
        };
        let class = match class {
            // Defined per interface (0x00) or a composite device (0xef): the first
            // interface says what it is.
            0x00 | 0xef => first_interface_class(&dir, &name).unwrap_or(class),
            other => other,
        };
        let usb_id = format!("{vendor_id}:{product_id}");
        let vendor = attr(&dir, "manufacturer").filter(|s| !s.is_empty());
        let product = attr(&dir, "product").filter(|s| !s.is_empty());
        let device_name = match (&vendor, &product) {
            (Some(v), Some(p)) => format!("{v} {p}"),
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (None, None) => format!("USB device {usb_id}"),
        };
        out.push(UsbDevice {
            id: name.clone(),
            name: device_name,
            vendor: vendor.unwrap_or_else(|| vendor_id.clone()),
            product: product.unwrap_or_else(|| product_id.clone()),
            usb_id,
            class: class_name(class).to_string(),
            serial: attr(&dir, "serial").filter(|s| !s.is_empty()),
            usb_version: attr(&dir, "version").unwrap_or_default(),
            bus: number(&dir, "busnum").unwrap_or(0),
            devnum: number(&dir, "devnum").unwrap_or(0),
            state: DeviceState::Free,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
        });
    }
    out
}

/// `bInterfaceClass` of the device's first interface (`1-2:1.0`, a directory inside it).
fn first_interface_class(dir: &std::path::Path, name: &str) -> Option<u32> {
    let prefix = format!("{name}:");
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .find_map(|n| hex(&dir.join(n), "bInterfaceClass"))
}

/// The USB-IF base class codes.
pub fn class_name(class: u32) -> &'static str {
    match class {
        0x00 => "per-interface",
        0x01 => "audio",
        0x02 => "communications",
        0x03 => "HID",
        0x05 => "physical",
        0x06 => "image",
        0x07 => "printer",
        0x08 => "mass storage",
        0x09 => "hub",
        0x0a => "CDC data",
        0x0b => "smart card",
        0x0d => "content security",
        0x0e => "video",
        0x0f => "personal healthcare",
        0x10 => "audio/video",
        0x11 => "billboard",
        0x12 => "USB-C bridge",
        0xdc => "diagnostic",
        0xe0 => "wireless controller",
        0xef => "miscellaneous",
        0xfe => "application specific",
        0xff => "vendor specific",
        _ => "unknown",
    }
}
