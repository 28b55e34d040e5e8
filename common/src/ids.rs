//! Resource ids: a short kind prefix and random lowercase hex (`host-4f2a9c1e0b7d`), readable
//! in logs and safe in URLs and certificate names.

use rand::Rng;

/// A new id `<prefix>-<12 hex digits>` (48 random bits).
pub fn new_id(prefix: &str) -> String {
    let n: u64 = rand::thread_rng().r#gen::<u64>() & 0xffff_ffff_ffff;
    format!("{prefix}-{n:012x}")
}

/// Random bytes as lowercase hex: for secrets (tokens), never for ids.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// A name an operator chooses (cluster ids): 1–63 of `a-z 0-9 -`, starting with a letter or
/// digit, as DNS labels are.
pub fn validate_slug(field: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} '{value}' must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        ))
    }
}

/// An id the platform made: `<prefix>-` then hex. Checked before it reaches a query or a
/// certificate.
pub fn is_id(prefix: &str, value: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_hex() {
        let id = new_id("host");
        assert!(is_id("host", &id), "{id}");
        assert!(!is_id("tenant", &id));
        assert!(!is_id("host", "host-"));
        assert!(!is_id("host", "host-zz"));
        assert!(!is_id("host", "host-1/../x"));
    }

    #[test]
    fn slugs() {
        for good in ["a", "prod-1", "az-3b", "0"] {
            assert!(validate_slug("cluster", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a b", &"x".repeat(64)] {
            assert!(validate_slug("cluster", bad).is_err(), "{bad}");
        }
    }
}
