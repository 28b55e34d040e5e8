//! The store's pool, migrations and error: `Store` is one handle whose methods live with
//! their resources (`hosts/store`, `images/store`, ...). SQLite (WAL) by default; the SQL stays
//! portable so PostgreSQL can follow.

use crate::hosts::store::index::HostIndex;
use plinth_common::tls::Revocations;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("setting the database file's mode")]
    Files(#[source] std::io::Error),
}

/// Creates `path` empty with mode 0600 if it is missing, and makes it 0600 if not.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .and_then(|_| plinth_common::fsutil::set_mode(path, 0o600))
        .map_err(StoreError::Files)
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    pub(crate) hosts: Arc<RwLock<HostIndex>>,
    /// Claims queue here rather than on SQLite's write lock, whose busy handler sleeps in
    /// growing steps instead of waking the next writer when the lock frees.
    pub(crate) claims: Arc<tokio::sync::Mutex<()>>,
    /// EIP allocations and releases queue here for the same reason (network/store/eips.rs).
    pub(crate) eips: Arc<tokio::sync::Mutex<()>>,
    /// Creates go to the claim writer (instances/store/claims.rs), which writes them in batches.
    pub(crate) claim_writer: crate::instances::store::claims::ClaimSender,
    /// Revoked agent certificates, for the client that calls agents (hosts/store/certificates.rs).
    pub(crate) revoked: Arc<Revocations>,
    /// Wakes the change feed's streams after commits that recorded events (events/store.rs).
    pub(crate) events: crate::events::store::Wake,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date,
    /// with its claim writer under a runner of its own that nothing stops: for short-lived
    /// users (init, the CLI commands, tests, benchmarks), whose writer ends with the process.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &crate::jobs::Jobs::new()).await
    }

    /// [`Store::open`] with the claim writer started on `jobs`: it stops when their shutdown
    /// begins, after writing the claims already queued (later creates fail as `Closed`).
    pub async fn open_with(path: &Path, jobs: &crate::jobs::Jobs) -> Result<Store, StoreError> {
        // SQLite makes its -wal and -shm files with the database file's mode: 0600 first.
        private_file(path)?;
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let side = std::path::PathBuf::from(side);
            if side.exists() {
                plinth_common::fsutil::set_mode(&side, 0o600).map_err(StoreError::Files)?;
            }
        }
        let (claim_writer, claim_queue) = tokio::sync::mpsc::unbounded_channel();
        let store = Store {
            pool,
            hosts: Arc::default(),
            claims: Arc::default(),
            eips: Arc::default(),
            claim_writer,
            revoked: Revocations::new(),
            events: Default::default(),
        };
        store.load_host_index().await?;
        store
            .load_revocations(plinth_common::timefmt::now_ms())
            .await?;
        store.load_gpu_index().await?;
        // The writer's copy sends nothing, so the writer ends once the last other copy is dropped.
        let (closed, _) = tokio::sync::mpsc::unbounded_channel();
        crate::instances::store::claims::start_writer(
            jobs,
            Store {
                claim_writer: closed,
                ..store.clone()
            },
            claim_queue,
        );
        Ok(store)
    }

    /// Agent certificates the coordinator refuses as servers (kept current by every revocation).
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revoked.clone()
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes: it takes SQLite's write lock when it begins (`IMMEDIATE`).
    /// A deferred one that reads first and writes later fails at once with
    /// `SQLITE_BUSY_SNAPSHOT` when another connection wrote in between; busy_timeout never
    /// retries that.
    pub async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    // The host list index is locked only for in-memory work, never across an await. A poisoned
    // lock means a panic mid-update of plain data; the map is still usable.
    pub(crate) fn host_index(&self) -> std::sync::RwLockWriteGuard<'_, HostIndex> {
        self.hosts.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn host_index_read(&self) -> std::sync::RwLockReadGuard<'_, HostIndex> {
        self.hosts.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// `%q%` for LIKE, with LIKE's own characters escaped (`ESCAPE '\'`).
pub fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// The direction of a list's sort key; its id, the tie-breaker, always ascends (unless the id
/// is the sort key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Keyset paging (`http::paging`): appends ` AND` the rows after `after` (sort key, id) in the
/// order of a list sorted by `key` in `order`, then by `id`. The condition leads with a range on
/// `key`, so an index on (key, id) seeks straight to the place; no OFFSET counts rows past.
pub fn push_after<'a, K>(
    q: &mut QueryBuilder<'a, Sqlite>,
    key: &str,
    id: &str,
    order: Order,
    after: Option<&(K, String)>,
) where
    K: Clone + Send + 'a + sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite>,
{
    let Some((sort, last)) = after else { return };
    let (from, past) = match order {
        Order::Asc => (">=", ">"),
        Order::Desc => ("<=", "<"),
    };
    if key == id {
        q.push(format!(" AND {id} {past} ")).push_bind(last.clone());
        return;
    }
    q.push(format!(" AND {key} {from} "))
        .push_bind(sort.clone())
        .push(format!(" AND ({key} {past} "))
        .push_bind(sort.clone())
        .push(format!(" OR {id} > "))
        .push_bind(last.clone())
        .push(")");
}

