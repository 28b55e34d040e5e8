//! Checks a segment as the admin wrote it and turns it into typed values: a canonical CIDR, a
//! gateway that is a host of it, a Linux interface name, a VLAN tag, and routes of the
//! segment's family. Also the rules between segments: no overlap, one segment per family on
//! a NIC and VLAN (dual stack). No I/O.

use ipnet::IpNet;
use plinth_common::api::RoutePolicy;
use std::net::IpAddr;

/// Most routes a `specified` policy may list.
pub const MAX_ROUTES: usize = 64;
/// IFNAMSIZ less the terminating NUL.
const MAX_NIC_LEN: usize = 15;

/// A field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// A segment's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    pub name: String,
    pub net: IpNet,
    pub gateway: IpAddr,
    pub nic: String,
    pub vlan: Option<u16>,
    pub route_policy: RoutePolicy,
    /// The admin's list for `specified`; empty otherwise.
    pub routes: Vec<IpNet>,
}

/// The settings as text, before checking (a create body, or an update merged into a segment).
#[derive(Debug, Clone, Default)]
pub struct SegmentInput<'a> {
    pub name: &'a str,
    pub ip_version: Option<u8>,
    pub cidr: &'a str,
    pub gateway: &'a str,
    pub nic: &'a str,
    pub vlan: Option<i64>,
    pub route_policy: Option<RoutePolicy>,
    pub routes: &'a [String],
}

pub fn version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

/// Checks every field, the first wrong one reported.
pub fn spec(input: &SegmentInput<'_>) -> Result<SegmentSpec, Invalid> {
    let name = name(input.name)?;
    let net = cidr(input.cidr, input.ip_version)?;
    let gateway = gateway(input.gateway, &net)?;
    let nic = nic(input.nic)?;
    let vlan = vlan(input.vlan)?;
    let route_policy = input.route_policy.unwrap_or(RoutePolicy::Default);
    let routes = routes(route_policy, input.routes, &net)?;
    Ok(SegmentSpec {
        name,
        net,
        gateway,
        nic,
        vlan,
        route_policy,
        routes,
    })
}

pub fn name(text: &str) -> Result<String, Invalid> {
    plinth_common::text::check(plinth_common::text::NAME, text)
        .map(str::to_string)
        .map_err(|m| invalid("name", m))
}

