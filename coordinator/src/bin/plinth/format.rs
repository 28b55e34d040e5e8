//! How values read in tables: sizes with a unit that fits, `used/total` pairs, timestamps with
//! their age or in local time, and a dash for what is absent; and the parser of sizes given on
//! the command line.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes as GiB with one decimal, without the unit: `7.8` (the `used/total` pairs).
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / GIB)
}

/// Bytes with the largest unit that keeps at least one of it, B to GiB: `512 B`, `512 KiB`,
/// `12.4 MiB`, `2.0 GiB`. KiB and MiB carry a decimal only below 100 and when it is not
/// zero, GiB always one. Every size the CLI prints goes through here.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 2] = [(1 << 20, "MiB"), (1 << 10, "KiB")];
    if bytes >= 1 << 30 {
        return format!("{} GiB", gib(bytes));
    }
    for (unit, name) in UNITS {
        if bytes >= unit {
            // Tenths of the unit, rounded to the nearest.
            let tenths = (u128::from(bytes) * 10 + u128::from(unit) / 2) / u128::from(unit);
            return if tenths < 1_000 && tenths % 10 != 0 {
                format!("{}.{} {name}", tenths / 10, tenths % 10)
            } else {
                format!("{} {name}", (tenths + 5) / 10)
            };
        }
    }
    format!("{bytes} B")
}

/// An RFC 3339 time in this machine's time zone, to the minute: `2026-05-01 12:00`; as given
/// when unreadable, `-` when absent. Compact enough for a table column.
pub fn local_time(rfc3339: Option<&str>) -> String {
    let Some(text) = rfc3339 else {
        return "-".to_string();
    };
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(then) => then
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => text.to_string(),
    }
}

/// A duration as `10m`, `90s` or `2h`, the way the flags take it.
pub fn duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    match (secs, secs % 3_600, secs % 60) {
        (0, _, _) => "0s".to_string(),
        (s, 0, _) => format!("{}h", s / 3_600),
        (s, _, 0) => format!("{}m", s / 60),
        (s, _, _) => format!("{s}s"),
    }
}

/// A time taken, to the tenth of a second: `12.3 s`; `850 ms` under a second.
pub fn seconds(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    format!("{}.{} s", ms / 1_000, ms % 1_000 / 100)
}

/// Time so far, in whole seconds: `42s`, `3m05s`, `1h02m`.
pub fn elapsed(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
    }
}

/// `allocated/total` cores.
pub fn cores(allocated: u32, total: u32) -> String {
    format!("{allocated}/{total}")
}

/// `allocated/total` memory in GiB.
pub fn memory(allocated: u64, total: u64) -> String {
    format!("{}/{} GiB", gib(allocated), gib(total))
}

/// The value, or `-` when there is none.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

/// A rough age: `45s ago`, `3m ago`, `2h ago`, `5d ago` (`in 3d` for the future).
fn age(seconds: i64) -> String {
    let (n, unit) = match seconds.unsigned_abs() {
        s if s < 120 => (s, "s"),
        s if s < 7_200 => (s / 60, "m"),
        s if s < 172_800 => (s / 3_600, "h"),
        s => (s / 86_400, "d"),
    };
    if seconds < 0 {
        format!("in {n}{unit}")
    } else {
        format!("{n}{unit} ago")
    }
}

fn seconds_since(rfc3339: &str) -> Option<i64> {
    let then = OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    Some((OffsetDateTime::now_utc() - then).whole_seconds())
}

/// An RFC 3339 time as its age (`12s ago`), `never` when absent, or as given if unreadable.
pub fn ago(rfc3339: Option<&str>) -> String {
    match rfc3339 {
        None => "never".to_string(),
        Some(text) => seconds_since(text).map_or_else(|| text.to_string(), age),
    }
}

/// An RFC 3339 time with its age: `2026-05-01T10:00:00Z (3m ago)`; `-` when absent.
pub fn when(rfc3339: Option<&str>) -> String {
    match rfc3339 {
        None => "-".to_string(),
        Some(text) => match seconds_since(text) {
            Some(s) => format!("{text} ({})", age(s)),
            None => text.to_string(),
        },
    }
}

