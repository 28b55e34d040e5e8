//! The host side of external segments: one Linux bridge per uplink (a host NIC, optionally
//! with an 802.1Q tag), made, repaired and removed over netlink; guests' taps join the bridge.
//! Bridges live in the kernel, so after an agent restart everything is found, not remade.
//!
//! Names (the kernel allows 15 bytes, IFNAMSIZ - 1):
//! - bridge: `pl-<nic>` untagged, `pl-<nic>.<vlan>` tagged, when it fits; otherwise `plb` and
//!   the first 8 hex digits of the SHA-256 of the bridge's marker. An untagged NIC whose own
//!   name ends in `.<digits>` (`eth0.5`, an admin's VLAN used as a NIC) is hashed too, or it
//!   would take the name of `eth0` tagged 5. `pl-` and `plb` names cannot meet.
//! - VLAN subinterface: `<nic>.<vlan>` (the usual name, as iproute2 and ifupdown make it) when
//!   it fits, else `plv` and 8 hex digits of the SHA-256 of `<nic>.<vlan>`.
//!
//! Marker: the interface alias (IFLA_IFALIAS, what `ip link set DEV alias` sets), which the
//! kernel keeps with the device: `plinth uplink <nic>` or `plinth uplink <nic> vlan <id>` on the
//! bridge, `plinth port <nic> vlan <id>` on a VLAN subinterface plinth made. Words, not
//! `<nic>.<vlan>`, because a NIC's name may hold dots but never whitespace: the alias reads
//! back as exactly one uplink. The kernel ignores an alias in the message that creates a
//! link, so it is set right after; a bridge of plinth's name found without one (the agent
//! stopped in between) is adopted and marked. Only what carries the marker is ever deleted: a
//! VLAN subinterface that was there before plinth is used and left in place.
//!
//! Callers serialise `ensure`, `remove_if_unused` and adding taps for one uplink: a tap added
//! between `remove_if_unused`'s look at the ports and its delete would lose its bridge.

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVlan};
use sha2::{Digest, Sha256};
use std::fmt;
use tracing::{info, warn};

/// The longest interface name the kernel takes (IFNAMSIZ less the NUL).
const MAX_NAME: usize = 15;

/// What an external segment is reached through on this host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uplink {
    /// The host NIC (`bond1`, `eth1`).
    pub nic: String,
    /// The 802.1Q tag, 1-4094; `None`: untagged.
    pub vlan: Option<u16>,
}

/// A bridge as `ensure` left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    /// The interface enslaved to it: the NIC, or its VLAN subinterface.
    pub uplink: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("uplink {uplink}: {reason}")]
    Invalid {
        uplink: String,
        reason: &'static str,
    },
    #[error("opening a netlink socket")]
    Connect(#[source] std::io::Error),
    #[error("{step} {name}")]
    Netlink {
        step: &'static str,
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{name} exists and is {found}, not what plinth makes for uplink {uplink}")]
    NotOurs {
        name: String,
        found: String,
        uplink: String,
    },
    #[error("{port} is a port of {controller} already")]
    PortTaken { port: String, controller: String },
    #[error("{0} disappeared while plinth was setting it up")]
    Vanished(String),
}

impl fmt::Display for Uplink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vlan {
            None => write!(f, "{}", self.nic),
            Some(id) => write!(f, "{} vlan {id}", self.nic),
        }
    }
}

impl Uplink {
    pub fn untagged(nic: &str) -> Uplink {
        Uplink {
            nic: nic.to_string(),
            vlan: None,
        }
    }

    pub fn tagged(nic: &str, vlan: u16) -> Uplink {
        Uplink {
            nic: nic.to_string(),
            vlan: Some(vlan),
        }
    }

    /// The bridge's name (see the module's head).
    pub fn bridge_name(&self) -> String {
        let readable = match self.vlan {
            None if !ends_in_dot_digits(&self.nic) => Some(format!("pl-{}", self.nic)),
            None => None,
            Some(id) => Some(format!("pl-{}.{id}", self.nic)),
        };
        match readable {
            Some(name) if name.len() <= MAX_NAME => name,
            _ => hashed("plb", &self.marker()),
        }
    }

    /// The VLAN subinterface's name; `None` untagged.
    pub fn vlan_name(&self) -> Option<String> {
        let id = self.vlan?;
        let usual = format!("{}.{id}", self.nic);
        Some(if usual.len() <= MAX_NAME {
            usual
        } else {
            hashed("plv", &usual)
        })
    }

    /// The interface enslaved to the bridge.
    fn port_name(&self) -> String {
        self.vlan_name().unwrap_or_else(|| self.nic.clone())
    }

    /// The bridge's alias.
    fn marker(&self) -> String {
        format!("plinth uplink {self}")
    }

    /// The alias of a VLAN subinterface plinth made.
    fn vlan_marker(&self) -> String {
        format!("plinth port {self}")
    }

