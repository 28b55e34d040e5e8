//! A create request, checked into what the agent relies on: names that are safe as file names,
//! URL segments and domain names; a hostname; a SHA-256; a known format. Sizes are the
//! coordinator's policy; libvirt and qemu-img refuse what they cannot run.

use super::InstanceError;
use super::cache::{CachedImage, ImageFormat};
use super::seed::AdminPassword;
use plinth_common::api::AgentCreateInstance;

#[derive(Debug)]
pub struct CreateSpec {
    pub instance_id: String,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub image_id: String,
    pub image: CachedImage,
    pub password: AdminPassword,
}

impl CreateSpec {
    pub fn check(req: AgentCreateInstance) -> Result<CreateSpec, InstanceError> {
        check_name("instance_id", &req.instance_id)?;
        check_name("image.id", &req.image.id)?;
        check_hostname(&req.hostname)?;
        let sha256 = req.image.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "image.sha256 '{}' is not 64 hex digits",
                req.image.sha256
            )));
        }
        let format = ImageFormat::parse(&req.image.format).ok_or_else(|| {
            invalid(format!(
                "image.format '{}' is neither qcow2 nor iso",
                req.image.format
            ))
        })?;
        if req.admin_password.is_empty() {
            return Err(invalid("admin_password is empty".into()));
        }
        Ok(CreateSpec {
            instance_id: req.instance_id,
            hostname: req.hostname,
            vcpus: req.vcpus,
            memory_bytes: req.memory_bytes,
            disk_bytes: req.disk_bytes,
            image_id: req.image.id,
            image: CachedImage {
                sha256,
                size_bytes: req.image.size_bytes,
                format,
            },
            password: AdminPassword::new(req.admin_password),
        })
    }
}

/// An id used as a directory name, a URL segment and a domain name: 1-64 of
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
pub fn check_name(field: &str, value: &str) -> Result<(), InstanceError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !value.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} '{value}' must be 1-64 of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.' or '-'"
        )))
    }
}

/// RFC 1123: dot-separated labels of 1-63 letters, digits and '-', 253 characters at most.
fn check_hostname(value: &str) -> Result<(), InstanceError> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if value.len() <= 253 && value.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(invalid(format!(
            "hostname '{value}' is not a host name (labels of letters, digits and '-')"
        )))
    }
}

fn invalid(message: String) -> InstanceError {
    InstanceError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::api::AgentImage;

    fn request() -> AgentCreateInstance {
        AgentCreateInstance {
            instance_id: "inst-0a1b".into(),
            hostname: "web-1.example".into(),
            vcpus: 1,
            memory_bytes: 64 << 20,
            disk_bytes: 1 << 30,
            image: AgentImage {
                id: "img-9".into(),
                sha256: "AB".repeat(32),
                size_bytes: 10,
                format: "qcow2".into(),
            },
            admin_password: "s3cret-pass".into(),
        }
    }

    #[test]
    fn accepts_a_good_request() {
        let spec = CreateSpec::check(request()).expect("valid");
        assert_eq!(spec.image.sha256, "ab".repeat(32), "lowercased");
        assert_eq!(spec.image.format, ImageFormat::Qcow2);
        assert!(!format!("{spec:?}").contains("s3cret-pass"));
    }

    #[test]
    fn refuses_what_is_unsafe_or_unknown() {
        type Edit = fn(&mut AgentCreateInstance);
        let cases: [(&str, Edit, &str); 9] = [
            (
                "path traversal",
                |r| r.instance_id = "../etc".into(),
                "instance_id",
            ),
            ("slash", |r| r.instance_id = "a/b".into(), "instance_id"),
            ("empty id", |r| r.instance_id = String::new(), "instance_id"),
            ("image id", |r| r.image.id = "img?x=1".into(), "image.id"),
            ("hostname", |r| r.hostname = "web_1".into(), "hostname"),
            ("hostname dash", |r| r.hostname = "-web".into(), "hostname"),
            ("sha256", |r| r.image.sha256 = "abc".into(), "image.sha256"),
            ("format", |r| r.image.format = "raw".into(), "image.format"),
            (
                "password",
                |r| r.admin_password = String::new(),
                "admin_password",
            ),
        ];
        for (label, edit, field) in cases {
            let mut req = request();
            edit(&mut req);
            let err = CreateSpec::check(req).expect_err(label);
            assert!(matches!(err, InstanceError::Invalid(_)), "{label}");
            assert!(err.to_string().contains(field), "{label}: {err}");
        }
    }
}
