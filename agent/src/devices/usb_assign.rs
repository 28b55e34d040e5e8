//! USB devices handed to instances: a `<hostdev>` attached to the instance's domain (live when
//! it runs, and in its definition), recorded before libvirt is asked so that a crash between
//! the two is undone by a release, and detached on release with the very XML attached.

use super::hostdev::{self, is_usb_hex, is_usb_id};
use super::records::Attachment;
use super::{DeviceError, Devices, LIBVIRT_CALL, usb};
use plinth_common::api::UsbDevice;
use plinth_common::instance::domain_name;
use tracing::info;

/// An instance id as the agent names domains: 1-64 of `A-Z a-z 0-9 . _ -`.
fn check_instance(id: &str) -> Result<(), DeviceError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(DeviceError::Invalid(format!(
            "instance_id '{id}' is not an instance id"
        )))
    }
}

fn check_device(id: &str) -> Result<(), DeviceError> {
    if is_usb_id(id) {
        Ok(())
    } else {
        Err(DeviceError::Invalid(format!(
            "'{id}' is not a USB device id (bus-port, like 1-2 or 3-1.4)"
        )))
    }
}

impl Devices {
    fn usb_device(&self, id: &str) -> Result<UsbDevice, DeviceError> {
        usb::inventory(&self.sysfs)
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| DeviceError::NotFound {
                kind: "USB device",
                id: id.to_string(),
            })
    }

    /// Attaches USB device `id` to `instance`'s domain. Attaching it again to the same
    /// instance answers it as it is; to another is a conflict.
    pub async fn attach_usb(&self, id: &str, instance: &str) -> Result<UsbDevice, DeviceError> {
        check_device(id)?;
        check_instance(instance)?;
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let key = format!("usb:{id}");
        if let Some(a) = records.attached_to(&key) {
            if a.instance_id == instance {
                return self.described_usb(id).await;
            }
            return Err(DeviceError::Conflict(format!(
                "USB device {id} is assigned to instance {}",
                a.instance_id
            )));
        }
        let dev = self.usb_device(id)?;
        let (vendor, product) = dev.usb_id.split_once(':').unwrap_or_default();
        if !is_usb_hex(vendor) || !is_usb_hex(product) {
            return Err(DeviceError::Kernel(format!(
                "USB device {id} reports ids '{}', not vendor:product in hex",
                dev.usb_id
            )));
        }
        let xml = hostdev::usb(vendor, product, dev.bus, dev.devnum);
        records.attachments.push(Attachment {
            device: key.clone(),
            instance_id: instance.to_string(),
            xml: xml.clone(),
        });
        self.save(&records)?;
        if let Err(e) = self
            .libvirt
            .attach_device(domain_name(instance), xml, LIBVIRT_CALL)
            .await
        {
            records.attachments.retain(|a| a.device != key);
            self.save(&records)?;
            if e.is_no_domain() {
                return Err(DeviceError::NotFound {
                    kind: "instance",
                    id: instance.to_string(),
                });
            }
            return Err(DeviceError::libvirt(format!(
                "attaching USB device {id} to instance {instance}"
            ))(e));
        }
        info!(device = %id, instance = %instance, "USB device attached.");
        self.described_usb(id).await
    }

    /// Detaches USB device `id` from `instance`. A device attached to no instance is
    /// released already; one attached to another instance is a conflict.
    pub async fn detach_usb(&self, id: &str, instance: &str) -> Result<UsbDevice, DeviceError> {
        check_device(id)?;
        check_instance(instance)?;
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let key = format!("usb:{id}");
        let Some(a) = records.attached_to(&key).cloned() else {
            return self.described_usb(id).await;
        };
        if a.instance_id != instance {
            return Err(DeviceError::Conflict(format!(
                "USB device {id} is assigned to instance {}, not {instance}",
                a.instance_id
            )));
        }
        match self
            .libvirt
            .detach_device(domain_name(instance), a.xml.clone(), LIBVIRT_CALL)
            .await
        {
            Err(e) if !e.is_no_domain() => {
                return Err(DeviceError::libvirt(format!(
                    "detaching USB device {id} from instance {instance}"
                ))(e));
            }
            _ => {}
        }
        records.attachments.retain(|x| x.device != key);
        self.save(&records)?;
        info!(device = %id, instance = %instance, "USB device detached.");
        self.described_usb(id).await
    }

    /// Forgets what was attached to a deleted instance (its domain is gone, and with it the
    /// devices): they are free again.
    pub async fn forget_instance(&self, instance: &str) -> Result<(), DeviceError> {
        let _turn = self.turn.lock().await;
        let mut records = self.load()?;
        let before = records.attachments.len();
        records.attachments.retain(|a| a.instance_id != instance);
        if records.attachments.len() != before {
            self.save(&records)?;
        }
        Ok(())
    }

    /// The device as the inventory shows it now; a device unplugged meanwhile is not found.
    async fn described_usb(&self, id: &str) -> Result<UsbDevice, DeviceError> {
        self.read_inventory()
            .await?
            .usb
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| DeviceError::NotFound {
                kind: "USB device",
                id: id.to_string(),
            })
    }
}