    /// The uplink a bridge's alias names; `None` for an alias plinth does not write.
    fn from_marker(alias: &str) -> Option<Uplink> {
        let words: Vec<&str> = alias.split(' ').collect();
        let uplink = match words.as_slice() {
            ["plinth", "uplink", nic] => Uplink::untagged(nic),
            ["plinth", "uplink", nic, "vlan", id] => Uplink::tagged(nic, id.parse().ok()?),
            _ => return None,
        };
        // Only the exact text `marker` writes: "vlan 0100" is someone else's alias.
        (uplink.check().is_ok() && uplink.marker() == alias).then_some(uplink)
    }

    fn check(&self) -> Result<(), BridgeError> {
        let invalid = |reason| {
            Err(BridgeError::Invalid {
                uplink: self.to_string(),
                reason,
            })
        };
        let nic = self.nic.as_str();
        // The kernel's dev_valid_name.
        if nic.is_empty() || nic.len() > MAX_NAME {
            return invalid("a NIC's name has 1 to 15 bytes");
        }
        if nic == "."
            || nic == ".."
            || nic
                .chars()
                .any(|c| matches!(c, '/' | ':' | '\0') || c.is_whitespace())
        {
            return invalid("a NIC's name holds no '/', ':' or whitespace and is not . or ..");
        }
        if self.vlan.is_some_and(|id| !(1..=4094).contains(&id)) {
            return invalid("a VLAN tag is 1 to 4094");
        }
        Ok(())
    }
}

fn ends_in_dot_digits(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, tail)| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()))
}

fn hashed(prefix: &str, text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("{prefix}{}", hex::encode(&digest[..4]))
}

/// A netlink handle on this host's (this thread's) network namespace, its connection
/// running as a task of the current tokio runtime.
pub async fn connect() -> Result<Handle, BridgeError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(BridgeError::Connect)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Makes (or repairs) the bridge of `uplink`: the VLAN subinterface if tagged, the bridge,
/// the uplink enslaved to it, all up. `Ok(None)` when this host has no such NIC: nothing is
/// made. Asking again changes nothing and answers the same.
pub async fn ensure(handle: &Handle, uplink: &Uplink) -> Result<Option<Bridge>, BridgeError> {
    uplink.check()?;
    let Some(nic) = get(handle, &uplink.nic).await? else {
        return Ok(None);
    };
    let bridge_name = uplink.bridge_name();
    let port = match uplink.vlan {
        None => nic.clone(),
        Some(id) => ensure_vlan(handle, uplink, &nic, id).await?,
    };
    // Before making the bridge, so that a refusal leaves nothing behind.
    if let Some(controller) = port.controller {
        let controller = name_of(handle, controller).await?;
        if controller != bridge_name {
            return Err(BridgeError::PortTaken {
                port: port.name,
                controller,
            });
        }
    }
    let bridge = ensure_bridge(handle, uplink, &bridge_name).await?;
    if port.controller != Some(bridge.index) {
        let message = LinkUnspec::new_with_index(port.index)
            .controller(bridge.index)
            .build();
        set(handle, message, "enslaving", &port.name).await?;
        info!(bridge = %bridge.name, port = %port.name, "Uplink enslaved to its bridge.");
    }
    // Isolated, as the DHCP servers' ports are (dhcp.rs): what those servers say (their router
    // advertisements above all) reaches this host's guests only, never the VLAN.
    let message = LinkBridgePort::new(port.index)
        .append_info_data(InfoBridgePort::Isolated(true))
        .build();
    let isolated = handle.link().set_port(message).execute().await;
    isolated.map_err(netlink("isolating", &port.name))?;
    if uplink.vlan.is_some() {
        // A VLAN subinterface refuses to come up (ENETDOWN) while its NIC is down.
        up(handle, &nic).await?;
    }
    up(handle, &port).await?;
    up(handle, &bridge).await?;
    Ok(Some(Bridge {
        name: bridge.name,
        uplink: port.name,
    }))
}

/// Deletes the bridge of `uplink`, and the VLAN subinterface if plinth made it, unless a port
/// other than the uplink (a guest's tap) is on it: then `Ok(false)` and nothing changes.
/// `Ok(true)` when nothing of it is left, whether it was there or not. The NIC stays.
pub async fn remove_if_unused(handle: &Handle, uplink: &Uplink) -> Result<bool, BridgeError> {
    uplink.check()?;
    let name = uplink.bridge_name();
    if let Some(bridge) = get(handle, &name).await? {
        if bridge.kind != Some(InfoKind::Bridge) || bridge.alias != Some(uplink.marker()) {
            return Err(not_ours(&bridge, uplink));
        }
        let port = uplink.port_name();
        let guests: Vec<String> = all(handle)
            .await?
            .into_iter()
            .filter(|l| l.controller == Some(bridge.index) && l.name != port)
            .map(|l| l.name)
            .collect();
        if !guests.is_empty() {
            info!(bridge = %name, ports = ?guests, "Bridge kept: other ports are on it.");
            return Ok(false);
        }
        del(handle, &bridge).await?;
        info!(bridge = %name, "Bridge removed.");
    }
    // Also when there was no bridge: the agent may have stopped between the two.
    if let Some(vlan_name) = uplink.vlan_name()
        && let Some(vlan) = get(handle, &vlan_name).await?
        && vlan.alias == Some(uplink.vlan_marker())
        && vlan.controller.is_none()
    {
        del(handle, &vlan).await?;
        info!(vlan = %vlan_name, "VLAN subinterface removed.");
    }
    Ok(true)
}

