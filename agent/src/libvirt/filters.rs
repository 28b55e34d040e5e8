//! nwfilters: the rules libvirt applies to a domain's NICs (see crate::network::filter).

use super::{Libvirt, LibvirtError};
use std::time::Duration;

impl Libvirt {
    /// Defines (or redefines) the nwfilter `xml`; libvirt keeps it across restarts.
    pub async fn define_nwfilter(
        &self,
        xml: String,
        deadline: Duration,
    ) -> Result<(), LibvirtError> {
        self.call(deadline, move |c| c.define_nwfilter_xml(&xml).map(drop))
            .await
    }
}
