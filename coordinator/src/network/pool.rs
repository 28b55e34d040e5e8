//! A segment as a pool of addresses: which ones it may hand out, how they are keyed in the
//! store, and the gap search allocation runs over pages of taken addresses. Nothing here
//! enumerates a segment: the work is bounded by the addresses taken, never by the segment's size.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv6 subnets with 64-bit interface ids reserve their highest 128 addresses as subnet
/// anycast addresses (RFC 2526).
const V6_RESERVED_ANYCAST: u128 = 128;

/// The usable range of a segment: `first..=last` without the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    net: IpNet,
    first: u128,
    last: u128,
    gateway: u128,
}

/// What a look at one page of taken addresses found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// This address is free.
    Found(u128),
    /// Everything up to here is taken; read the next page from this address on.
    Continue(u128),
    /// Nothing is free up to the end of the range.
    Exhausted,
}

/// An address as a number (IPv4 in the low 32 bits).
pub fn number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Pool {
    /// The pool of `net` whose gateway is `gateway`. Validation (validate.rs) has made sure the
    /// gateway is inside and the prefix leaves at least one usable address.
    pub fn new(net: IpNet, gateway: IpAddr) -> Pool {
        let network = number(net.network());
        let top = number(net.broadcast());
        let (first, last) = match net {
            // The network and broadcast addresses are never hosts.
            IpNet::V4(_) => (network + 1, top.saturating_sub(1)),
            IpNet::V6(v6) if v6.prefix_len() <= 64 => {
                (network + 1, top.saturating_sub(V6_RESERVED_ANYCAST))
            }
            // The network address is the subnet-router anycast address.
            IpNet::V6(_) => (network + 1, top),
        };
        Pool {
            net,
            first,
            last,
            gateway: number(gateway),
        }
    }

    pub fn net(&self) -> IpNet {
        self.net
    }

    pub fn first(&self) -> u128 {
        self.first
    }

    pub fn last(&self) -> u128 {
        self.last
    }

    fn has_gateway(&self) -> bool {
        (self.first..=self.last).contains(&self.gateway)
    }

    /// How many addresses it can hand out in all.
    pub fn usable(&self) -> u128 {
        if self.last < self.first {
            return 0;
        }
        (self.last - self.first + 1) - u128::from(self.has_gateway())
    }

    /// The address numbered `n` (which lies in the segment).
    pub fn address(&self, n: u128) -> IpAddr {
        match self.net {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }

    /// The store's key of address number `n`: fixed-width hex, so text order is numeric order
    /// within a segment (8 digits for IPv4, 32 for IPv6).
    pub fn key(&self, n: u128) -> String {
        match self.net {
            IpNet::V4(_) => format!("{n:08x}"),
            IpNet::V6(_) => format!("{n:032x}"),
        }
    }

    /// The number a store key stands for.
    pub fn parse_key(key: &str) -> Option<u128> {
        u128::from_str_radix(key, 16).ok()
    }

    /// Why `addr` cannot be handed out, if it cannot.
    pub fn reserved(&self, addr: IpAddr) -> Option<&'static str> {
        let n = number(addr);
        if !self.net.contains(&addr) {
            Some("outside the segment")
        } else if n == number(self.net.network()) {
            Some("the segment's network address")
        } else if n == self.gateway {
            Some("the segment's gateway")
        } else if n > self.last {
            Some(match self.net {
                IpNet::V4(_) => "the segment's broadcast address",
                IpNet::V6(_) => "a reserved subnet anycast address (RFC 2526)",
            })
        } else {
            None
        }
    }

    /// The first free address in `from..=to` given `taken`, the taken addresses from `from` on
    /// in ascending order (one page of them); `more` says whether the page was cut short.
    pub fn scan(&self, from: u128, to: u128, taken: &[u128], more: bool) -> Scan {
        let mut next = from;
        for &t in taken {
            next = match self.skip_gateway(next) {
                Some(n) if n <= to => n,
                _ => return Scan::Exhausted,
            };
            if t > next {
                return Scan::Found(next);
            }
            next = match t.checked_add(1) {
                Some(n) => n.max(next),
                None => return Scan::Exhausted,
            };
        }
        match self.skip_gateway(next) {
            Some(n) if n <= to && more => Scan::Continue(n),
            Some(n) if n <= to => Scan::Found(n),
            _ => Scan::Exhausted,
        }
    }

    fn skip_gateway(&self, n: u128) -> Option<u128> {
        if n == self.gateway {
            n.checked_add(1)
        } else {
            Some(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str, gateway: &str) -> Pool {
        Pool::new(
            cidr.parse().expect("a CIDR"),
            gateway.parse().expect("an address"),
        )
    }

    #[test]
    fn usable_counts() {
        // A /28: 16 addresses less network, broadcast and gateway.
        assert_eq!(pool("203.0.113.0/28", "203.0.113.1").usable(), 13);
        assert_eq!(pool("203.0.113.0/30", "203.0.113.1").usable(), 1);
        assert_eq!(pool("10.0.0.0/8", "10.255.255.254").usable(), (1 << 24) - 3);
        // A /64: less the network address, the gateway and 128 reserved anycast addresses.
        assert_eq!(
            pool("2001:db8::/64", "2001:db8::1").usable(),
            (1u128 << 64) - 130
        );
        assert_eq!(pool("2001:db8::/126", "2001:db8::1").usable(), 2);
    }

    #[test]
    fn reserved_addresses() {
        let p = pool("203.0.113.0/28", "203.0.113.1");
        let why = |a: &str| p.reserved(a.parse().expect("an address"));
        assert_eq!(why("203.0.113.0"), Some("the segment's network address"));
        assert_eq!(why("203.0.113.1"), Some("the segment's gateway"));
        assert_eq!(why("203.0.113.15"), Some("the segment's broadcast address"));
        assert_eq!(why("203.0.113.16"), Some("outside the segment"));
        assert_eq!(why("203.0.113.14"), None);
        let p = pool("2001:db8::/64", "2001:db8::1");
        assert!(
            p.reserved("2001:db8::ffff:ffff:ffff:ff80".parse().expect("v6"))
                .is_some()
        );
        assert_eq!(
            p.reserved("2001:db8::ffff:ffff:ffff:ff7f".parse().expect("v6")),
            None
        );
    }

    #[test]
    fn keys_sort_as_numbers() {
        let p = pool("203.0.113.0/28", "203.0.113.1");
        let a = number("203.0.113.9".parse().expect("v4"));
        assert_eq!(p.key(a), "cb007109");
        assert_eq!(Pool::parse_key(&p.key(a)), Some(a));
        let p6 = pool("2001:db8::/64", "2001:db8::1");
        assert_eq!(p6.key(number("2001:db8::2".parse().expect("v6"))).len(), 32);
        assert_eq!(
            p6.address(number("2001:db8::2".parse().expect("v6"))),
            "2001:db8::2".parse::<IpAddr>().expect("v6")
        );
    }

    #[test]
    fn scan_finds_gaps_and_skips_the_gateway() {
        let p = pool("203.0.113.0/28", "203.0.113.1");
        let base = number("203.0.113.0".parse().expect("v4"));
        let at = |n: u128| base + n;
        let (first, last) = (p.first(), p.last());
        assert_eq!((first, last), (at(1), at(14)));
        let cases: &[(&str, u128, &[u128], bool, Scan)] = &[
            (
                "empty: the first, not the gateway",
                first,
                &[],
                false,
                Scan::Found(at(2)),
            ),
            (
                "a gap after a run",
                at(2),
                &[at(2), at(3), at(5)],
                false,
                Scan::Found(at(4)),
            ),
            (
                "a run to the end of the page",
                at(2),
                &[at(2), at(3)],
                true,
                Scan::Continue(at(4)),
            ),
            (
                "a run to the end of the page, nothing more",
                at(2),
                &[at(2), at(3)],
                false,
                Scan::Found(at(4)),
            ),
            (
                "the run reaches the end",
                at(13),
                &[at(13), at(14)],
                false,
                Scan::Exhausted,
            ),
            (
                "a start past the last taken one",
                at(10),
                &[],
                false,
                Scan::Found(at(10)),
            ),
        ];
        for (label, from, taken, more, want) in cases {
            assert_eq!(p.scan(*from, last, taken, *more), *want, "{label}");
        }
        // Every address taken, page by page: exhausted, never past the end.
        let all: Vec<u128> = (2..=14).map(at).collect();
        assert_eq!(p.scan(first, last, &all[..5], true), Scan::Continue(at(7)));
        assert_eq!(p.scan(at(7), last, &all[5..], false), Scan::Exhausted);
        // A range that ends before the end of the segment (the wrap-around pass).
        assert_eq!(
            p.scan(first, at(4), &[at(2), at(3), at(4)], false),
            Scan::Exhausted
        );
    }

    #[test]
    fn scan_at_the_top_of_the_address_space_does_not_overflow() {
        let p = pool(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd",
        );
        assert_eq!(p.last(), u128::MAX);
        assert_eq!(
            p.scan(u128::MAX - 1, p.last(), &[u128::MAX - 1, u128::MAX], false),
            Scan::Exhausted
        );
        assert_eq!(
            p.scan(u128::MAX - 2, p.last(), &[], false),
            Scan::Found(u128::MAX - 1)
        );
    }
}
