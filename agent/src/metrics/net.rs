//! `netdev`: per-interface byte and packet counters from `/proc/net/dev` (node_exporter's
//! `node_network_*_total`, every device, loopback included).

/// One interface's counters since boot (or since it appeared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub device: String,
    pub receive_bytes: u64,
    pub receive_packets: u64,
    pub transmit_bytes: u64,
    pub transmit_packets: u64,
}

/// Parses `/proc/net/dev`: two header lines, then `name: 16 counters` (8 receive, 8 transmit).
/// A line that does not read is skipped rather than failing the others.
pub fn parse(text: &str) -> Vec<NetDev> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let n: Vec<u64> = counters
                .split_whitespace()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            (n.len() >= 16).then(|| NetDev {
                device: name.trim().to_string(),
                receive_bytes: n[0],
                receive_packets: n[1],
                transmit_bytes: n[8],
                transmit_packets: n[9],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 439141786832 9586285    0    0    0     0          0         0 439141786832 9586285    0    0    0     0       0          0
  eth0: 275538050   14013    0    0    0     0          0         0   815753    8455    0    0    0     0       0          0
vnet12:12345678901234 5 0 0 0 0 0 0 7 8 0 0 0 0 0 0
  bad0: 1 2 3
";

    #[test]
    fn reads_each_device() {
        let devs = parse(FIXTURE);
        assert_eq!(devs.len(), 3, "{devs:?}");
        assert_eq!(
            devs[1],
            NetDev {
                device: "eth0".into(),
                receive_bytes: 275_538_050,
                receive_packets: 14_013,
                transmit_bytes: 815_753,
                transmit_packets: 8_455,
            }
        );
        assert_eq!(devs[0].device, "lo");
        assert_eq!(
            devs[2].receive_bytes, 12_345_678_901_234,
            "a counter wide enough to touch the colon"
        );
        assert_eq!(devs[2].transmit_packets, 8);
    }
}
