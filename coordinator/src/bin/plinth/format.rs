//! How values read in tables: memory in GiB, `used/total` pairs, timestamps with their age,
//! and a dash for what is absent.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: u64 = 1 << 20;

/// Bytes as GiB with one decimal, without the unit: `7.8`.
pub fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / GIB)
}

/// Bytes in MiB below one GiB, else GiB with one decimal: `512 MiB`, `2.0 GiB`.
pub fn size(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} GiB", gib(bytes))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(gib(8 << 30), "8.0");
        assert_eq!(memory(3 << 29, 16 << 30), "1.5/16.0 GiB");
        assert_eq!(size(512 << 20), "512 MiB");
        assert_eq!(size(2 << 30), "2.0 GiB");
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
