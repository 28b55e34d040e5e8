//! Where SQLite's SQL and PostgreSQL's differ, in one place: the queries ask the store's
//! [`Dialect`] for these fragments and are otherwise the same text on both.
//!
//! Writers are serialized on both backends, as the store's code assumes (it reads, decides,
//! then writes, inside one transaction): SQLite by its write lock (`BEGIN IMMEDIATE`),
//! PostgreSQL by a transaction-level advisory lock every write transaction takes first
//! ([`after_begin_write`]). A transaction lock ends with its transaction, also when the
//! connection dies, so it cannot outlive a dead coordinator the way a session lock can; it
//! also makes the order of `BIGSERIAL` values (the change feed's ids) the order of commits.

/// The advisory lock key of the store's writers ("plinthwr" in ASCII).
const WRITER_LOCK: i64 = 0x706c_696e_7468_7772;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// How a write transaction begins.
    pub fn begin_write(self) -> &'static str {
        match self {
            // A deferred transaction that reads first and writes later fails at once with
            // SQLITE_BUSY_SNAPSHOT when another connection wrote in between; busy_timeout
            // never retries that. IMMEDIATE takes the write lock first.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }

    /// How a read-only transaction on one snapshot begins.
    pub fn begin_read(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// The larger of two integer expressions (SQLite's two-argument `MAX`).
    pub fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("MAX({a}, {b})"),
            Dialect::Postgres => format!("GREATEST({a}, {b})"),
        }
    }

    /// A table of the elements of the JSON array bound as `param`, one row each, its element
    /// in the column `value` (`value ->> 'key'` reads a member as text on both).
    pub fn json_elements(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({param})"),
            Dialect::Postgres => {
                format!("jsonb_array_elements(CAST({param} AS jsonb)) AS j(value)")
            }
        }
    }

    /// An integer member `key` of a JSON element `value` (from [`Dialect::json_elements`]).
    pub fn json_int(self, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("value ->> '{key}'"),
            Dialect::Postgres => format!("CAST(value ->> '{key}' AS BIGINT)"),
        }
    }

    /// A text member `key` of a JSON element `value`.
    pub fn json_text(self, key: &str) -> String {
        format!("value ->> '{key}'")
    }

    /// The column that orders a table's rows by insertion when no other column does (SQLite's
    /// `rowid`; the PostgreSQL schema gives such tables a `seq BIGSERIAL`).
    pub fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }
}

/// What a PostgreSQL write transaction does first: wait for, then hold until it ends, the
/// store's writer lock.
pub(crate) async fn after_begin_write(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
) -> Result<(), sqlx::Error> {
    let conn: &mut sqlx::PgConnection = tx;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITER_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}