/// The bridges on this host that plinth made, by name, with their uplinks.
pub async fn plinth_bridges(handle: &Handle) -> Result<Vec<(String, Uplink)>, BridgeError> {
    let mut out = Vec::new();
    for link in all(handle).await? {
        if link.kind != Some(InfoKind::Bridge) {
            continue;
        }
        let Some(uplink) = link.alias.as_deref().and_then(Uplink::from_marker) else {
            continue;
        };
        // Renamed by hand: `remove_if_unused` would not find it under its uplink's name.
        if uplink.bridge_name() != link.name {
            warn!(bridge = %link.name, uplink = %uplink, "Bridge marked by plinth under another name; ignored.");
            continue;
        }
        out.push((link.name, uplink));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

async fn ensure_vlan(
    handle: &Handle,
    uplink: &Uplink,
    nic: &Link,
    id: u16,
) -> Result<Link, BridgeError> {
    let name = uplink.port_name();
    let message = LinkVlan::new(&name, nic.index, id).build();
    let (vlan, made) = get_or_make(handle, &name, message, "making the VLAN subinterface").await?;
    let wrong = match (&vlan.kind, vlan.vlan_id) {
        (Some(InfoKind::Vlan), Some(got)) if got != id => Some(format!("VLAN {got}")),
        (Some(InfoKind::Vlan), Some(_)) if vlan.parent != Some(nic.index) => {
            Some(format!("VLAN {id} of another NIC"))
        }
        (Some(InfoKind::Vlan), Some(_)) => None,
        _ => Some(describe(&vlan)),
    };
    if let Some(found) = wrong {
        return Err(BridgeError::NotOurs {
            name,
            found,
            uplink: uplink.to_string(),
        });
    }
    if made {
        let message = LinkUnspec::new_with_index(vlan.index)
            .alias(uplink.vlan_marker())
            .build();
        set(handle, message, "marking", &name).await?;
        info!(vlan = %name, nic = %nic.name, id, "VLAN subinterface made.");
    }
    Ok(vlan)
}

async fn ensure_bridge(handle: &Handle, uplink: &Uplink, name: &str) -> Result<Link, BridgeError> {
    let message = LinkBridge::new(name).build();
    let (bridge, made) = get_or_make(handle, name, message, "making the bridge").await?;
    if bridge.kind != Some(InfoKind::Bridge) {
        return Err(not_ours(&bridge, uplink));
    }
    let marker = uplink.marker();
    match &bridge.alias {
        Some(alias) if *alias == marker => {}
        Some(_) => return Err(not_ours(&bridge, uplink)),
        None => {
            let message = LinkUnspec::new_with_index(bridge.index)
                .alias(marker)
                .build();
            set(handle, message, "marking", name).await?;
            if made {
                info!(bridge = %name, uplink = %uplink, "Bridge made.");
            } else {
                warn!(bridge = %name, uplink = %uplink, "Bridge of plinth's name had no marker; adopted.");
            }
        }
    }
    Ok(bridge)
}

fn not_ours(link: &Link, uplink: &Uplink) -> BridgeError {
    BridgeError::NotOurs {
        name: link.name.clone(),
        found: describe(link),
        uplink: uplink.to_string(),
    }
}

/// "a veth", "a bridge with alias \"lab\"": what a link plinth will not take is.
fn describe(link: &Link) -> String {
    let kind = link
        .kind
        .as_ref()
        .map_or_else(|| "a link".to_string(), |k| format!("a {k}"));
    match &link.alias {
        Some(alias) => format!("{kind} with alias {alias:?}"),
        None if link.kind == Some(InfoKind::Bridge) => format!("{kind} without plinth's marker"),
        None => kind,
    }
}

/// The link named `name`, made with `message` when missing; whether it was made now.
async fn get_or_make(
    handle: &Handle,
    name: &str,
    message: LinkMessage,
    step: &'static str,
) -> Result<(Link, bool), BridgeError> {
    if let Some(link) = get(handle, name).await? {
        return Ok((link, false));
    }
    let made = match handle.link().add(message).execute().await {
        Ok(()) => true,
        // Made by someone else since the look.
        Err(e) if errno(&e) == Some(libc::EEXIST) => false,
        Err(source) => {
            return Err(BridgeError::Netlink {
                step,
                name: name.to_string(),
                source,
            });
        }
    };
    let link = get(handle, name)
        .await?
        .ok_or_else(|| BridgeError::Vanished(name.to_string()))?;
    Ok((link, made))
}

async fn up(handle: &Handle, link: &Link) -> Result<(), BridgeError> {
    if link.up {
        return Ok(());
    }
    let message = LinkUnspec::new_with_index(link.index).up().build();
    set(handle, message, "setting up", &link.name).await
}

async fn set(
    handle: &Handle,
    message: LinkMessage,
    step: &'static str,
    name: &str,
) -> Result<(), BridgeError> {
    let done = handle.link().set(message).execute().await;
    done.map_err(netlink(step, name))
}

/// A netlink error as the step of `name` it failed.
fn netlink(step: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> BridgeError {
    let name = name.to_string();
    move |source| BridgeError::Netlink { step, name, source }
}

async fn del(handle: &Handle, link: &Link) -> Result<(), BridgeError> {
    handle
        .link()
        .del(link.index)
        .execute()
        .await
        .map_err(|source| BridgeError::Netlink {
            step: "deleting",
            name: link.name.clone(),
            source,
        })
}

/// The link named `name`; `None` when there is none.
async fn get(handle: &Handle, name: &str) -> Result<Option<Link>, BridgeError> {
    let mut answers = handle.link().get().match_name(name).execute();
    match answers.try_next().await {
        Ok(message) => Ok(message.map(Link::from)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(source) => Err(BridgeError::Netlink {
            step: "reading",
            name: name.to_string(),
            source,
        }),
    }
}

async fn all(handle: &Handle) -> Result<Vec<Link>, BridgeError> {
    handle
        .link()
        .get()
        .execute()
        .map_ok(Link::from)
        .try_collect()
        .await
        .map_err(|source| BridgeError::Netlink {
            step: "listing",
            name: "the links".to_string(),
            source,
        })
}

async fn name_of(handle: &Handle, index: u32) -> Result<String, BridgeError> {
    let mut answers = handle.link().get().match_index(index).execute();
    match answers.try_next().await {
        Ok(Some(message)) => Ok(Link::from(message).name),
        // Gone since: name it by its index.
        Ok(None) => Ok(format!("link {index}")),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(format!("link {index}")),
        Err(source) => Err(BridgeError::Netlink {
            step: "reading",
            name: format!("link {index}"),
            source,
        }),
    }
}

/// The errno of a request the kernel refused.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

/// What this module reads of a link.
#[derive(Debug, Clone, Default)]
struct Link {
    index: u32,
    name: String,
    kind: Option<InfoKind>,
    alias: Option<String>,
    /// The bridge (or bond) it is a port of.
    controller: Option<u32>,
    /// Administratively up (IFF_UP); whether it has carrier is the network's business.
    up: bool,
    /// A VLAN subinterface's NIC.
    parent: Option<u32>,
    vlan_id: Option<u16>,
}

impl From<LinkMessage> for Link {
    fn from(message: LinkMessage) -> Link {
        let mut link = Link {
            index: message.header.index,
            up: message.header.flags.contains(LinkFlags::Up),
            ..Link::default()
        };
        for attribute in message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::IfAlias(alias) if !alias.is_empty() => link.alias = Some(alias),
                LinkAttribute::Controller(index) if index != 0 => link.controller = Some(index),
                LinkAttribute::Link(index) => link.parent = Some(index),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind),
                            LinkInfo::Data(InfoData::Vlan(vlan)) => {
                                for item in vlan {
                                    if let InfoVlan::Id(id) = item {
                                        link.vlan_id = Some(id);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The kernel's bridges, each test in a network namespace of its own: a thread unshares
    //! one and runs the test on a runtime of its own, so the host's links are never seen; the
    //! namespace goes with the thread. Needs root (CAP_NET_ADMIN).

    #![allow(clippy::unwrap_used)]

    use super::*;
    use nix::sched::{CloneFlags, unshare};
    use rtnetlink::{LinkDummy, LinkVeth};
    use std::future::Future;

    const SKIP_ENV: &str = "PLINTH_SKIP_REAL_LIBVIRT";

    /// Runs `body` in a fresh network namespace; returns without running it (having said so)
    /// when not root and `PLINTH_SKIP_REAL_LIBVIRT=1`, panics when not root otherwise, so a
    /// CI run that lost its privileges fails instead of passing.
    pub(crate) fn in_netns<F, Fut>(body: F)
    where
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        if !nix::unistd::geteuid().is_root() {
            if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED: bridge tests need root ({SKIP_ENV}=1 is set)");
                return;
            }
            panic!(
                "bridge tests need root (they make links in a network namespace of their own); \
                 run as root, or set {SKIP_ENV}=1 to skip them"
            );
        }
        let thread = std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): needs CAP_NET_ADMIN");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let handle = connect().await.unwrap();
                body(handle).await;
            });
        });
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }

    /// A stand-in for a host NIC: a dummy, or a veth (its peer named `<name>-p`, hashed when
    /// long) on kernels built without the dummy driver.
    /// [`make_nic`], for the tests of other modules.
    pub(crate) async fn make_uplink(handle: &Handle, name: &str) {
        make_nic(handle, name).await;
    }

    async fn make_nic(handle: &Handle, name: &str) -> Link {
        match handle
            .link()
            .add(LinkDummy::new(name).build())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EOPNOTSUPP) => {
                let peer = format!("{name}-p");
                let peer = if peer.len() <= MAX_NAME {
                    peer
                } else {
                    hashed("pee", name)
                };
                add(handle, LinkVeth::new(name, &peer).build()).await;
            }
            Err(e) => panic!("making {name}: {e}"),
        }
        link(handle, name).await
    }

    /// Whether the kernel has 802.1Q (CONFIG_VLAN_8021Q); says SKIPPED when not.
    async fn vlans_supported(handle: &Handle, test: &str) -> bool {
        let nic = make_nic(handle, "probe0").await;
        let made = handle
            .link()
            .add(LinkVlan::new("probe0.1", nic.index, 1).build())
            .execute()
            .await;
        handle.link().del(nic.index).execute().await.unwrap();
        match made {
            Ok(()) => true,
            Err(e) if errno(&e) == Some(libc::EOPNOTSUPP) => {
                eprintln!("SKIPPED: {test}: this kernel has no 802.1Q VLANs (CONFIG_VLAN_8021Q)");
                false
            }
            Err(e) => panic!("probing for VLANs: {e}"),
        }
    }

    async fn add(handle: &Handle, message: LinkMessage) {
        handle.link().add(message).execute().await.unwrap();
    }

    async fn set_link(handle: &Handle, message: LinkMessage) {
        handle.link().set(message).execute().await.unwrap();
    }

    pub(crate) async fn link_exists(handle: &Handle, name: &str) -> bool {
        get(handle, name).await.unwrap().is_some()
    }

    async fn link(handle: &Handle, name: &str) -> Link {
        get(handle, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no link {name}"))
    }

    /// Every link as (index, name, kind, alias, controller, up), by index.
    async fn snapshot(
        handle: &Handle,
    ) -> Vec<(u32, String, String, Option<String>, Option<u32>, bool)> {
        let mut links: Vec<_> = all(handle)
            .await
            .unwrap()
            .into_iter()
            .map(|l| {
                let kind = l.kind.map(|k| k.to_string()).unwrap_or_default();
                (l.index, l.name, kind, l.alias, l.controller, l.up)
            })
            .collect();
        links.sort();
        links
    }

    async fn names(handle: &Handle) -> Vec<String> {
        let mut names: Vec<String> = all(handle)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        names
    }

    /// The uplinks the kernel tests run with; tagged ones only where it has VLANs.
    async fn uplinks(handle: &Handle, test: &str) -> Vec<Uplink> {
        let mut out = vec![Uplink::untagged("bond1")];
        if vlans_supported(handle, test).await {
            out.push(Uplink::tagged("bond1", 100));
        }
        out
    }

    /// What `ensure` must have left: the bridge marked and up, the port (made right when
    /// tagged) enslaved and up, the NIC up.
    async fn assert_made(handle: &Handle, uplink: &Uplink, bridge: &Bridge) {
        assert_eq!(bridge.name, uplink.bridge_name());
        assert_eq!(bridge.uplink, uplink.port_name());
        assert!(
            bridge.name.len() <= MAX_NAME && bridge.uplink.len() <= MAX_NAME,
            "{bridge:?}"
        );
        let br = link(handle, &bridge.name).await;
        assert_eq!(br.kind, Some(InfoKind::Bridge));
        assert_eq!(br.alias.as_deref(), Some(uplink.marker().as_str()));
        assert!(br.up, "bridge down");
        let port = link(handle, &bridge.uplink).await;
        assert_eq!(port.controller, Some(br.index), "port not enslaved");
        assert!(port.up, "port down");
        let nic = link(handle, &uplink.nic).await;
        assert!(nic.up, "NIC down");
        if let Some(id) = uplink.vlan {
            assert_eq!(port.kind, Some(InfoKind::Vlan));
            assert_eq!(port.vlan_id, Some(id));
            assert_eq!(port.parent, Some(nic.index));
            assert_eq!(port.alias.as_deref(), Some(uplink.vlan_marker().as_str()));
        }
        let listed = plinth_bridges(handle).await.unwrap();
        assert!(
            listed.contains(&(bridge.name.clone(), uplink.clone())),
            "{listed:?}"
        );
    }

    #[test]
    fn names_fit_and_never_meet() {
        let long = "enp129s0f1np1ab"; // 15 bytes, the longest a NIC's name can be
        // Pinned: bridges outlive the agent, so a new scheme would orphan the old ones.
        let cases = [
            ("untagged", Uplink::untagged("bond1"), "pl-bond1", None),
            (
                "tagged",
                Uplink::tagged("bond1", 100),
                "pl-bond1.100",
                Some("bond1.100"),
            ),
            (
                "tagged 4094",
                Uplink::tagged("eth1", 4094),
                "pl-eth1.4094",
                Some("eth1.4094"),
            ),
            (
                "untagged, 12 bytes",
                Uplink::untagged("enp129s0f1np"),
                "pl-enp129s0f1np",
                None,
            ),
            (
                "untagged, 13 bytes",
                Uplink::untagged("enp129s0f1np1"),
                "plbfdf0a532",
                None,
            ),
            (
                "tagged, just fits",
                Uplink::tagged("enp129s0f1", 7),
                "pl-enp129s0f1.7",
                Some("enp129s0f1.7"),
            ),
            (
                "tagged, bridge too long",
                Uplink::tagged("enp129s0f1", 100),
                "plb7f878715",
                Some("enp129s0f1.100"),
            ),
            (
                "tagged, both too long",
                Uplink::tagged(long, 4094),
                "plbe4356d94",
                Some("plvdd830dc1"),
            ),
            (
                "untagged NIC ending in .digits",
                Uplink::untagged("eth0.5"),
                "plb99d00e83",
                None,
            ),
            (
                "untagged NIC with a dot",
                Uplink::untagged("eth0.a"),
                "pl-eth0.a",
                None,
            ),
        ];
        for (label, uplink, bridge, vlan) in cases {
            uplink.check().unwrap();
            assert_eq!(uplink.bridge_name(), bridge, "{label}");
            assert_eq!(uplink.vlan_name().as_deref(), vlan, "{label}");
            assert!(
                bridge.len() <= MAX_NAME && vlan.is_none_or(|v| v.len() <= MAX_NAME),
                "{label}"
            );
        }
        // The NIC `eth0.5` untagged and `eth0` tagged 5 get different bridges.
        assert_ne!(
            Uplink::untagged("eth0.5").bridge_name(),
            Uplink::tagged("eth0", 5).bridge_name()
        );
        assert_eq!(Uplink::tagged("eth0", 5).bridge_name(), "pl-eth0.5");
    }

    #[test]
    fn markers_read_back_as_their_uplink() {
        for uplink in [
            Uplink::untagged("bond1"),
            Uplink::tagged("bond1", 100),
            Uplink::untagged("eth0.5"),
            Uplink::tagged("eth0.5", 7),
        ] {
            assert_eq!(
                Uplink::from_marker(&uplink.marker()),
                Some(uplink.clone()),
                "{uplink}"
            );
        }
        for alias in [
            "",
            "uplink to the core",
            "plinth uplink",
            "plinth uplink bond1 vlan",
            "plinth uplink bond1 vlan 0",
            "plinth uplink bond1 vlan 4095",
            "plinth uplink bond1 vlan 0100",
            "plinth uplink bond1  vlan 100",
            "plinth port bond1 vlan 100",
            "plinth uplink a/b",
        ] {
            assert_eq!(Uplink::from_marker(alias), None, "{alias:?}");
        }
    }

    #[test]
    fn invalid_uplinks_are_refused() {
        let cases = [
            ("empty NIC", Uplink::untagged("")),
            ("16 bytes", Uplink::untagged("enp129s0f1np1abc")),
            ("slash", Uplink::untagged("a/b")),
            ("colon", Uplink::untagged("eth0:1")),
            ("space", Uplink::untagged("eth 0")),
            ("dot", Uplink::untagged(".")),
            ("tag 0", Uplink::tagged("bond1", 0)),
            ("tag 4095", Uplink::tagged("bond1", 4095)),
        ];
        for (label, uplink) in cases {
            assert!(
                matches!(uplink.check(), Err(BridgeError::Invalid { .. })),
                "{label}"
            );
        }
        Uplink::tagged("bond1", 1).check().unwrap();
        Uplink::tagged("bond1", 4094).check().unwrap();
    }

    #[test]
    fn ensure_makes_the_bridge() {
        in_netns(|h| async move {
            make_nic(&h, "bond1").await;
            for uplink in uplinks(&h, "ensure_makes_the_bridge, tagged").await {
                let bridge = ensure(&h, &uplink)
                    .await
                    .unwrap()
                    .expect("the NIC is there");
                assert_made(&h, &uplink, &bridge).await;
            }
        });
    }

    #[test]
    fn ensure_again_changes_nothing() {
        in_netns(|h| async move {
            make_nic(&h, "bond1").await;
            for uplink in uplinks(&h, "ensure_again_changes_nothing, tagged").await {
                let first = ensure(&h, &uplink).await.unwrap().unwrap();
                let before = snapshot(&h).await;
                // As after an agent restart: a new socket, the same kernel state.
                let again = ensure(&connect().await.unwrap(), &uplink)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(again, first, "{uplink}");
                assert_eq!(snapshot(&h).await, before, "{uplink}");
            }
        });
    }

    #[test]
    fn a_missing_nic_makes_nothing() {
        in_netns(|h| async move {
            let before = snapshot(&h).await;
            for uplink in [Uplink::untagged("bond1"), Uplink::tagged("bond1", 100)] {
                assert_eq!(ensure(&h, &uplink).await.unwrap(), None, "{uplink}");
            }
            assert_eq!(snapshot(&h).await, before);
            assert_eq!(names(&h).await, ["lo"]);
            assert_eq!(plinth_bridges(&h).await.unwrap(), []);
        });
    }

    /// How a half-made state is left before `ensure` runs again.
    #[derive(Clone, Copy, Debug)]
    enum Broken {
        /// The uplink taken out of the bridge.
        Unenslaved,
        PortDown,
        BridgeDown,
        /// Tagged: the NIC down (the VLAN subinterface goes down with it).
        NicDown,
        /// The agent stopped before marking the bridge: it is bare, down, without its port.
        BareBridge,
        /// The agent stopped after making the VLAN subinterface, before the bridge.
        NoBridge,
    }

    #[test]
    fn a_half_made_state_is_repaired() {
        use Broken::*;
        for broken in [
            Unenslaved, PortDown, BridgeDown, NicDown, BareBridge, NoBridge,
        ] {
            in_netns(move |h| async move {
                make_nic(&h, "bond1").await;
                let test = format!("a_half_made_state_is_repaired ({broken:?}), tagged");
                for uplink in uplinks(&h, &test).await {
                    let label = format!("{broken:?}, {uplink}");
                    let clean = names(&h).await;
                    match broken {
                        BareBridge => {
                            let name = uplink.bridge_name();
                            add(&h, LinkBridge::new(&name).down().build()).await;
                        }
                        _ => {
                            ensure(&h, &uplink).await.unwrap().unwrap();
                        }
                    }
                    let port = get(&h, &uplink.port_name()).await.unwrap();
                    let bridge = get(&h, &uplink.bridge_name()).await.unwrap().unwrap();
                    let change = match broken {
                        Unenslaved => {
                            Some(LinkUnspec::new_with_index(port.unwrap().index).nocontroller())
                        }
                        PortDown => Some(LinkUnspec::new_with_index(port.unwrap().index).down()),
                        BridgeDown => Some(LinkUnspec::new_with_index(bridge.index).down()),
                        NicDown => {
                            let nic = link(&h, &uplink.nic).await;
                            Some(LinkUnspec::new_with_index(nic.index).down())
                        }
                        NoBridge => {
                            h.link().del(bridge.index).execute().await.unwrap();
                            None
                        }
                        BareBridge => None,
                    };
                    if let Some(change) = change {
                        set_link(&h, change.build()).await;
                    }
                    let bridge = ensure(&h, &uplink).await.unwrap().unwrap();
                    assert_made(&h, &uplink, &bridge).await;
                    assert!(remove_if_unused(&h, &uplink).await.unwrap(), "{label}");
                    assert_eq!(names(&h).await, clean, "{label}");
                }
            });
        }
    }

    /// What holds a name plinth wants, before `ensure` runs.
    #[derive(Clone, Copy, Debug)]
    enum Squatter {
        /// A link of another kind with the bridge's name.
        NotABridge,
        /// A bridge of the bridge's name that someone else marked.
        ForeignBridge,
        /// Tagged: a link of another kind with the VLAN subinterface's name.
        NotAVlan,
        /// Tagged: a VLAN subinterface of the name with another tag.
        WrongTag,
        /// The NIC a port of another bridge.
        NicTaken,
    }

    #[test]
    fn what_plinth_did_not_make_is_refused_and_left_alone() {
        use Squatter::*;
        for squatter in [NotABridge, ForeignBridge, NotAVlan, WrongTag, NicTaken] {
            in_netns(move |h| async move {
                let test = "what_plinth_did_not_make_is_refused_and_left_alone (WrongTag)";
                if matches!(squatter, WrongTag) && !vlans_supported(&h, test).await {
                    return;
                }
                let nic = make_nic(&h, "bond1").await;
                let uplink = match squatter {
                    NotAVlan | WrongTag => Uplink::tagged("bond1", 100),
                    _ => Uplink::untagged("bond1"),
                };
                match squatter {
                    NotABridge => {
                        make_nic(&h, &uplink.bridge_name()).await;
                    }
                    ForeignBridge => {
                        let name = uplink.bridge_name();
                        add(&h, LinkBridge::new(&name).alias("the lab's bridge").build()).await;
                        // The kernel drops an alias given at creation.
                        let index = link(&h, &name).await.index;
                        set_link(
                            &h,
                            LinkUnspec::new_with_index(index)
                                .alias("the lab's bridge")
                                .build(),
                        )
                        .await;
                    }
                    NotAVlan => {
                        make_nic(&h, &uplink.port_name()).await;
                    }
                    WrongTag => add(&h, LinkVlan::new("bond1.100", nic.index, 200).build()).await,
                    NicTaken => {
                        add(&h, LinkBridge::new("br0").build()).await;
                        let br0 = link(&h, "br0").await;
                        set_link(
                            &h,
                            LinkUnspec::new_with_index(nic.index)
                                .controller(br0.index)
                                .build(),
                        )
                        .await;
                    }
                }
                // The NIC down, to see that a refusal does not set it up either.
                set_link(&h, LinkUnspec::new_with_index(nic.index).down().build()).await;
                let before = snapshot(&h).await;
                let err = ensure(&h, &uplink).await.unwrap_err();
                let fits = match squatter {
                    NicTaken => {
                        matches!(&err, BridgeError::PortTaken { port, controller } if port == "bond1" && controller == "br0")
                    }
                    _ => matches!(&err, BridgeError::NotOurs { .. }),
                };
                assert!(fits, "{squatter:?}: {err:?}");
                assert_eq!(snapshot(&h).await, before, "{squatter:?}");
                if matches!(squatter, NotABridge | ForeignBridge) {
                    let err = remove_if_unused(&h, &uplink).await.unwrap_err();
                    assert!(
                        matches!(err, BridgeError::NotOurs { .. }),
                        "{squatter:?}: {err:?}"
                    );
                    assert_eq!(snapshot(&h).await, before, "{squatter:?}");
                }
                assert_eq!(plinth_bridges(&h).await.unwrap(), [], "{squatter:?}");
            });
        }
    }

    #[test]
    fn a_bridge_with_a_guest_on_it_stays() {
        in_netns(|h| async move {
            make_nic(&h, "bond1").await;
            for uplink in uplinks(&h, "a_bridge_with_a_guest_on_it_stays, tagged").await {
                let clean = names(&h).await;
                let bridge = ensure(&h, &uplink).await.unwrap().unwrap();
                let br = link(&h, &bridge.name).await;
                // A guest's tap, played by a veth.
                add(&h, LinkVeth::new("vnet0", "vnet0-p").build()).await;
                let tap = link(&h, "vnet0").await;
                set_link(
                    &h,
                    LinkUnspec::new_with_index(tap.index)
                        .controller(br.index)
                        .up()
                        .build(),
                )
                .await;
                let before = snapshot(&h).await;
                assert!(!remove_if_unused(&h, &uplink).await.unwrap(), "{uplink}");
                assert_eq!(snapshot(&h).await, before, "{uplink}");

                h.link().del(tap.index).execute().await.unwrap();
                assert!(remove_if_unused(&h, &uplink).await.unwrap(), "{uplink}");
                assert_eq!(names(&h).await, clean, "{uplink}: the bridge and VLAN stay");
                assert!(link(&h, "bond1").await.index > 0);
                assert_eq!(plinth_bridges(&h).await.unwrap(), [], "{uplink}");
                // Nothing left: nothing to do, and it says so.
                assert!(remove_if_unused(&h, &uplink).await.unwrap(), "{uplink}");
            }
        });
    }

    #[test]
    fn a_vlan_subinterface_plinth_found_is_kept() {
        in_netns(|h| async move {
            if !vlans_supported(&h, "a_vlan_subinterface_plinth_found_is_kept").await {
                return;
            }
            let nic = make_nic(&h, "bond1").await;
            add(&h, LinkVlan::new("bond1.100", nic.index, 100).build()).await;
            let clean = names(&h).await;
            let uplink = Uplink::tagged("bond1", 100);
            let bridge = ensure(&h, &uplink).await.unwrap().unwrap();
            assert_eq!(bridge.uplink, "bond1.100");
            let vlan = link(&h, "bond1.100").await;
            assert_eq!(vlan.alias, None, "not marked: plinth did not make it");
            assert!(remove_if_unused(&h, &uplink).await.unwrap());
            assert_eq!(names(&h).await, clean);
            assert_eq!(link(&h, "bond1.100").await.controller, None);
        });
    }

    #[test]
    fn plinth_bridges_lists_only_plinths() {
        in_netns(|h| async move {
            make_nic(&h, "bond1").await;
            make_nic(&h, "eth1").await;
            add(&h, LinkBridge::new("br0").build()).await;
            let mut want = Vec::new();
            for uplink in [Uplink::untagged("bond1"), Uplink::untagged("eth1")] {
                let bridge = ensure(&h, &uplink).await.unwrap().unwrap();
                want.push((bridge.name, uplink));
            }
            want.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(plinth_bridges(&h).await.unwrap(), want);
        });
    }

    #[test]
    fn long_names_are_hashed_within_the_kernels_limit() {
        in_netns(|h| async move {
            let long = "enp129s0f1np1ab";
            make_nic(&h, long).await;
            let mut cases = vec![Uplink::untagged(long)];
            if vlans_supported(&h, "long_names_are_hashed_within_the_kernels_limit, tagged").await {
                cases.push(Uplink::tagged(long, 4094));
            }
            for uplink in cases {
                let clean = names(&h).await;
                let bridge = ensure(&h, &uplink).await.unwrap().unwrap();
                assert!(bridge.name.starts_with("plb"), "{bridge:?}");
                if uplink.vlan.is_some() {
                    assert!(bridge.uplink.starts_with("plv"), "{bridge:?}");
                }
                assert_made(&h, &uplink, &bridge).await;
                assert_eq!(ensure(&h, &uplink).await.unwrap(), Some(bridge), "{uplink}");
                assert!(remove_if_unused(&h, &uplink).await.unwrap(), "{uplink}");
                assert_eq!(names(&h).await, clean, "{uplink}");
            }
        });
    }
}
