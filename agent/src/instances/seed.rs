//! The cloud-init NoCloud seed: an ISO labelled `cidata` holding `meta-data` (instance id,
//! hostname), `user-data` (the administrator's password as a SHA-512 crypt hash, never the
//! plaintext) and, for an instance with NICs, `network-config` (v2: each NIC by its MAC; DHCP
//! for IPv4, the EIP, gateway and routes for IPv6). Built with genisoimage from a private temporary directory.

use super::tool::{self, ToolError};
use plinth_common::api::AgentNic;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The guest administrator's password. Its `Debug` is redacted, so it cannot reach a log.
#[derive(Clone)]
pub struct AdminPassword(String);

impl AdminPassword {
    pub fn new(text: String) -> AdminPassword {
        AdminPassword(text)
    }
}

impl fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminPassword(<redacted>)")
    }
}

pub struct Seed<'a> {
    pub instance_id: &'a str,
    pub hostname: &'a str,
    pub password: &'a AdminPassword,
    pub nics: &'a [AgentNic],
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("writing the seed files")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tool(#[from] ToolError),
}

/// Writes the seed ISO to `out` (mode 0600).
pub async fn write(seed: &Seed<'_>, out: &Path) -> Result<(), SeedError> {
    let hash = hash_password(seed.password).await?;
    let staging = tempfile::Builder::new().prefix("plinth-seed-").tempdir()?;
    write_private(&staging.path().join("user-data"), &user_data(&hash))?;
    write_private(
        &staging.path().join("meta-data"),
        &meta_data(seed.instance_id, seed.hostname),
    )?;
    let out_arg = out.as_os_str();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-quiet".as_ref(),
        "-output".as_ref(),
        out_arg,
        "-volid".as_ref(),
        "cidata".as_ref(),
        "-joliet".as_ref(),
        "-rock".as_ref(),
        "user-data".as_ref(),
        "meta-data".as_ref(),
    ];
    if !seed.nics.is_empty() {
        write_private(
            &staging.path().join("network-config"),
            &network_config(seed.nics),
        )?;
        args.push("network-config".as_ref());
    }
    let made = tool::run("genisoimage", &args, Some(staging.path())).await;
    if made.is_err() {
        let _ = std::fs::remove_file(out);
    }
    made?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A SHA-512 crypt (`$6$`) hash with a random salt; CPU-bound, so off the async threads.
async fn hash_password(password: &AdminPassword) -> Result<String, SeedError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        sha_crypt::sha512_simple(&password.0, &sha_crypt::Sha512Params::default())
            .map_err(|e| SeedError::Hash(format!("{e:?}")))
    })
    .await
    .map_err(|e| SeedError::Hash(e.to_string()))?
}

/// `chpasswd.users` is what current cloud-init reads; `chpasswd.list` is what cloud-init before
/// 22.2 (CentOS 7, older Ubuntu) reads and newer ones still honour. Both carry the hash.
fn user_data(hash: &str) -> String {
    // A crypt hash is only `./0-9A-Za-z$=`: safe unquoted in the block scalar.
    format!(
        "#cloud-config
ssh_pwauth: true
disable_root: false
chpasswd:
  expire: false
  users:
    - name: root
      password: {quoted}
      type: hash
  list: |
    root:{hash}
",
        quoted = quote(hash),
    )
}

