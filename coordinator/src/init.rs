//! `plinth-coordinator init`: a new region's CA, the coordinator's certificates, the database
//! and the first admin token.

use crate::db::{Database, Store};
use crate::http::auth::new_token;
use crate::own_certs::OwnCerts;
use crate::paths::{DataDir, write_file};
use crate::tenants::store::tokens::NewApiToken;
use anyhow::{Context, bail};
use plinth_common::api::TokenRole;
use plinth_common::timefmt::now_ms;
use plinth_common::tls::{Ca, ca_hash};
use std::net::IpAddr;

pub struct Initialised {
    pub admin_token: String,
    pub ca_hash: String,
}

/// This machine's interface addresses (v4 and v6, loopback included).
fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        // Link-local v6 addresses need a zone to be dialled; no agent connects by them.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .collect()
}

/// Names the coordinator's server certificate answers to: the given ones, loopback, this
/// machine's interface addresses and its hostname.
fn server_names(extra: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ];
    for ip in local_addresses() {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let mut dns = vec!["localhost".to_string()];
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim();
        if !name.is_empty() && name != "localhost" {
            dns.push(name.to_string());
        }
    }
    for name in extra {
        match name.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(name) => dns.push(name.clone()),
            Err(_) => {}
        }
    }
    (ips, dns)
}

/// Makes the region in `dir`, with its store in `database_url` (PostgreSQL or a SQLite file;
/// the data directory's plinth.db when none), which the generated config then names.
pub async fn init(
    dir: &DataDir,
    sans: &[String],
    listen: &str,
    database_url: Option<&str>,
) -> anyhow::Result<Initialised> {
    let (ca, ca_key) = Ca::generate("plinth region CA")?;
    let member = Member {
        dir,
        sans,
        listen,
        database_url,
    };
    let store = member.make(&ca, &ca_key, None, true).await?;
    let admin_token = create_admin_token(&store, "initial admin", "init").await?;
    Ok(Initialised {
        admin_token,
        ca_hash: ca_hash(ca.cert_pem())?,
    })
}

/// A coordinator's data directory being made: by `init` for a new region, by `join` for one
/// more coordinator of a region in PostgreSQL.
pub struct Member<'a> {
    pub dir: &'a DataDir,
    pub sans: &'a [String],
    pub listen: &'a str,
    pub database_url: Option<&'a str>,
}

impl Member<'_> {
    /// Writes the region's CA (`ca_key`), its master key (`master`, hex; a new one when none)
    /// and this coordinator's own certificates and config into the directory, and opens the
    /// store; `new_region` refuses a database that already holds one. The CA certificate is
    /// written last: its presence marks the directory initialised.
    pub async fn make(
        &self,
        ca: &Ca,
        ca_key: &str,
        master: Option<&str>,
        new_region: bool,
    ) -> anyhow::Result<Store> {
        let dir = self.dir;
        let database =
            Database::from_url(self.database_url, &dir.database()).map_err(anyhow::Error::msg)?;
        if dir.is_initialised() {
            bail!("{} is already initialised", dir.root().display());
        }
        plinth_common::fsutil::create_private_dir(dir.root())
            .with_context(|| format!("creating {}", dir.root().display()))?;
        let store = Store::connect(&database, &crate::jobs::Jobs::new())
            .await
            .with_context(|| format!("opening the store ({database})"))?;
        if new_region && store.holds_region().await? {
            bail!(
                "{database} already holds a region: join it (`plinth-coordinator join`) or give an empty database"
            );
        }
        let (ips, dns_names) = server_names(self.sans);
        let own = OwnCerts::issue(ca, ips, dns_names)?;
        write_file(&dir.ca_key(), ca_key.as_bytes(), 0o600)?;
        if let Some(master) = master {
            write_file(&dir.master_key(), master.as_bytes(), 0o600)?;
        }
        own.write(dir)?;
        let mut config = format!(
            "# plinth coordinator; flags and PLINTH_* variables override these.\ndata_dir = {:?}\nlisten = {:?}\nagent_cert_ttl = \"30d\"\n",
            dir.root().canonicalize()?.display().to_string(),
            self.listen
        );
        if let Some(url) = self.database_url {
            config.push_str(&format!("database_url = {url:?}\n"));
        }
        write_file(&dir.config(), config.as_bytes(), 0o600)?;
        crate::secrets::Secrets::load_or_create(&dir.master_key())?;
        crate::own_certs::record(dir, &store).await?;
        write_file(&dir.ca_cert(), ca.cert_pem().as_bytes(), 0o644)?;
        Ok(store)
    }
}

/// Stores a new admin token and returns its full text (shown once).
pub async fn create_admin_token(store: &Store, name: &str, actor: &str) -> anyhow::Result<String> {
    let (id, token, secret_hash) = new_token("tok");
    store
        .insert_api_token(&NewApiToken {
            id: &id,
            secret_hash: &secret_hash,
            role: TokenRole::Admin,
            tenant_id: None,
            name,
            created_at: now_ms(),
            expires_at: None,
            created_by: actor,
        })
        .await?;
    store.audit(actor, "create token", &id, name).await?;
    Ok(token)
}