/// Ranges that are never an external segment.
fn special(net: &IpNet) -> Option<&'static str> {
    let within = |cidr: &str| {
        cidr.parse::<IpNet>()
            .is_ok_and(|special| special.contains(net) || net.contains(&special))
    };
    [
        ("0.0.0.0/8", "the IPv4 'this network' range"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (class E)"),
        ("::/127", "the unspecified or loopback address"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .find(|(cidr, _)| within(cidr))
    .map(|(_, what)| what)
}

/// A canonical CIDR (host bits zero) of the version asked for, large enough for a gateway and
/// one address to hand out.
pub fn cidr(text: &str, ip_version: Option<u8>) -> Result<IpNet, Invalid> {
    let text = text.trim();
    let net: IpNet = text.parse().map_err(|_| {
        invalid(
            "cidr",
            format!("'{text}' is not a CIDR such as 203.0.113.0/24 or 2001:db8::/64"),
        )
    })?;
    if net.trunc() != net {
        return Err(invalid(
            "cidr",
            format!("'{text}' has host bits set; the segment is {}", net.trunc()),
        ));
    }
    if let Some(v) = ip_version {
        if v != 4 && v != 6 {
            return Err(invalid("ip_version", format!("must be 4 or 6, got {v}")));
        }
        if v != version(&net) {
            return Err(invalid(
                "ip_version",
                format!("is {v} but {net} is an IPv{} network", version(&net)),
            ));
        }
    }
    // At least the network address, the gateway and one address to hand out (and the
    // broadcast address for IPv4).
    let (min, max) = match net {
        IpNet::V4(_) => (8, 30),
        IpNet::V6(_) => (16, 126),
    };
    if !(min..=max).contains(&net.prefix_len()) {
        return Err(invalid(
            "cidr",
            format!(
                "{net}: the prefix length of an IPv{} segment must be {min}-{max}",
                version(&net)
            ),
        ));
    }
    if let Some(what) = special(&net) {
        return Err(invalid(
            "cidr",
            format!("{net} is {what}, not an external segment"),
        ));
    }
    Ok(net)
}

/// A host address of `net`: inside it, not its network address, not its IPv4 broadcast.
pub fn gateway(text: &str, net: &IpNet) -> Result<IpAddr, Invalid> {
    let text = text.trim();
    let addr: IpAddr = text
        .parse()
        .map_err(|_| invalid("gateway", format!("'{text}' is not an IP address")))?;
    if !net.contains(&addr) {
        return Err(invalid("gateway", format!("{addr} is outside {net}")));
    }
    if addr == net.network() {
        return Err(invalid(
            "gateway",
            format!("{addr} is the network address of {net}"),
        ));
    }
    if matches!(net, IpNet::V4(_)) && addr == net.broadcast() {
        return Err(invalid(
            "gateway",
            format!("{addr} is the broadcast address of {net}"),
        ));
    }
    Ok(addr)
}

/// A name Linux accepts for an interface (as `dev_valid_name` does), in printable ASCII.
pub fn nic(text: &str) -> Result<String, Invalid> {
    let ok = !text.is_empty()
        && text.len() <= MAX_NIC_LEN
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(text.to_string())
    } else {
        Err(invalid(
            "nic",
            format!(
                "'{text}' is not an interface name: 1-{MAX_NIC_LEN} printable characters \
                 without '/', ':' or spaces, not '.' or '..'"
            ),
        ))
    }
}

/// An 802.1Q tag: 1-4094 (0 and 4095 are reserved), or none for untagged.
pub fn vlan(tag: Option<i64>) -> Result<Option<u16>, Invalid> {
    match tag {
        None => Ok(None),
        Some(t @ 1..=4094) => Ok(Some(t as u16)),
        Some(t) => Err(invalid(
            "vlan",
            format!("must be 1-4094, or null for untagged; got {t}"),
        )),
    }
}

/// The list of a `specified` policy: canonical CIDRs of the segment's family, no repeats. Any
/// other policy takes no list.
pub fn routes(policy: RoutePolicy, texts: &[String], net: &IpNet) -> Result<Vec<IpNet>, Invalid> {
    if policy != RoutePolicy::Specified {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        return Err(invalid(
            "routes",
            format!("are given only with route_policy specified, not {policy}"),
        ));
    }
    if texts.is_empty() || texts.len() > MAX_ROUTES {
        return Err(invalid(
            "routes",
            format!("route_policy specified needs 1-{MAX_ROUTES} destination CIDRs"),
        ));
    }
    let mut routes: Vec<IpNet> = Vec::with_capacity(texts.len());
    for text in texts {
        let text = text.trim();
        let route: IpNet = text
            .parse()
            .map_err(|_| invalid("routes", format!("'{text}' is not a CIDR")))?;
        if version(&route) != version(net) {
            return Err(invalid(
                "routes",
                format!(
                    "{route} is IPv{} but the segment {net} is IPv{}",
                    version(&route),
                    version(net)
                ),
            ));
        }
        if route.trunc() != route {
            return Err(invalid(
                "routes",
                format!(
                    "'{text}' has host bits set; did you mean {}?",
                    route.trunc()
                ),
            ));
        }
        if routes.contains(&route) {
            return Err(invalid("routes", format!("{route} is listed twice")));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// What an instance routes through an EIP of a segment with this policy.
pub fn effective_routes(policy: RoutePolicy, routes: &[IpNet], net: &IpNet) -> Vec<IpNet> {
    match policy {
        RoutePolicy::Default => vec![
            match net {
                IpNet::V4(_) => "0.0.0.0/0",
                IpNet::V6(_) => "::/0",
            }
            .parse()
            .unwrap_or(*net),
        ],
        RoutePolicy::Specified => routes.to_vec(),
        RoutePolicy::None => Vec::new(),
    }
}

/// A segment already recorded, as the rules between segments see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub net: IpNet,
    pub nic: String,
    pub vlan: Option<u16>,
}

/// Why a segment cannot sit beside the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    Name {
        id: String,
    },
    Overlap {
        id: String,
        net: IpNet,
    },
    /// Another segment of the same family on the same NIC and VLAN: one network carries one
    /// IPv4 and one IPv6 segment (dual stack), no more.
    SameNetwork {
        id: String,
        net: IpNet,
    },
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clash::Name { id } => write!(f, "segment {id} already has this name"),
            Clash::Overlap { id, net } => write!(f, "overlaps segment {id} ({net})"),
            Clash::SameNetwork { id, net } => write!(
                f,
                "segment {id} ({net}) is already the IPv{} segment of this NIC and VLAN; \
                 one NIC and VLAN carry one IPv4 and one IPv6 segment",
                version(net)
            ),
        }
    }
}

