//! libvirt nwfilters that hold a guest NIC to what plinth bound to it: frames only from its
//! own MAC, packets only from its EIP, ARP (or neighbour discovery) only for its EIP; spoofed
//! sources and any other layer-2 traffic are dropped at the host bridge. A guest cannot answer
//! its neighbours' DHCP (nor DHCPv6) or advertise itself as their router either: only the
//! host's DHCP server configures guests. The agent defines
//! them at start (and again before a domain that uses them is defined): libvirt keeps them.

/// For an IPv4 EIP; the domain's `<filterref>` gives `IP`.
pub const NAME_V4: &str = "plinth-clean-traffic";
/// For an IPv6 EIP; the domain's `<filterref>` gives `IPV6`.
pub const NAME_V6: &str = "plinth-clean-traffic-ipv6";

/// Rules both filters share: the NIC's own MAC only (libvirt fills `$MAC` from the interface),
/// QEMU's self-announcement after a live migration (RARP, 0x8035) so switches relearn the MAC,
/// and a final drop of whatever no rule accepted, either way.
const OWN_MAC: &str = "  <rule action='drop' direction='out' priority='-900'>
    <mac match='no' srcmacaddr='$MAC'/>
  </rule>
  <rule action='accept' direction='out' priority='-500'>
    <mac protocolid='0x8035'/>
  </rule>
";
const DROP_REST: &str = "  <rule action='drop' direction='inout' priority='1000'/>
";

/// The filters as libvirt's nwfilter XML, by name.
pub fn definitions() -> [(&'static str, String); 2] {
    let v4 = format!(
        "<filter name='{NAME_V4}' chain='root'>
{OWN_MAC}  <rule action='drop' direction='out' priority='-850'>
    <ip protocol='udp' srcportstart='67' srcportend='67'/>
  </rule>
  <rule action='accept' direction='out' priority='-800'>
    <ip srcipaddr='$IP'/>
  </rule>
  <rule action='accept' direction='out' priority='-790'>
    <ip srcipaddr='0.0.0.0' protocol='udp' srcportstart='68' dstportstart='67'/>
  </rule>
  <rule action='accept' direction='out' priority='-700'>
    <arp arpsrcmacaddr='$MAC' arpsrcipaddr='$IP'/>
  </rule>
  <rule action='accept' direction='in' priority='-600'>
    <mac protocolid='ipv4'/>
  </rule>
  <rule action='accept' direction='in' priority='-600'>
    <mac protocolid='arp'/>
  </rule>
{DROP_REST}</filter>
"
    );
    // Neighbour discovery speaks from the link-local address (and `::` while checking for a
    // duplicate), so ICMPv6 from those is let out too; so is a DHCPv6 client's request, which
    // also comes from the link-local address.
    let v6 = format!(
        "<filter name='{NAME_V6}' chain='root'>
{OWN_MAC}  <rule action='drop' direction='out' priority='-850'>
    <ipv6 protocol='udp' srcportstart='547' srcportend='547'/>
  </rule>
  <rule action='drop' direction='out' priority='-850'>
    <ipv6 protocol='icmpv6' type='134'/>
  </rule>
  <rule action='accept' direction='out' priority='-800'>
    <ipv6 srcipaddr='$IPV6'/>
  </rule>
  <rule action='accept' direction='out' priority='-790'>
    <ipv6 srcipaddr='fe80::' srcipmask='10' protocol='icmpv6'/>
  </rule>
  <rule action='accept' direction='out' priority='-785'>
    <ipv6 srcipaddr='fe80::' srcipmask='10' protocol='udp' srcportstart='546' dstportstart='547'/>
  </rule>
  <rule action='accept' direction='out' priority='-780'>
    <ipv6 srcipaddr='::' protocol='icmpv6'/>
  </rule>
  <rule action='accept' direction='in' priority='-600'>
    <mac protocolid='ipv6'/>
  </rule>
{DROP_REST}</filter>
"
    );
    [(NAME_V4, v4), (NAME_V6, v6)]
}
