//! Requests, checked into what the agent relies on. A create: names that are safe as file
//! names, URL segments and domain names; a hostname; a SHA-256; a known format (sizes are the
//! coordinator's policy; libvirt and qemu-img refuse what they cannot run). A migration: URIs
//! and absolute paths libvirt can be handed, and a time limit.

use super::InstanceError;
use super::cache::{CachedImage, ImageFormat};
use super::seed::AdminPassword;
use plinth_common::api::{AgentCreateInstance, AgentMigrate, AgentNic, AgentPrepared};
use std::net::IpAddr;
use std::time::Duration;

/// The longest a live migration may be given (the coordinator's own limit is a day too).
pub const MAX_MIGRATION_TIMEOUT_S: u64 = 86_400;

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
    /// `<hostdev>` elements the domain is defined with (its vGPU or GPU).
    pub hostdevs: Vec<String>,
    /// One per bound EIP, each on its uplink's bridge.
    pub nics: Vec<AgentNic>,
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
        for (i, nic) in req.nics.iter().enumerate() {
            check_nic(i, nic)?;
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
            hostdevs: Vec::new(),
            nics: req.nics,
        })
    }
}

/// A live migration out of this host.
#[derive(Debug, Clone)]
pub struct MigrateSpec {
    pub dest_uri: String,
    pub migrate_uri: Option<String>,
    pub prepared: AgentPrepared,
    pub timeout: Duration,
    /// MiB/s; `None`: unlimited.
    pub bandwidth_mib_s: Option<u64>,
    /// The disks are on storage both hosts share: not copied, not removed here after.
    pub shared_storage: bool,
}

impl MigrateSpec {
    pub fn check(req: AgentMigrate) -> Result<MigrateSpec, InstanceError> {
        check_uri("dest_uri", &req.dest_uri)?;
        if let Some(uri) = &req.migrate_uri {
            check_uri("migrate_uri", uri)?;
        }
        check_path("prepared.disk_path", &req.prepared.disk_path)?;
        check_path("prepared.seed_path", &req.prepared.seed_path)?;
        if let Some(iso) = &req.prepared.iso_path {
            check_path("prepared.iso_path", iso)?;
        }
        if !(1..=MAX_MIGRATION_TIMEOUT_S).contains(&req.timeout_s) {
            return Err(invalid(format!(
                "timeout_s must be 1 to {MAX_MIGRATION_TIMEOUT_S}"
            )));
        }
        if req.bandwidth_mib_s == Some(0) {
            return Err(invalid(
                "bandwidth_mib_s must be at least 1 (or absent: unlimited)".into(),
            ));
        }
        Ok(MigrateSpec {
            dest_uri: req.dest_uri,
            migrate_uri: req.migrate_uri,
            prepared: req.prepared,
            timeout: Duration::from_secs(req.timeout_s),
            bandwidth_mib_s: req.bandwidth_mib_s,
            shared_storage: req.shared_storage,
        })
    }
}

/// A NIC the guest can be given: a unicast MAC, an address of one family with its gateway and
/// routes, a Linux interface name for the uplink.
pub fn check_nic(i: usize, nic: &AgentNic) -> Result<(), InstanceError> {
    let field = |name: &str| format!("nics[{i}].{name}");
    let octets: Vec<&str> = nic.mac.split(':').collect();
    let mac_ok = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(octets[0], 16).is_ok_and(|first| first & 1 == 0);
    if !mac_ok {
        return Err(invalid(format!(
            "{} '{}' is not a unicast MAC like 52:54:00:12:34:56",
            field("mac"),
            nic.mac
        )));
    }
    let ip = |name: &str, text: &str| -> Result<IpAddr, InstanceError> {
        text.parse()
            .map_err(|_| invalid(format!("{} '{text}' is not an IP address", field(name))))
    };
    let address = ip("address", &nic.address)?;
    let gateway = ip("gateway", &nic.gateway)?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if address.is_ipv4() != gateway.is_ipv4() || nic.prefix_len > max {
        return Err(invalid(format!(
            "{}: the address, gateway and prefix length {} are not of one IP family",
            field("address"),
            nic.prefix_len
        )));
    }
    for route in &nic.routes {
        let ok = route.split_once('/').is_some_and(|(net, len)| {
            net.parse::<IpAddr>()
                .is_ok_and(|n| n.is_ipv4() == address.is_ipv4())
                && len.parse::<u8>().is_ok_and(|l| l <= max)
        });
        if !ok {
            return Err(invalid(format!(
                "{} '{route}' is not a CIDR of the address's family",
                field("routes")
            )));
        }
    }
    let name = &nic.uplink.nic;
    if name.is_empty()
        || name.len() > 15
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "{} '{name}' is not a network interface name",
            field("uplink.nic")
        )));
    }
    if nic.uplink.vlan.is_some_and(|v| !(1..=4094).contains(&v)) {
        return Err(invalid(format!(
            "{} must be 1 to 4094",
            field("uplink.vlan")
        )));
    }
    Ok(())
}