/// network-config v2, the bare document cloud-init 22.x and later read from a NoCloud seed. Each
/// NIC is matched by its MAC and named `eth<N>` in the order given (cloud-init's networkd
/// renderer matches on both name and MAC, so `set-name` makes the name one the NIC has). An
/// IPv4 NIC takes its EIP and its segment's routes by DHCP from the host (network/dhcp.rs), so a
/// change of the route policy reaches it at its next renewal; an IPv6 one has its EIP here and
/// its routes from the host's router advertisements, so a change reaches it within seconds. A
/// prefix shorter than /64, which the host does not serve, has the routes of its policy here,
/// through the gateway (`none` leaves only the on-link route of the prefix). Any other NIC
/// (`en*`: one hot-plugged later keeps the kernel's name) asks DHCP and DHCPv6 too, so an EIP
/// bound while the guest runs needs no login.
fn network_config(nics: &[AgentNic]) -> String {
    let mut out = String::from("version: 2\nethernets:\n");
    for (i, nic) in nics.iter().enumerate() {
        let name = format!("eth{i}");
        out.push_str(&format!(
            "  {name}:\n    match:\n      macaddress: {mac}\n    set-name: {name}\n",
            mac = quote(&nic.mac),
        ));
        if nic.address.parse::<std::net::Ipv4Addr>().is_ok() {
            out.push_str("    dhcp4: true\n");
            continue;
        }
        out.push_str(&format!(
            "    addresses: [{}]\n",
            quote(&format!("{}/{}", nic.address, nic.prefix_len))
        ));
        if !nic.routes.is_empty() && !crate::network::dhcp::v6_served(nic.prefix_len) {
            out.push_str("    routes:\n");
            for to in &nic.routes {
                out.push_str(&format!(
                    "      - to: {}\n        via: {}\n",
                    quote(to),
                    quote(&nic.gateway)
                ));
            }
        }
    }
    // Keyed by the pattern itself: cloud-init 22.4's v2 parser names an entry without
    // `set-name` by its key, and its networkd renderer matches on that name.
    out.push_str("  \"en*\":\n    match:\n      name: \"en*\"\n    dhcp4: true\n    dhcp6: true\n");
    out
}

fn meta_data(instance_id: &str, hostname: &str) -> String {
    format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        quote(instance_id),
        quote(hostname)
    )
}

