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

/// A typed id: a platform-made id of one kind (`host-…`, `inst-…`), checked once where it
/// enters (an API path, a request field) so that nothing downstream sees a malformed one.
/// It reads as a `&str` everywhere (`Deref`), serialises as the plain string.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id's prefix, before its `-`.
            pub const PREFIX: &'static str = $prefix;
            /// What the id names, in words (for messages).
            pub const WHAT: &'static str = $what;

            /// A new random id of this kind.
            pub fn generate() -> $name {
                $name(new_id($prefix))
            }

            /// `value` if it is an id of this kind.
            pub fn parse(value: &str) -> Option<$name> {
                is_id($prefix, value).then(|| $name(value.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = MalformedId;
            fn from_str(value: &str) -> Result<$name, MalformedId> {
                $name::parse(value).ok_or(MalformedId { what: $what, prefix: $prefix })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

/// A string that is not an id of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not {what} id ({prefix}- and hexadecimal digits)")]
pub struct MalformedId {
    pub what: &'static str,
    pub prefix: &'static str,
}

typed_id!(/// A compute host.
    HostId, "host", "a host");
typed_id!(/// An instance.
    InstanceId, "inst", "an instance");
typed_id!(/// An image of the repository.
    ImageId, "img", "an image");
typed_id!(/// A bare-metal server.
    BaremetalId, "bm", "a bare-metal server");
typed_id!(/// An external segment.
    SegmentId, "seg", "a segment");
typed_id!(/// An EIP.
    EipId, "eip", "an EIP");
typed_id!(/// A tenant.
    TenantId, "tenant", "a tenant");
typed_id!(/// An operation (long-running work).
    OperationId, "op", "an operation");

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
    fn typed_ids_parse_their_kind_only() {
        let id = HostId::generate();
        assert_eq!(id.parse::<HostId>().as_ref(), Ok(&id));
        assert_eq!(
            "inst-00ff".parse::<HostId>(),
            Err(MalformedId {
                what: "a host",
                prefix: "host"
            })
        );
        assert!("host-1/../x".parse::<HostId>().is_err());
        let json: Result<InstanceId, _> = serde_json::from_str("\"inst-0a\"");
        assert_eq!(json.map(String::from).ok().as_deref(), Some("inst-0a"));
        assert!(serde_json::from_str::<InstanceId>("\"inst-\"").is_err());
        assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{id}\"")));
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