/// A row of a page as a list's store reads it: its place in the list's order (sort key, id)
/// beside the item, for `PageRequest::finish_keyed`.
pub type Keyed<K, T> = ((K, String), T);

/// Appends the ORDER BY of a list sorted by `key` in `order` then by `id`, and a LIMIT of `rows`
/// (a page request's `fetch`).
pub fn push_order(q: &mut QueryBuilder<'_, Sqlite>, key: &str, id: &str, order: Order, rows: u32) {
    let dir = match order {
        Order::Asc => "",
        Order::Desc => " DESC",
    };
    if key == id {
        q.push(format!(" ORDER BY {id}{dir} LIMIT "));
    } else {
        q.push(format!(" ORDER BY {key}{dir}, {id} LIMIT "));
    }
    q.push_bind(i64::from(rows));
}

/// Reads a list two at a time through `read(limit, after)` (a store's keyset query), running
/// `between` once after the first page, and answers the places read, in order, and the total of
/// the last page. Every page holds at most `limit` rows, and the places strictly follow one
/// another in the list's order `before(a, b)` (so none is read twice).
#[cfg(test)]
pub(crate) async fn test_walk<K, T, R, RF, B, BF>(
    mut read: R,
    between: B,
    before: impl Fn(&(K, String), &(K, String)) -> bool,
) -> Result<(Vec<(K, String)>, u64), StoreError>
where
    K: Clone + std::fmt::Debug,
    R: FnMut(u32, Option<(K, String)>) -> RF,
    RF: std::future::Future<Output = Result<(Vec<Keyed<K, T>>, u64), StoreError>>,
    B: FnOnce() -> BF,
    BF: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut places: Vec<(K, String)> = Vec::new();
    let mut after = None;
    let mut between = Some(between);
    loop {
        let (rows, total) = read(2, after.clone()).await?;
        assert!(rows.len() <= 2, "a page of {} for a limit of 2", rows.len());
        for (place, _) in &rows {
            if let Some(last) = places.last() {
                assert!(before(last, place), "{last:?} then {place:?}");
            }
            places.push(place.clone());
        }
        if let Some(between) = between.take() {
            between().await?;
        }
        match rows.last() {
            Some((place, _)) if rows.len() == 2 => after = Some(place.clone()),
            _ => return Ok((places, total)),
        }
    }
}

/// The order of a list by a descending key, then id.
#[cfg(test)]
pub(crate) fn test_desc<K: PartialOrd>(a: &(K, String), b: &(K, String)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The order of a list by an ascending key, then id.
#[cfg(test)]
pub(crate) fn test_asc<K: PartialOrd>(a: &(K, String), b: &(K, String)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

#[cfg(test)]
pub(crate) async fn test_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("test.db"))
        .await
        .expect("open store");
    (store, dir)
}

/// A bare available public base image `id`, for tests that need instances to boot from one.
#[cfg(test)]
pub(crate) async fn test_image(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO images (id, name, kind, image_type, visibility, note, virtualization, \
            status, created_at, updated_at) \
         VALUES (?, 'i', 'base', 'image', 'public', '', 'kvm', 'available', 0, 0)",
    )
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Cluster `az1` with `available` hosts `host-1` to `host-{n}` of `cores` cores and `memory`
/// bytes each, as placement sees them.
#[cfg(test)]
pub(crate) async fn test_hosts(
    store: &Store,
    n: u32,
    cores: u32,
    memory: u64,
) -> Result<(), StoreError> {
    store.create_cluster("az1", "az1").await?;
    for n in 1..=n {
        let (id, ip) = (format!("host-{n}"), format!("10.0.0.{n}"));
        let h = crate::hosts::store::NewHost {
            id: &id,
            ip: &ip,
            hostname: &id,
            cluster_id: "az1",
            cert_expires_at: 0,
            now: 1,
        };
        store
            .insert_host_with_facts(&h, "cpu", cores, memory)
            .await?;
    }
    sqlx::query("UPDATE hosts SET state = 'available'")
        .execute(store.pool())
        .await?;
    store.load_host_index().await
}