/// `scheme://rest` with nothing blank or unprintable (libvirt takes it as a C string).
fn check_uri(field: &str, value: &str) -> Result<(), InstanceError> {
    let ok = value
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} '{value}' is not a URI (scheme://host...)"
        )))
    }
}

/// An absolute path with nothing unprintable in it.
fn check_path(field: &str, value: &str) -> Result<(), InstanceError> {
    if value.starts_with('/') && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} '{value}' is not an absolute path"
        )))
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
            devices: Vec::new(),
            nics: vec![AgentNic {
                mac: "52:54:00:ab:cd:ef".into(),
                uplink: plinth_common::api::Uplink {
                    nic: "bond1".into(),
                    vlan: Some(100),
                },
                address: "203.0.113.10".into(),
                prefix_len: 24,
                gateway: "203.0.113.1".into(),
                routes: vec!["0.0.0.0/0".into()],
            }],
        }
    }

    #[test]
    fn refuses_nics_the_guest_cannot_be_given() {
        type Spoil = fn(&mut AgentNic);
        let cases: [(&str, Spoil, &str); 8] = [
            (
                "multicast MAC",
                |n| n.mac = "01:00:5e:00:00:01".into(),
                "nics[0].mac",
            ),
            (
                "short MAC",
                |n| n.mac = "52:54:00:ab:cd".into(),
                "nics[0].mac",
            ),
            (
                "bad address",
                |n| n.address = "203.0.113".into(),
                "nics[0].address",
            ),
            (
                "mixed families",
                |n| n.gateway = "2001:db8::1".into(),
                "nics[0].address",
            ),
            ("prefix too long", |n| n.prefix_len = 33, "nics[0].address"),
            (
                "route of the other family",
                |n| n.routes = vec!["::/0".into()],
                "nics[0].routes",
            ),
            (
                "NIC name with a slash",
                |n| n.uplink.nic = "eth/1".into(),
                "nics[0].uplink.nic",
            ),
            ("VLAN 0", |n| n.uplink.vlan = Some(0), "nics[0].uplink.vlan"),
        ];
        for (label, spoil, field) in cases {
            let mut req = request();
            spoil(&mut req.nics[0]);
            match CreateSpec::check(req) {
                Err(InstanceError::Invalid(message)) => {
                    assert!(message.starts_with(field), "{label}: {message}")
                }
                other => panic!("{label}: {other:?}"),
            }
        }
    }

    #[test]
    fn accepts_a_good_request() {
        let spec = CreateSpec::check(request()).expect("valid");
        assert_eq!(spec.image.sha256, "ab".repeat(32), "lowercased");
        assert_eq!(spec.image.format, ImageFormat::Qcow2);
        assert!(!format!("{spec:?}").contains("s3cret-pass"));
    }

    fn migrate() -> AgentMigrate {
        AgentMigrate {
            dest_uri: "qemu+tls://10.0.0.8/system".into(),
            migrate_uri: Some("tcp://10.0.0.8".into()),
            prepared: AgentPrepared {
                disk_path: "/var/lib/plinth-agent/instances/i/disk.qcow2".into(),
                seed_path: "/var/lib/plinth-agent/instances/i/seed.iso".into(),
                iso_path: None,
            },
            timeout_s: 600,
            bandwidth_mib_s: Some(100),
            shared_storage: false,
        }
    }

    #[test]
    fn checks_a_migration() {
        let spec = MigrateSpec::check(migrate()).expect("valid");
        assert_eq!(spec.timeout, Duration::from_secs(600));
        assert_eq!(spec.bandwidth_mib_s, Some(100));
        type Edit = fn(&mut AgentMigrate);
        let cases: [(&str, Edit, &str); 8] = [
            ("no scheme", |r| r.dest_uri = "10.0.0.8".into(), "dest_uri"),
            (
                "a NUL",
                |r| r.dest_uri = "qemu+tls://a\0b/system".into(),
                "dest_uri",
            ),
            (
                "migrate_uri",
                |r| r.migrate_uri = Some("tcp:// x".into()),
                "migrate_uri",
            ),
            (
                "relative disk",
                |r| r.prepared.disk_path = "disk.qcow2".into(),
                "prepared.disk_path",
            ),
            (
                "seed",
                |r| r.prepared.seed_path = String::new(),
                "prepared.seed_path",
            ),
            (
                "iso",
                |r| r.prepared.iso_path = Some("x.iso".into()),
                "prepared.iso_path",
            ),
            ("no time", |r| r.timeout_s = 0, "timeout_s"),
            (
                "no bandwidth",
                |r| r.bandwidth_mib_s = Some(0),
                "bandwidth_mib_s",
            ),
        ];
        for (label, edit, field) in cases {
            let mut req = migrate();
            edit(&mut req);
            let err = MigrateSpec::check(req).expect_err(label);
            assert!(matches!(err, InstanceError::Invalid(_)), "{label}");
            assert!(err.to_string().contains(field), "{label}: {err}");
        }
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
