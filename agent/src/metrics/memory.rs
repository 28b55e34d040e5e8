//! `meminfo`: total and available memory from `/proc/meminfo` (node_exporter's
//! `node_memory_MemTotal_bytes`, `node_memory_MemAvailable_bytes`).

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// Parses `/proc/meminfo` (`MemTotal:  24684092 kB`); `None` unless both lines are there.
pub fn parse(text: &str) -> Option<MemInfo> {
    let mut total = None;
    let mut available = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            _ => continue,
        };
        let mut f = rest.split_whitespace();
        let value: u64 = f.next()?.parse().ok()?;
        let scale = if f.next() == Some("kB") { 1024 } else { 1 };
        *slot = Some(value.saturating_mul(scale));
    }
    Some(MemInfo {
        total_bytes: total?,
        available_bytes: available?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_total_and_available() {
        let text = "MemTotal:       24684092 kB\nMemFree:         1000 kB\n\
                    MemAvailable:   23004112 kB\nHugePages_Total:       0\n";
        assert_eq!(
            parse(text),
            Some(MemInfo {
                total_bytes: 24_684_092 * 1024,
                available_bytes: 23_004_112 * 1024,
            })
        );
        assert_eq!(parse("MemTotal: 5 kB\n"), None, "no MemAvailable");
    }
}
