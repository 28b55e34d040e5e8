//! nwfilters: the rules libvirt applies to a domain's NICs (see crate::network::filter).

use super::{Libvirt, LibvirtError};
use std::time::Duration;

impl Libvirt {
    /// Defines the nwfilter `name` as `xml` (a `<filter name=...>` without a UUID), or
    /// redefines it under the UUID it has: libvirt refuses a second filter of one name, and
    /// keeps them across restarts.
    pub async fn define_nwfilter(
        &self,
        name: &'static str,
        xml: String,
        deadline: Duration,
    ) -> Result<(), LibvirtError> {
        self.call(deadline, move |c| {
            let xml = match c.lookup_nwfilter_by_name(name) {
                Ok(existing) => with_uuid(&xml, &existing.uuid_string()?),
                Err(_) => xml,
            };
            c.define_nwfilter_xml(&xml).map(drop)
        })
        .await
    }
}

/// `xml` with `<uuid>` as the first child of its root element.
fn with_uuid(xml: &str, uuid: &str) -> String {
    match xml.find('>') {
        Some(end) => format!("{}\n  <uuid>{uuid}</uuid>{}", &xml[..=end], &xml[end + 1..]),
        None => xml.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_uuid_goes_first_inside_the_filter() {
        assert_eq!(
            super::with_uuid(
                "<filter name='f' chain='root'>\n  <rule/>\n</filter>\n",
                "u-1"
            ),
            "<filter name='f' chain='root'>\n  <uuid>u-1</uuid>\n  <rule/>\n</filter>\n"
        );
    }
}
