//! Timestamps: the store keeps Unix milliseconds (portable and cheap to compare); the API shows
//! RFC 3339 in UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 text for a Unix-milliseconds timestamp (UTC, millisecond precision).
pub fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Formatting a valid OffsetDateTime as RFC 3339 cannot fail for years 0..=9999.
    t.format(&Rfc3339).unwrap_or_default()
}

/// Parses a duration such as `90s`, `15m`, `1h`, `30d` (one number, one unit).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit (use s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number"))?;
    let secs = match unit {
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "'{text}' has unknown unit '{unit}' (use s, m, h or d)"
            ));
        }
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        let cases = [
            ("seconds", "90s", Ok(Duration::from_secs(90))),
            ("minutes", "15m", Ok(Duration::from_secs(900))),
            ("hours", "1h", Ok(Duration::from_secs(3600))),
            ("days", "30d", Ok(Duration::from_secs(30 * 86_400))),
            ("millis", "250ms", Ok(Duration::from_millis(250))),
        ];
        for (label, input, want) in cases {
            assert_eq!(parse_duration(input), want, "{label}");
        }
        for bad in ["", "10", "h", "10y", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rfc3339_round_numbers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
