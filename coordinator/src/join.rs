//! More coordinators for a region in PostgreSQL, as `kubeadm init --upload-certs` does it: a
//! member seals the region's CA key and master key under a random join key, keeps the sealed
//! bundle in the database and shows the key once; `plinth-coordinator join` on another machine
//! reads the bundle, opens it with the key, and issues that coordinator its own server and
//! client certificates. The database alone does not open the bundle, nor does the key alone.
//! A join key lasts until it expires or a newer one replaces it.

use crate::db::{Store, StoreError, query};
use crate::init::Member;
use crate::paths::DataDir;
use crate::secrets::Secrets;
use anyhow::{Context, bail};
use plinth_common::timefmt::now_ms;
use plinth_common::tls::Ca;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a join key lasts unless given.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const PREFIX: &str = "pjk-";

#[derive(Serialize, Deserialize)]
struct Bundle {
    ca_cert: String,
    ca_key: String,
    /// The master key file's text (hex).
    master_key: String,
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The sealing secrets of a join key (`pjk-` and 64 hex digits).
fn sealer(key: &str) -> anyhow::Result<Secrets> {
    let raw = key
        .strip_prefix(PREFIX)
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| b.len() == 32)
        .context("the join key is not pjk- and 64 hex digits; copy it whole from the member that made it")?;
    Ok(Secrets::of_key(&raw)?)
}

impl Store {
    /// Whether the store already holds a region (its first admin token exists).
    pub async fn holds_region(&self) -> Result<bool, StoreError> {
        let n = crate::db::query_scalar::<i64>("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    async fn put_join_bundle(
        &self,
        hash: &str,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        query("DELETE FROM region_join").execute(&mut tx).await?;
        query("INSERT INTO region_join (name, key_hash, sealed, expires_at) VALUES ('join', $1, $2, $3)")
            .bind(hash)
            .bind(sealed)
            .bind(expires_at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sealed bundle of the join key hashing to `hash`, while it lasts.
    async fn join_bundle(&self, hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        Ok(crate::db::query_scalar::<String>(
            "SELECT sealed FROM region_join WHERE key_hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Makes a new join key for the region of member `dir` (replacing any earlier one), lasting
/// `ttl`; answers the key, to be shown once.
pub async fn issue(dir: &DataDir, store: &Store, ttl: Duration) -> anyhow::Result<String> {
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let bundle = Bundle {
        ca_cert: read(dir.ca_cert())?,
        ca_key: read(dir.ca_key())?,
        master_key: read(dir.master_key())?,
    };
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| anyhow::anyhow!("random generation failed"))?;
    let key = format!("{PREFIX}{}", hex::encode(raw));
    let sealed = sealer(&key)?.seal(&serde_json::to_string(&bundle)?)?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    store
        .put_join_bundle(&key_hash(&key), &sealed, now_ms().saturating_add(ttl_ms))
        .await?;
    Ok(key)
}

/// Makes `member` a coordinator of the region in its database with join key `key`.
pub async fn join(member: &Member<'_>, key: &str) -> anyhow::Result<String> {
    let Some(url) = member.database_url else {
        bail!("joining needs --database-url: the region's PostgreSQL database");
    };
    let database = crate::db::Database::from_url(Some(url), &member.dir.database())
        .map_err(anyhow::Error::msg)?;
    if !matches!(database, crate::db::Database::Postgres(_)) {
        bail!("joining needs a PostgreSQL database: a SQLite region has one coordinator");
    }
    let sealer = sealer(key)?;
    let store = Store::connect(&database, &crate::jobs::Jobs::new())
        .await
        .with_context(|| format!("opening the store ({database})"))?;
    let Some(sealed) = store.join_bundle(&key_hash(key), now_ms()).await? else {
        bail!(
            "no such join key, or it expired: make a new one on a member with `plinth-coordinator join-key`"
        );
    };
    store.pool().close().await;
    let bundle: Bundle = serde_json::from_str(
        &sealer
            .unseal(&sealed)
            .context("the join key does not open the region's bundle")?,
    )?;
    let ca = Ca::load(&bundle.ca_cert, &bundle.ca_key)?;
    member
        .make(&ca, &bundle.ca_key, Some(&bundle.master_key), false)
        .await?;
    Ok(plinth_common::tls::ca_hash(ca.cert_pem())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::db::store_test! {
        /// A join key opens the bundle it sealed, only until it expires or a newer one replaces
        /// it; the store keeps only the sealed bundle and the key's hash.
        async fn a_join_key_opens_its_bundle_until_replaced(store, dir) -> anyhow::Result<()> {
            let member = DataDir::new(dir.path().join("member"));
            std::fs::create_dir_all(member.root())?;
            let (ca, ca_key) = Ca::generate("test CA")?;
            std::fs::write(member.ca_cert(), ca.cert_pem())?;
            std::fs::write(member.ca_key(), &ca_key)?;
            std::fs::write(member.master_key(), "ab".repeat(32))?;
            let key = issue(&member, &store, DEFAULT_TTL).await?;
            let sealed = store.join_bundle(&key_hash(&key), now_ms()).await?.context("bundle")?;
            assert!(!sealed.contains(&ca_key) && !sealed.contains(&key));
            let bundle: Bundle = serde_json::from_str(&sealer(&key)?.unseal(&sealed)?)?;
            assert_eq!((bundle.ca_key, bundle.master_key), (ca_key, "ab".repeat(32)));
            assert!(store.join_bundle(&key_hash(&key), now_ms() + 3_600_001).await?.is_none());
            let newer = issue(&member, &store, DEFAULT_TTL).await?;
            assert!(store.join_bundle(&key_hash(&key), now_ms()).await?.is_none());
            assert!(store.join_bundle(&key_hash(&newer), now_ms()).await?.is_some());
            assert!(sealer(&key)?.unseal(&sealed).is_ok() && sealer(&newer)?.unseal(&sealed).is_err());
            assert!(sealer("pjk-12").is_err());
            Ok(())
        }
    }
}