/// Parses a size with its unit: binary `KiB`, `MiB`, `GiB`, `TiB` (also written `K`, `M`, `G`,
/// `T`, as qemu-img does), decimal `KB`, `MB`, `GB`, `TB`, or `B`; units are case-insensitive
/// and may follow a space. A fraction is allowed when it makes whole bytes: `1.5GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("'{trimmed}' does not start with a number"));
    }
    let unit = unit.trim_start();
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "" => return Err(format!("'{trimmed}' has no unit (use MiB, GiB, GB, ...)")),
        _ => {
            return Err(format!(
                "'{trimmed}' has unknown unit '{unit}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    let too_large = || format!("'{trimmed}' is too large");
    let digits = |d: &str| -> Result<u64, String> {
        if d.is_empty() {
            Ok(0)
        } else {
            d.parse::<u64>().map_err(|_| too_large())
        }
    };
    let mut bytes = digits(whole)?
        .checked_mul(multiplier)
        .ok_or_else(too_large)?;
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        // Twelve decimals reach a byte of a TiB; more cannot make whole bytes.
        let Some(scale) = u32::try_from(fraction.len())
            .ok()
            .filter(|n| *n <= 12)
            .map(|n| 10u128.pow(n))
        else {
            return Err(format!("'{trimmed}' has too many decimals"));
        };
        let part = u128::from(digits(fraction)?) * u128::from(multiplier);
        let (part, rest) = (part / scale, part % scale);
        if rest > 0 {
            return Err(format!("'{trimmed}' is not a whole number of bytes"));
        }
        let part = u64::try_from(part).map_err(|_| too_large())?;
        bytes = bytes.checked_add(part).ok_or_else(too_large)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        let cases: [(&str, Result<u64, ()>); 17] = [
            ("2GiB", Ok(2 << 30)),
            ("2 GiB", Ok(2 << 30)),
            ("2gib", Ok(2 << 30)),
            ("2G", Ok(2 << 30)),
            ("512MiB", Ok(512 << 20)),
            ("20GB", Ok(20_000_000_000)),
            ("1.5GiB", Ok(3 << 29)),
            ("1.50 TiB", Ok(3 << 39)),
            (".5GiB", Ok(1 << 29)),
            ("4096B", Ok(4096)),
            ("2048", Err(())),
            ("GiB", Err(())),
            ("2 GiBs", Err(())),
            ("1.2.3GiB", Err(())),
            ("0.1B", Err(())),
            ("-1GiB", Err(())),
            ("99999999999TiB", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).map_err(|_| ()), want, "{input}");
        }
        assert!(parse_size("2048").expect_err("no unit").contains("no unit"));
    }

    #[test]
    fn sizes() {
        assert_eq!(gib(8 << 30), "8.0");
        assert_eq!(memory(3 << 29, 16 << 30), "1.5/16.0 GiB");
        let cases = [
            ("nothing", 0, "0 B"),
            ("bytes", 512, "512 B"),
            ("just under a KiB", 1_023, "1023 B"),
            ("a KiB", 1 << 10, "1 KiB"),
            ("a KiB and a half", 3 << 9, "1.5 KiB"),
            ("hundreds of KiB", 512 << 10, "512 KiB"),
            ("a small image", 196_608, "192 KiB"),
            ("MiB with a decimal", 13_002_342, "12.4 MiB"),
            ("whole MiB", 64 << 20, "64 MiB"),
            ("hundreds of MiB", 512 << 20, "512 MiB"),
            ("a GiB", 1 << 30, "1.0 GiB"),
            ("GiB", 2 << 30, "2.0 GiB"),
            ("a GiB and a half", 3 << 29, "1.5 GiB"),
        ];
        for (label, bytes, want) in cases {
            assert_eq!(size(bytes), want, "{label}");
        }
    }

    #[test]
    fn local_times() {
        // The offset of this machine's zone is not known here: check the shape only.
        let shown = local_time(Some("2026-05-01T10:00:00Z"));
        assert_eq!(shown.len(), "2026-05-01 10:00".len(), "{shown}");
        assert!(shown.starts_with("2026-"), "{shown}");
        assert_eq!(local_time(None), "-");
        assert_eq!(local_time(Some("not a time")), "not a time");
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_secs(600)), "10m");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_secs(7_200)), "2h");
        assert_eq!(duration(Duration::from_millis(1_500)), "1500ms");
    }

    #[test]
    fn times_taken() {
        use std::time::Duration;
        let cases = [
            ("under a minute", Duration::from_millis(42_900), "42s"),
            ("minutes", Duration::from_secs(185), "3m05s"),
            ("hours", Duration::from_secs(3_720), "1h02m"),
        ];
        for (label, d, want) in cases {
            assert_eq!(elapsed(d), want, "{label}");
        }
        assert_eq!(seconds(12_345), "12.3 s");
        assert_eq!(seconds(850), "850 ms");
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s ago");
        assert_eq!(age(600), "10m ago");
        assert_eq!(age(-3 * 86_400), "in 3d");
        assert_eq!(ago(None), "never");
        assert_eq!(ago(Some("not a time")), "not a time");
    }
}
