//! `netstat` and `sockstat`: established TCP connections from `/proc/net/snmp`
//! (`node_netstat_Tcp_CurrEstab`, IPv4 and IPv6 alike: Linux keeps one TCP MIB) and TCP
//! sockets in use from `/proc/net/sockstat` (`node_sockstat_TCP_inuse`, IPv4).

/// `Tcp: ... CurrEstab ...`: a header line of names, then a line of values.
pub fn parse_curr_estab(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter_map(|l| l.strip_prefix("Tcp:"));
    let names = tcp.next()?;
    let values = tcp.next()?;
    let at = names.split_whitespace().position(|n| n == "CurrEstab")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// `TCP: inuse 1 orphan 0 tw 6 alloc 1 mem 0`.
pub fn parse_tcp_inuse(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "inuse")?;
    fields.get(at + 1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_established_and_in_use() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n\
            Tcp: 1 200 120000 -1 16354 7471 8796 4145 17 9597555\n\
            Udp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_curr_estab(snmp), Some(17));
        assert_eq!(parse_curr_estab("Udp: A\nUdp: 1\n"), None);
        let sockstat =
            "sockets: used 23\nTCP: inuse 4 orphan 0 tw 6 alloc 1 mem 0\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_tcp_inuse(sockstat), Some(4));
        assert_eq!(parse_tcp_inuse("UDP: inuse 3\n"), None);
    }
}
