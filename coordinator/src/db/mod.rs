//! The store's pool, migrations and error: `Store` is one handle whose methods live with
//! their resources (`hosts/store`, `images/store`, ...). SQLite (WAL) by default, PostgreSQL
//! for a highly available region: the SQL is written once (`backend.rs`), the few places the
//! two dialects differ are in `dialect.rs`, and each backend has its own migrations.
//! `writes.rs` sends statements that return nothing together, one round trip on PostgreSQL.

pub mod backend;
pub mod dialect;
pub mod follow;
#[cfg(test)]
pub(crate) mod test_backends;
pub mod writes;
#[cfg(test)]
pub(crate) use test_backends::store_test;

pub use backend::{Bind, Pool, Query, QueryBuilder, Row, Tx, query, query_scalar};
pub use dialect::Dialect;
pub use writes::Writes;

use crate::hosts::store::index::HostIndex;
use plinth_common::tls::Revocations;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where the store lives: a SQLite file (the default, in the data directory) or a PostgreSQL
/// database (`postgres://...`).
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// `database_url` as configured: `postgres://` or `postgresql://` names PostgreSQL,
    /// `sqlite://PATH` a SQLite file; none is the data directory's `default` file.
    pub fn from_url(url: Option<&str>, default: &Path) -> Result<Database, String> {
        match url {
            None => Ok(Database::Sqlite(default.to_path_buf())),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Database::Postgres(url.to_string()))
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(Database::Sqlite(PathBuf::from(path))),
                _ => Err(format!(
                    "database_url {url:?} is neither postgres://... nor sqlite://PATH"
                )),
            },
        }
    }
}

/// The database for logs and errors: a PostgreSQL URL without its password.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "SQLite {}", path.display()),
            Database::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let shown = match rest.split_once('@') {
                    Some((user, host)) => match user.split_once(':') {
                        Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
                        None => url.clone(),
                    },
                    None => url.clone(),
                };
                write!(f, "PostgreSQL {shown}")
            }
        }
    }
}

// Never the password, even in a `{:?}` of the configuration.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

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
    /// A job of a term of the job lease that has ended wrote: another coordinator holds it.
    #[error("this coordinator no longer holds the job lease (epoch {0})")]
    Fenced(i64),
    #[error("setting the database file's mode")]
    Files(#[source] std::io::Error),
}

/// Opens the SQLite file at `path` (0600, with its -wal and -shm files) and migrates it.
async fn open_sqlite(path: &Path) -> Result<sqlx::SqlitePool, StoreError> {
    // SQLite makes its -wal and -shm files with the database file's mode: 0600 first.
    private_file(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
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
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            plinth_common::fsutil::set_mode(&side, 0o600).map_err(StoreError::Files)?;
        }
    }
    Ok(pool)
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
    pub(crate) pool: Pool,
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
    /// Where local changes to the copies above are noted for the other coordinators
    /// (follow.rs; nowhere on SQLite).
    pub(crate) peers: follow::Peers,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date, with its claim writer under a runner of its own that nothing stops: for
    /// short-lived users (init, the CLI commands, tests, benchmarks), whose writer ends with the
    /// process.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &crate::jobs::Jobs::new()).await
    }

    /// [`Store::open`] with the claim writer started on `jobs`: it stops when their shutdown
    /// begins, after writing the claims already queued (later creates fail as `Closed`).
    pub async fn open_with(path: &Path, jobs: &crate::jobs::Jobs) -> Result<Store, StoreError> {
        Store::connect(&Database::Sqlite(path.to_path_buf()), jobs).await
    }

    /// Connects to `database`, brings its schema up to date and loads the caches.
    pub async fn connect(
        database: &Database,
        jobs: &crate::jobs::Jobs,
    ) -> Result<Store, StoreError> {
        let pool = match database {
            Database::Sqlite(path) => Pool::Sqlite(open_sqlite(path).await?),
            Database::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        let (claim_writer, claim_queue) = tokio::sync::mpsc::unbounded_channel();
        let store = Store {
            peers: follow::Peers::for_pool(&pool),
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

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Which SQL dialect the store speaks.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A transaction that writes, serialized with every other writer (`Dialect::begin_write`).
    /// A job's is refused unless its term's epoch is still the lease's: checked under the
    /// writer lock, which the lease's own changes take too, so no takeover can come between
    /// the check and the commit.
    pub async fn write(&self) -> Result<Tx, StoreError> {
        let begin = self.dialect().begin_write();
        let mut tx = match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with(begin).await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin_with(begin).await?),
        };
        if let Some(epoch) = crate::jobs::fence() {
            let now = crate::jobs::lease::store::lease_epoch(&mut tx).await?;
            if now != epoch {
                return Err(StoreError::Fenced(epoch));
            }
        }
        Ok(tx)
    }

    /// One statement that writes, fenced as [`Store::write`] fences: in a job's term, in a write
    /// transaction (which checks the term's epoch); otherwise straight on the pool, as the
    /// API's single-statement writes go. Returns the rows it changed.
    pub async fn write_one(&self, query: Query<'_>) -> Result<u64, StoreError> {
        if crate::jobs::fence().is_none() {
            return Ok(query.execute(self.pool()).await?.rows_affected());
        }
        let mut tx = self.write().await?;
        let done = query.execute(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// A transaction that only reads, on one snapshot (a count and its page agree).
    pub async fn read(&self) -> Result<Tx, sqlx::Error> {
        let begin = self.dialect().begin_read();
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with(begin).await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin_with(begin).await?),
        })
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
    q: &mut QueryBuilder<'a>,
    key: &str,
    id: &str,
    order: Order,
    after: Option<&(K, String)>,
) where
    K: Clone + Bind<'a>,
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
pub fn push_order(q: &mut QueryBuilder<'_>, key: &str, id: &str, order: Order, rows: u32) {
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

/// A bare available public base image `id`, for tests that need instances to boot from one.
#[cfg(test)]
pub(crate) async fn test_image(store: &Store, id: &str) -> Result<(), StoreError> {
    query(
        "INSERT INTO images (id, name, kind, image_type, visibility, note, virtualization, \
            status, created_at, updated_at) \
         VALUES ($1, 'i', 'base', 'image', 'public', '', 'kvm', 'available', 0, 0)",
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
    query("UPDATE hosts SET state = 'available'")
        .execute(store.pool())
        .await?;
    store.load_host_index().await
}