/// The first rule `spec` breaks against `others` (which must not include the segment itself).
pub fn clash(spec: &SegmentSpec, others: &[Existing]) -> Option<Clash> {
    let same_family = |o: &&Existing| version(&o.net) == version(&spec.net);
    if let Some(o) = others.iter().find(|o| o.name == spec.name) {
        return Some(Clash::Name { id: o.id.clone() });
    }
    if let Some(o) = others
        .iter()
        .filter(same_family)
        .find(|o| o.net.contains(&spec.net) || spec.net.contains(&o.net))
    {
        return Some(Clash::Overlap {
            id: o.id.clone(),
            net: o.net,
        });
    }
    others
        .iter()
        .filter(same_family)
        .find(|o| o.nic == spec.nic && o.vlan == spec.vlan)
        .map(|o| Clash::SameNetwork {
            id: o.id.clone(),
            net: o.net,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(cidr: &'a str, gateway: &'a str, routes: &'a [String]) -> SegmentInput<'a> {
        SegmentInput {
            name: "public-1",
            ip_version: None,
            cidr,
            gateway,
            nic: "bond1",
            vlan: Some(100),
            route_policy: None,
            routes,
        }
    }

    #[test]
    fn validation_table() {
        let none: &[String] = &[];
        let v6_route = ["2001:db8:ff::/48".to_string()];
        let v4_routes = ["10.0.2.0/24".to_string(), "10.0.3.0/24".to_string()];
        let host_bits = ["10.0.2.1/24".to_string()];
        let twice = ["10.0.2.0/24".to_string(), "10.0.2.0/24".to_string()];
        let base = || input("203.0.113.0/28", "203.0.113.1", none);
        type Case<'a> = (&'a str, SegmentInput<'a>, Option<&'static str>);
        let cases: Vec<Case<'_>> = vec![
            ("good IPv4", base(), None),
            (
                "good IPv6",
                input("2001:db8:1::/64", "2001:db8:1::1", none),
                None,
            ),
            (
                "not a CIDR",
                input("203.0.113.0", "203.0.113.1", none),
                Some("cidr"),
            ),
            (
                "garbage CIDR",
                input("203.0.113.0/33", "203.0.113.1", none),
                Some("cidr"),
            ),
            (
                "host bits set",
                input("203.0.113.5/28", "203.0.113.1", none),
                Some("cidr"),
            ),
            (
                "IPv6 host bits",
                input("2001:db8:1::1/64", "2001:db8:1::2", none),
                Some("cidr"),
            ),
            (
                "too small for a host",
                input("203.0.113.0/31", "203.0.113.1", none),
                Some("cidr"),
            ),
            (
                "loopback",
                input("127.0.0.0/24", "127.0.0.1", none),
                Some("cidr"),
            ),
            (
                "multicast",
                input("ff00::/64", "ff00::1", none),
                Some("cidr"),
            ),
            (
                "version mismatch",
                SegmentInput {
                    ip_version: Some(6),
                    ..base()
                },
                Some("ip_version"),
            ),
            (
                "version 5",
                SegmentInput {
                    ip_version: Some(5),
                    ..base()
                },
                Some("ip_version"),
            ),
            (
                "gateway outside",
                input("203.0.113.0/28", "203.0.113.17", none),
                Some("gateway"),
            ),
            (
                "gateway other family",
                input("203.0.113.0/28", "2001:db8::1", none),
                Some("gateway"),
            ),
            (
                "gateway network",
                input("203.0.113.0/28", "203.0.113.0", none),
                Some("gateway"),
            ),
            (
                "gateway broadcast",
                input("203.0.113.0/28", "203.0.113.15", none),
                Some("gateway"),
            ),
            (
                "gateway not an address",
                input("203.0.113.0/28", "gw", none),
                Some("gateway"),
            ),
            (
                "IPv6 gateway last",
                input("2001:db8::/126", "2001:db8::3", none),
                None,
            ),
            (
                "VLAN 0",
                SegmentInput {
                    vlan: Some(0),
                    ..base()
                },
                Some("vlan"),
            ),
            (
                "VLAN 4095",
                SegmentInput {
                    vlan: Some(4095),
                    ..base()
                },
                Some("vlan"),
            ),
            (
                "VLAN 1",
                SegmentInput {
                    vlan: Some(1),
                    ..base()
                },
                None,
            ),
            (
                "VLAN 4094",
                SegmentInput {
                    vlan: Some(4094),
                    ..base()
                },
                None,
            ),
            (
                "untagged",
                SegmentInput {
                    vlan: None,
                    ..base()
                },
                None,
            ),
            ("NIC empty", SegmentInput { nic: "", ..base() }, Some("nic")),
            (
                "NIC too long",
                SegmentInput {
                    nic: "abcdefghijklmnop",
                    ..base()
                },
                Some("nic"),
            ),
            (
                "NIC with slash",
                SegmentInput {
                    nic: "eth/0",
                    ..base()
                },
                Some("nic"),
            ),
            (
                "NIC with space",
                SegmentInput {
                    nic: "eth 0",
                    ..base()
                },
                Some("nic"),
            ),
            (
                "NIC dot-dot",
                SegmentInput {
                    nic: "..",
                    ..base()
                },
                Some("nic"),
            ),
            (
                "NIC VLAN-style",
                SegmentInput {
                    nic: "bond1.100",
                    ..base()
                },
                None,
            ),
            (
                "name empty",
                SegmentInput {
                    name: "  ",
                    ..base()
                },
                Some("name"),
            ),
            (
                "specified routes",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Specified),
                    routes: &v4_routes,
                    ..base()
                },
                None,
            ),
            (
                "mixed families in routes",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Specified),
                    routes: &v6_route,
                    ..base()
                },
                Some("routes"),
            ),
            (
                "specified without routes",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Specified),
                    ..base()
                },
                Some("routes"),
            ),
            (
                "routes with default",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Default),
                    routes: &v4_routes,
                    ..base()
                },
                Some("routes"),
            ),
            (
                "route host bits",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Specified),
                    routes: &host_bits,
                    ..base()
                },
                Some("routes"),
            ),
            (
                "route twice",
                SegmentInput {
                    route_policy: Some(RoutePolicy::Specified),
                    routes: &twice,
                    ..base()
                },
                Some("routes"),
            ),
        ];
        for (label, input, want) in cases {
            let got = spec(&input);
            match want {
                None => assert!(got.is_ok(), "{label}: {got:?}"),
                Some(field) => {
                    let err = got.expect_err(label);
                    assert_eq!(err.field, field, "{label}: {}", err.message);
                }
            }
        }
    }

    #[test]
    fn canonical_forms_are_kept() {
        let none: &[String] = &[];
        let s = spec(&input("2001:DB8:0:0::/64", "2001:db8::0:1", none)).expect("valid");
        assert_eq!(s.net.to_string(), "2001:db8::/64");
        assert_eq!(s.gateway.to_string(), "2001:db8::1");
        assert_eq!(
            effective_routes(s.route_policy, &s.routes, &s.net),
            vec!["::/0".parse::<IpNet>().expect("v6")]
        );
        assert!(effective_routes(RoutePolicy::None, &[], &s.net).is_empty());
    }

    fn existing(id: &str, cidr: &str, nic: &str, vlan: Option<u16>) -> Existing {
        Existing {
            id: id.into(),
            name: id.into(),
            net: cidr.parse().expect("a CIDR"),
            nic: nic.into(),
            vlan,
        }
    }

    #[test]
    fn rules_between_segments() {
        let none: &[String] = &[];
        let v4 = spec(&input("203.0.113.0/28", "203.0.113.1", none)).expect("valid");
        let v6 = spec(&input("2001:db8:1::/64", "2001:db8:1::1", none)).expect("valid");
        let cases: Vec<(&str, &SegmentSpec, Vec<Existing>, Option<&str>)> = vec![
            ("alone", &v4, vec![], None),
            (
                "inside another",
                &v4,
                vec![existing("a", "203.0.113.0/24", "eth9", None)],
                Some("a"),
            ),
            (
                "around another",
                &v4,
                vec![existing("b", "203.0.113.8/29", "eth9", None)],
                Some("b"),
            ),
            (
                "beside another",
                &v4,
                vec![existing("c", "203.0.113.16/28", "eth9", None)],
                None,
            ),
            (
                "same NIC and VLAN, IPv4 twice",
                &v4,
                vec![existing("d", "198.51.100.0/24", "bond1", Some(100))],
                Some("d"),
            ),
            (
                "same NIC, other VLAN",
                &v4,
                vec![existing("e", "198.51.100.0/24", "bond1", Some(101))],
                None,
            ),
            (
                "dual stack: IPv6 beside IPv4",
                &v6,
                vec![existing("f", "203.0.113.0/28", "bond1", Some(100))],
                None,
            ),
            (
                "dual stack: IPv6 twice",
                &v6,
                vec![
                    existing("f", "203.0.113.0/28", "bond1", Some(100)),
                    existing("g", "2001:db8:2::/64", "bond1", Some(100)),
                ],
                Some("g"),
            ),
            (
                "name taken",
                &v4,
                vec![existing("public-1", "198.51.100.0/24", "eth9", None)],
                Some("public-1"),
            ),
        ];
        for (label, spec, others, want) in cases {
            let got = clash(spec, &others);
            let id = got.as_ref().map(|c| match c {
                Clash::Name { id } | Clash::Overlap { id, .. } | Clash::SameNetwork { id, .. } => {
                    id.as_str()
                }
            });
            assert_eq!(id, want, "{label}: {got:?}");
        }
    }
}
