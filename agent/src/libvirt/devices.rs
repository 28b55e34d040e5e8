//! Host devices in libvirt: `<hostdev>` attached to and detached from a domain (live when it
//! runs, and in its persistent definition), which domains name a device, and persistent mdev
//! node devices (defined through ffi.rs, started at boot by libvirt and mdevctl).

use super::{Libvirt, LibvirtError, ffi};
use std::ffi::CString;
use std::time::Duration;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::sys;

impl Libvirt {
    /// Adds `xml` (a `<hostdev>`) to the domain: to the running guest when it runs, and to
    /// its definition either way.
    pub async fn attach_device(
        &self,
        domain: &str,
        xml: String,
        deadline: Duration,
    ) -> Result<(), LibvirtError> {
        self.with_domain(domain, deadline, move |dom| {
            dom.attach_device_flags(&xml, affect(dom)?)
        })
        .await
    }

    /// Removes `xml` from the domain, live and from its definition. A device the definition
    /// no longer holds is already detached.
    pub async fn detach_device(
        &self,
        domain: &str,
        xml: String,
        deadline: Duration,
    ) -> Result<(), LibvirtError> {
        self.with_domain(domain, deadline, move |dom| {
            match dom.detach_device_flags(&xml, affect(dom)?) {
                // libvirt says "device not found" as either, depending on the driver.
                Err(e)
                    if e.code().is(ErrorNumber::DeviceMissing)
                        || (e.code().is(ErrorNumber::OperationFailed)
                            && e.message().contains("not found")) =>
                {
                    Ok(())
                }
                other => other,
            }
        })
        .await
    }

    /// The domain's XML: its persistent definition when `inactive`, else what runs.
    pub async fn domain_xml(
        &self,
        domain: &str,
        inactive: bool,
        deadline: Duration,
    ) -> Result<String, LibvirtError> {
        let name = domain.to_string();
        self.call(deadline, move |c| {
            let dom = c.lookup_domain_by_name(&name)?;
            let flags = if inactive {
                sys::VIR_DOMAIN_XML_INACTIVE
            } else {
                0
            };
            dom.xml_desc(flags)
        })
        .await
    }

    /// The domains whose definition or running XML contains one of `needles` (a device's
    /// UUID or address as libvirt writes it), as (domain, needle).
    pub async fn domains_naming(
        &self,
        needles: Vec<String>,
        deadline: Duration,
    ) -> Result<Vec<(String, String)>, LibvirtError> {
        self.call(deadline, move |c| {
            let mut found = Vec::new();
            for dom in c.list_all_domains(0)? {
                let name = dom.name()?;
                let mut text = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)?;
                if dom.is_active()? {
                    text.push_str(&dom.xml_desc(0)?);
                }
                for n in needles.iter().filter(|n| text.contains(n.as_str())) {
                    found.push((name.clone(), n.clone()));
                }
            }
            Ok(found)
        })
        .await
    }

    /// Defines the mdev `uuid` of `type_id` on the PCI device `parent` (`0000:41:00.0`) as a
    /// persistent node device that starts at boot; answers libvirt's name for it.
    pub async fn define_mdev(
        &self,
        parent: &str,
        type_id: &str,
        uuid: &str,
        deadline: Duration,
    ) -> Result<String, LibvirtError> {
        let xml = mdev_xml(parent, type_id, uuid);
        let xml = CString::new(xml)
            .map_err(|_| LibvirtError::Invalid("node device XML holds a NUL".into()))?;
        self.call(deadline, move |c| {
            let dev = ffi::define_node_device(c, &xml)?;
            ffi::set_node_device_autostart(&dev, true)?;
            dev.name()
        })
        .await
    }

    /// Forgets the persistent definitions of the mdev `uuid`; `false` when libvirt had none.
    pub async fn undefine_mdev(
        &self,
        uuid: &str,
        deadline: Duration,
    ) -> Result<bool, LibvirtError> {
        let uuid = uuid.to_string();
        self.call(deadline, move |c| {
            let mut any = false;
            for dev in c.list_all_node_devices(sys::VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV)? {
                if dev.xml_desc(0)?.contains(&uuid) {
                    ffi::undefine_node_device(&dev)?;
                    any = true;
                }
            }
            Ok(any)
        })
        .await
    }
}

/// Live and persistent when the domain runs; persistent only when it is off.
fn affect(dom: &Domain) -> Result<u32, virt::error::Error> {
    Ok(if dom.is_active()? {
        sys::VIR_DOMAIN_AFFECT_LIVE | sys::VIR_DOMAIN_AFFECT_CONFIG
    } else {
        sys::VIR_DOMAIN_AFFECT_CONFIG
    })
}

/// libvirt's node device XML for an mdev. The parent is named the way libvirt names PCI
/// devices (`pci_0000_41_00_0`).
pub fn mdev_xml(parent: &str, type_id: &str, uuid: &str) -> String {
    let parent = format!("pci_{}", parent.replace([':', '.'], "_"));
    format!(
        "<device>\n  <parent>{parent}</parent>\n  <capability type='mdev'>\n    <type id='{type_id}'/>\n    <uuid>{uuid}</uuid>\n  </capability>\n</device>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FFI wrapper's failure path: libvirt's test driver defines no node devices, and
    /// says so as an error (a real libvirtd needs mdevctl and a real parent).
    #[tokio::test]
    async fn node_device_define_fails_as_an_error() {
        let lv = Libvirt::new("test:///default");
        let err = lv
            .define_mdev(
                "0000:41:00.0",
                "nvidia-46",
                "3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11",
                Duration::from_secs(10),
            )
            .await
            .expect_err("the test driver has no virNodeDeviceDefineXML");
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn mdev_node_device_xml() {
        let xml = mdev_xml(
            "0000:41:00.0",
            "nvidia-46",
            "3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11",
        );
        assert!(xml.contains("<parent>pci_0000_41_00_0</parent>"), "{xml}");
        assert!(xml.contains("<type id='nvidia-46'/>"), "{xml}");
        assert!(
            xml.contains("<uuid>3b5b4a1e-7e0c-4b8a-9c1d-2f6a8e9d0a11</uuid>"),
            "{xml}"
        );
    }
}