/// A YAML double-quoted scalar (JSON strings are YAML).
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn isoinfo(iso: &Path, file: &str) -> String {
        let out = tool::run(
            "isoinfo",
            &[
                "-R".as_ref(),
                "-x".as_ref(),
                file.as_ref(),
                "-i".as_ref(),
                iso.as_os_str(),
            ],
            None,
        )
        .await
        .expect("isoinfo reads the seed");
        String::from_utf8(out).expect("utf-8")
    }

    /// The hash in user-data checked by an independent implementation (OpenSSL's crypt).
    async fn openssl_crypt(password: &str, salt: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("openssl")
            .args(["passwd", "-6", "-salt", salt, "-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(password.as_bytes()).await.expect("write");
        drop(stdin);
        let out = child.wait_with_output().await.expect("openssl exits");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }

    #[tokio::test]
    async fn seed_iso_carries_a_hash_that_verifies_and_no_plaintext() {
        let dir = tempfile::tempdir().expect("tempdir");
        let iso = dir.path().join("seed.iso");
        let password = "Corr3ct horse: \"battery\" 'staple'";
        let seed = Seed {
            instance_id: "inst-5eed",
            hostname: "web-1",
            password: &AdminPassword::new(password.into()),
            nics: &[],
        };
        write(&seed, &iso).await.expect("seed built");
        let mode = std::fs::metadata(&iso).expect("seed").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let meta = isoinfo(&iso, "/meta-data").await;
        assert_eq!(
            meta,
            "instance-id: \"inst-5eed\"\nlocal-hostname: \"web-1\"\n"
        );
        let user = isoinfo(&iso, "/user-data").await;
        assert!(user.starts_with("#cloud-config\n"), "{user}");
        assert!(user.contains("ssh_pwauth: true"), "{user}");
        assert!(
            !user.contains(password),
            "the plaintext must not be in the seed"
        );
        assert!(!user.contains("Corr3ct"), "no part of the plaintext either");

        let hash = user
            .lines()
            .find_map(|l| l.trim().strip_prefix("password: "))
            .map(|q| serde_json::from_str::<String>(q).expect("quoted hash"))
            .expect("a password line");
        assert!(hash.starts_with("$6$"), "{hash}");
        assert!(user.contains(&format!("root:{hash}")), "the list form too");
        assert!(sha_crypt::sha512_check(password, &hash).is_ok());
        assert!(sha_crypt::sha512_check("wrong", &hash).is_err());
        let salt = hash.split('$').nth(2).expect("salt");
        assert_eq!(openssl_crypt(password, salt).await, hash);

        // The volume label cloud-init looks for.
        let header = tool::run(
            "isoinfo",
            &["-d".as_ref(), "-i".as_ref(), iso.as_os_str()],
            None,
        )
        .await
        .expect("isoinfo -d");
        assert!(String::from_utf8_lossy(&header).contains("Volume id: cidata"));
        // No NICs, no network-config: cloud-init keeps the image's own.
        let listing = tool::run(
            "isoinfo",
            &["-R".as_ref(), "-f".as_ref(), "-i".as_ref(), iso.as_os_str()],
            None,
        )
        .await
        .expect("isoinfo -f");
        assert!(!String::from_utf8_lossy(&listing).contains("network-config"));
    }

    fn nic(mac: &str, address: &str, prefix_len: u8, gateway: &str, routes: &[&str]) -> AgentNic {
        AgentNic {
            mac: mac.into(),
            uplink: plinth_common::api::Uplink {
                nic: "bond1".into(),
                vlan: Some(100),
            },
            address: address.into(),
            prefix_len,
            gateway: gateway.into(),
            routes: routes.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn network_config_per_route_policy() {
        let config = network_config(&[
            nic(
                "52:54:00:00:00:01",
                "203.0.113.10",
                24,
                "203.0.113.1",
                &["0.0.0.0/0"],
            ),
            // A /48 is not served by the host's RAs: its routes are here.
            nic(
                "52:54:00:00:00:02",
                "2001:db8:1::10",
                48,
                "2001:db8:1::1",
                &["2001:db8:ff::/48", "2001:db8:fe::/48"],
            ),
            nic("52:54:00:00:00:03", "198.51.100.7", 28, "198.51.100.1", &[]),
            // A /64 is: only its address is here.
            nic(
                "52:54:00:00:00:04",
                "2001:db8:2::10",
                64,
                "2001:db8:2::1",
                &["::/0"],
            ),
        ]);
        assert_eq!(
            config,
            r#"version: 2
ethernets:
  eth0:
    match:
      macaddress: "52:54:00:00:00:01"
    set-name: eth0
    dhcp4: true
  eth1:
    match:
      macaddress: "52:54:00:00:00:02"
    set-name: eth1
    addresses: ["2001:db8:1::10/48"]
    routes:
      - to: "2001:db8:ff::/48"
        via: "2001:db8:1::1"
      - to: "2001:db8:fe::/48"
        via: "2001:db8:1::1"
  eth2:
    match:
      macaddress: "52:54:00:00:00:03"
    set-name: eth2
    dhcp4: true
  eth3:
    match:
      macaddress: "52:54:00:00:00:04"
    set-name: eth3
    addresses: ["2001:db8:2::10/64"]
  "en*":
    match:
      name: "en*"
    dhcp4: true
    dhcp6: true
"#
        );
    }

    #[tokio::test]
    async fn a_seed_with_nics_carries_their_network_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        let iso = dir.path().join("seed.iso");
        let nics = [nic(
            "52:54:00:00:00:01",
            "203.0.113.10",
            24,
            "203.0.113.1",
            &["0.0.0.0/0"],
        )];
        let seed = Seed {
            instance_id: "inst-5eed",
            hostname: "web-1",
            password: &AdminPassword::new("pw".into()),
            nics: &nics,
        };
        write(&seed, &iso).await.expect("seed built");
        assert_eq!(
            isoinfo(&iso, "/network-config").await,
            network_config(&nics)
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = AdminPassword::new("hunter22".into());
        assert!(!format!("{p:?}").contains("hunter22"));
    }
}
