//! What the rest of the agent asks of the host's network: the NICs segments may name (facts),
//! the bridges and filters a domain's NICs need before it is defined (made on first need and
//! kept), and the removal of unused bridges whose uplink no segment names any more.

use super::bridges::{self, BridgeError, Uplink};
use super::dhcp::{Dhcp, DhcpError};
use super::filter;
use crate::instances::domain_xml::DomainNic;
use crate::libvirt::Libvirt;
use futures_util::TryStreamExt;
use plinth_common::api::AgentNic;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};
use tracing::{info, warn};

const LIBVIRT_CALL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("this host has no NIC {0}, which the instance's EIP segment is reached through")]
    NoNic(String),
    #[error(
        "NIC {0} carries the host's own addresses; plinth bridges only a NIC (or VLAN) for guests alone"
    )]
    HostNic(String),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("defining the guest NIC filters")]
    Filter(#[source] crate::libvirt::LibvirtError),
    #[error("the EIP {0} is not an IP address")]
    Address(String),
    #[error("reading the host's links: {0}")]
    List(String),
    #[error(transparent)]
    Dhcp(#[from] DhcpError),
}

pub struct Network {
    libvirt: Libvirt,
    handle: OnceCell<Handle>,
    /// Every segment's uplink, as the coordinator last said (heartbeat): how a bridge a
    /// domain names is made again after the host rebooted.
    uplinks: std::sync::Mutex<Vec<Uplink>>,
    /// `ensure`, `remove_if_unused` and defining domains on a bridge take turns (bridges.rs).
    turn: Mutex<()>,
    dhcp: Dhcp,
}

impl Network {
    /// DHCP servers keep their files under `data_dir`.
    pub fn new(libvirt: Libvirt, data_dir: &std::path::Path) -> Network {
        Network {
            libvirt,
            handle: OnceCell::new(),
            uplinks: std::sync::Mutex::new(Vec::new()),
            turn: Mutex::new(()),
            dhcp: Dhcp::new(data_dir),
        }
    }

    async fn handle(&self) -> Result<&Handle, NetworkError> {
        Ok(self.handle.get_or_try_init(bridges::connect).await?)
    }

    /// The host's NICs a segment may name: every link but loopback, guests' taps and the
    /// bridges and VLAN subinterfaces plinth made (their alias says so).
    pub async fn nics(&self) -> Result<Vec<String>, NetworkError> {
        let links: Vec<LinkMessage> = self
            .handle()
            .await?
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetworkError::List(e.to_string()))?;
        let mut nics = Vec::new();
        for link in links {
            let mut name = None;
            let mut skip = link.header.flags.contains(LinkFlags::Loopback);
            for attribute in link.attributes {
                match attribute {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::IfAlias(alias) if alias.starts_with("plinth ") => skip = true,
                    LinkAttribute::LinkInfo(infos) => {
                        skip |= infos
                            .iter()
                            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun)));
                    }
                    _ => {}
                }
            }
            if let (Some(name), false) = (name, skip) {
                nics.push(name);
            }
        }
        nics.sort();
        Ok(nics)
    }

    /// Whether `nic` holds an IPv4 address or a global IPv6 one: the host's own network runs
    /// on it, and bridging it would cut the host off.
    async fn has_addresses(&self, nic: &str) -> Result<bool, NetworkError> {
        let handle = self.handle().await?;
        let mut links = handle.link().get().match_name(nic.to_string()).execute();
        let Ok(Some(link)) = links.try_next().await else {
            return Ok(false);
        };
        let addresses: Vec<AddressMessage> = handle
            .address()
            .get()
            .set_link_index_filter(link.header.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetworkError::List(e.to_string()))?;
        Ok(addresses.iter().any(|a| {
            a.header.family == AddressFamily::Inet
                || (a.header.family == AddressFamily::Inet6
                    && a.header.scope == AddressScope::Universe)
        }))
    }

    /// Makes what `nics` need (their uplinks' bridges, the filters) and answers them as the
    /// domain XML names them. Holds the bridges' turn until the returned guard is dropped, so
    /// the caller defines its domain before an unused bridge can be removed under it.
    pub async fn prepare(
        &self,
        nics: &[AgentNic],
    ) -> Result<(Vec<DomainNic>, tokio::sync::MutexGuard<'_, ()>), NetworkError> {
        let turn = self.turn.lock().await;
        if nics.is_empty() {
            return Ok((Vec::new(), turn));
        }
        for (name, xml) in filter::definitions() {
            self.libvirt
                .define_nwfilter(name, xml, LIBVIRT_CALL)
                .await
                .map_err(NetworkError::Filter)?;
            tracing::debug!(filter = name, "Guest NIC filter defined.");
        }
        let handle = self.handle().await?;
        let mut out = Vec::new();
        for nic in nics {
            let uplink = Uplink {
                nic: nic.uplink.nic.clone(),
                vlan: nic.uplink.vlan,
            };
            if uplink.vlan.is_none() && self.has_addresses(&uplink.nic).await? {
                return Err(NetworkError::HostNic(uplink.nic));
            }
            let bridge = bridges::ensure(handle, &uplink)
                .await?
                .ok_or_else(|| NetworkError::NoNic(uplink.nic.clone()))?;
            self.dhcp.serve(&bridge.name, &[nic]).await?;
            out.push(DomainNic {
                mac: nic.mac.clone(),
                bridge: bridge.name,
                address: nic
                    .address
                    .parse()
                    .map_err(|_| NetworkError::Address(nic.address.clone()))?,
            });
        }
        Ok((out, turn))
    }

    /// Makes again the bridges named `names` that are gone (the host rebooted), from the
    /// uplinks the coordinator last named; a name of no known uplink is left to libvirt, which
    /// says what is missing when it starts the domain.
    pub async fn ensure_named(
        &self,
        names: &[String],
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, NetworkError> {
        let turn = self.turn.lock().await;
        if names.is_empty() {
            return Ok(turn);
        }
        let known: Vec<Uplink> = self
            .uplinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|u| names.contains(&u.bridge_name()))
            .cloned()
            .collect();
        let handle = self.handle().await?;
        for uplink in known {
            bridges::ensure(handle, &uplink).await?;
        }
        Ok(turn)
    }

    /// `nics` as the domain XML names them, on a host without a network (libvirt's test
    /// driver): nothing is made.
    pub fn simulated(&self, nics: &[AgentNic]) -> Result<Vec<DomainNic>, NetworkError> {
        nics.iter()
            .map(|nic| {
                Ok(DomainNic {
                    mac: nic.mac.clone(),
                    bridge: Uplink {
                        nic: nic.uplink.nic.clone(),
                        vlan: nic.uplink.vlan,
                    }
                    .bridge_name(),
                    address: nic
                        .address
                        .parse()
                        .map_err(|_| NetworkError::Address(nic.address.clone()))?,
                })
            })
            .collect()
    }

    /// Stops answering DHCP for `macs` (NICs taken off, instances deleted).
    pub async fn forget(&self, macs: &[String]) {
        self.dhcp.forget(macs).await;
    }

    /// Serves DHCP for `leases` (every NIC of the instances on or coming to this host, as the
    /// coordinator says) and no other; removes the bridges plinth made whose uplink is not in
    /// `keep` (no segment names it any more) and that no guest is on.
    pub async fn tidy(
        &self,
        keep: &[plinth_common::api::Uplink],
        leases: &[AgentNic],
    ) -> Result<(), NetworkError> {
        let _turn = self.turn.lock().await;
        let handle = self.handle().await?;
        let existing: std::collections::BTreeSet<String> = bridges::plinth_bridges(handle)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let wanted: Vec<(String, AgentNic)> = leases
            .iter()
            .map(|nic| {
                let uplink = Uplink {
                    nic: nic.uplink.nic.clone(),
                    vlan: nic.uplink.vlan,
                };
                (uplink.bridge_name(), nic.clone())
            })
            .collect();
        self.dhcp.reconcile(&wanted, &existing).await;
        *self.uplinks.lock().unwrap_or_else(|p| p.into_inner()) = keep
            .iter()
            .map(|k| Uplink {
                nic: k.nic.clone(),
                vlan: k.vlan,
            })
            .collect();
        for (name, uplink) in bridges::plinth_bridges(handle).await? {
            let kept = keep
                .iter()
                .any(|k| k.nic == uplink.nic && k.vlan == uplink.vlan);
            if kept {
                continue;
            }
            match bridges::remove_if_unused(handle, &uplink).await {
                Ok(true) => {
                    info!(bridge = %name, uplink = %uplink, "Bridge of a removed segment removed.")
                }
                Ok(false) => {}
                Err(err) => {
                    warn!(bridge = %name, error = %err, "Could not remove an unused bridge.")
                }
            }
        }
        Ok(())
    }
}
