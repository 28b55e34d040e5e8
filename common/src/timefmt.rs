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

/// Parses a duration such as `90s`, `15m`, `1h`, `30d` (one number, one unit). A value whose
/// seconds do not fit in 64 bits is refused, never wrapped.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit (use s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number (at most 20 digits)"))?;
    let per_unit: u64 = match unit {
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "'{text}' has unknown unit '{unit}' (use s, m, h or d)"
            ));
        }
    };
    let secs = n
        .checked_mul(per_unit)
        .ok_or_else(|| format!("'{text}' is too long"))?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The Unix-milliseconds timestamp `ttl` after `from_ms`, or `None` when it would not fit
/// (the one place a duration becomes a timestamp; callers bound `ttl` first and refuse `None`).
pub fn expiry_after(from_ms: i64, ttl: std::time::Duration) -> Option<i64> {
    let ms = i64::try_from(ttl.as_millis()).ok()?;
    let at = from_ms.checked_add(ms)?;
    // Beyond what RFC 3339 can write (year 9999) a timestamp cannot be shown; refuse it too.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .filter(|t| t.year() <= 9999)
        .map(|_| at)
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
    fn durations_that_overflow_are_refused() {
        let cases = [
            ("u64 seconds overflow in days", "213503982334602d"),
            ("u64 seconds overflow in hours", "5124095576030432h"),
            ("u64 seconds overflow in minutes", "307445734561825861m"),
            ("the number itself overflows u64", "99999999999999999999s"),
        ];
        for (label, input) in cases {
            assert!(parse_duration(input).is_err(), "{label}: {input}");
        }
        // The value fits in u64 seconds: parse_duration takes it, the bounds refuse it.
        assert_eq!(
            parse_duration("99999999999d"),
            Ok(Duration::from_secs(99_999_999_999 * 86_400))
        );
        assert_eq!(
            parse_duration("213503982334601d"),
            Ok(Duration::from_secs(213_503_982_334_601 * 86_400))
        );
    }

    #[test]
    fn expiries() {
        let now = 1_700_000_000_000;
        let cases = [
            (
                "an hour",
                now,
                Duration::from_secs(3600),
                Some(now + 3_600_000),
            ),
            ("zero", now, Duration::ZERO, Some(now)),
            (
                "a year",
                now,
                Duration::from_secs(365 * 86_400),
                Some(now + 31_536_000_000),
            ),
            (
                "past year 9999",
                now,
                Duration::from_secs(99_999_999_999 * 86_400),
                None,
            ),
            (
                "past i64 milliseconds",
                now,
                Duration::from_secs(u64::MAX),
                None,
            ),
            (
                "adding overflows",
                i64::MAX - 1,
                Duration::from_secs(1),
                None,
            ),
        ];
        for (label, from, ttl, want) in cases {
            assert_eq!(expiry_after(from, ttl), want, "{label}");
        }
    }

    #[test]
    fn rfc3339_round_numbers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
