//! The NICs of bound EIPs: the MAC a new one gets, and the addresses (with what a guest's network
//! needs of each) of the instances a read is about.

use crate::db::{Store, StoreError};
use crate::network::store::segments;
use crate::network::validate::version;
use plinth_common::api::InstanceAddress;
use rand::Rng;
use std::collections::HashMap;

/// Which instances' EIPs a read is about.
#[derive(Debug, Clone, Copy)]
pub enum InstancesOf<'a> {
    Host(&'a str),
    /// Those on the host and those migrating to it.
    Served(&'a str),
    Instance(&'a str),
}

impl InstancesOf<'_> {
    /// The condition on `eips e` and the value of its `$1`.
    fn filter(&self) -> (&'static str, &str) {
        match *self {
            InstancesOf::Host(host) => (
                "e.instance_id IN (SELECT id FROM instances WHERE host_id = $1)",
                host,
            ),
            InstancesOf::Served(host) => (
                "e.instance_id IN (SELECT id FROM instances WHERE host_id = $1 OR migrating_to = $1)",
                host,
            ),
            InstancesOf::Instance(id) => ("e.instance_id = $1", id),
        }
    }
}

/// A MAC for a new NIC: QEMU's locally administered prefix 52:54:00 and 24 random bits; the
/// UNIQUE index on `eips.mac` refuses a repeat (one in 16 million per pair of NICs), so two
/// NICs never share one.
pub fn new_mac() -> String {
    let [a, b, c]: [u8; 3] = rand::thread_rng().r#gen();
    format!("52:54:00:{a:02x}:{b:02x}:{c:02x}")
}

impl Store {
    /// The EIPs bound to an instance with what its network needs of each: the segment's
    /// prefix, gateway, NIC, VLAN and routes. IPv4 first.
    pub async fn instance_addresses(
        &self,
        instance_id: &str,
    ) -> Result<Vec<InstanceAddress>, StoreError> {
        self.addresses(InstancesOf::Instance(instance_id)).await
    }

    /// The addresses of the instances on or migrating to `host` that have a NIC (a MAC).
    pub async fn served_addresses(&self, host: &str) -> Result<Vec<InstanceAddress>, StoreError> {
        let mut all = self.addresses(InstancesOf::Served(host)).await?;
        all.retain(|a| a.mac.is_some());
        Ok(all)
    }

    async fn addresses(&self, of: InstancesOf<'_>) -> Result<Vec<InstanceAddress>, StoreError> {
        let (filter, value) = of.filter();
        let rows = crate::db::query(&format!(
            "SELECT e.id AS eip_id, e.address, e.mac, {} FROM eips e \
             JOIN segments s ON s.id = e.segment_id \
             WHERE {filter} ORDER BY s.ip_version, e.address_key",
            segments::COLUMNS
        ))
        .bind(value)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let segment = segments::record(r)?;
                Ok(InstanceAddress {
                    eip_id: r.try_get("eip_id")?,
                    address: r.try_get("address")?,
                    mac: r.try_get("mac")?,
                    ip_version: version(&segment.spec.net),
                    prefix_len: segment.spec.net.prefix_len(),
                    routes: segment.routes(),
                    segment_id: segment.id,
                    gateway: segment.spec.gateway.to_string(),
                    nic: segment.spec.nic,
                    vlan: segment.spec.vlan,
                    route_policy: segment.spec.route_policy,
                })
            })
            .collect()
    }

    /// The NICs of the segments of the EIPs bound to each instance on `host` (or to the one
    /// instance `instance`): a host must have them to run the instance.
    pub async fn instance_nics(
        &self,
        on: InstancesOf<'_>,
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let (filter, value) = on.filter();
        let rows = crate::db::query(&format!(
            "SELECT DISTINCT e.instance_id, s.nic FROM eips e \
             JOIN segments s ON s.id = e.segment_id WHERE {filter} ORDER BY s.nic"
        ))
        .bind(value)
        .fetch_all(self.pool())
        .await?;
        let mut nics: HashMap<String, Vec<String>> = HashMap::new();
        for r in &rows {
            nics.entry(r.try_get("instance_id")?)
                .or_default()
                .push(r.try_get("nic")?);
        }
        Ok(nics)
    }
}
