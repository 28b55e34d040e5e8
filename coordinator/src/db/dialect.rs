//! Where SQLite's SQL and PostgreSQL's differ, in one place: the queries ask the store's
//! [`Dialect`] for these fragments and are otherwise the same text on both.
//!
//! Writers are serialized on both backends, as the store's code assumes (it reads, decides,
//! then writes, inside one transaction): SQLite by its write lock (`BEGIN IMMEDIATE`),
//! PostgreSQL by a transaction-level advisory lock every write transaction takes first, in
//! the round trip of its `BEGIN` ([`Dialect::begin_write`]). A transaction lock ends with its
//! transaction, also when the connection dies, so it cannot outlive a dead coordinator the
//! way a session lock can; it also makes the order of `BIGSERIAL` values (the change feed's
//! ids) the order of commits.

/// The advisory lock key of the store's writers ("plinthwr" in ASCII).
const WRITER_LOCK: i64 = 0x706c_696e_7468_7772;

const _: () = assert!(WRITER_LOCK == 8_100_965_752_853_002_098);

/// A PostgreSQL write transaction's beginning: one simple query (one round trip) that begins
/// it and waits for, then holds until it ends, the writer lock ([`WRITER_LOCK`], in decimal).
const BEGIN_WRITE_POSTGRES: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT pg_advisory_xact_lock(8100965752853002098)";

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
            Dialect::Postgres => BEGIN_WRITE_POSTGRES,
        }
    }

    /// How a read-only transaction on one snapshot begins.
    pub fn begin_read(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// The rows of the JSON array of objects bound as `param`, as a table `alias` with the
    /// typed `columns` ((name, SQL type), each read from the member of that name).
    pub fn json_rows(self, param: &str, alias: &str, columns: &[(&str, &str)]) -> String {
        match self {
            Dialect::Sqlite => {
                let members: Vec<String> = columns
                    .iter()
                    .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
                    .collect();
                format!(
                    "(SELECT {} FROM json_each({param})) AS {alias}",
                    members.join(", ")
                )
            }
            Dialect::Postgres => {
                let typed: Vec<String> = columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
                format!(
                    "jsonb_to_recordset(CAST({param} AS jsonb)) AS {alias}({})",
                    typed.join(", ")
                )
            }
        }
    }

    /// Text `column` as the planner should not pick an index for (SQLite's unary `+`;
    /// PostgreSQL's `|| ''`, an expression no index is on). Without it, PostgreSQL drove the
    /// claim batch's update from the index on `hosts.state` whenever its statistics were older
    /// than the hosts (a region that just grew): a bitmap scan of every available host and a
    /// hash join, 5 ms a batch at 10,000 hosts instead of 0.2 ms by id.
    pub fn unindexed(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{column}"),
            Dialect::Postgres => format!("({column} || '')"),
        }
    }

    /// A non-negative real expression rounded down to an integer (SQLite's CAST truncates;
    /// PostgreSQL's rounds).
    pub fn floor_int(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({expr} AS INTEGER)"),
            Dialect::Postgres => format!("CAST(FLOOR({expr}) AS BIGINT)"),
        }
    }

    /// The JSON object in text column `column` with member `key` set to `true`.
    pub fn json_set_true(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_set({column}, '$.{key}', json('true'))"),
            Dialect::Postgres => {
                format!("CAST(jsonb_set(CAST({column} AS jsonb), '{{{key}}}', 'true') AS TEXT)")
            }
        }
    }

    /// The database's clock now, in Unix milliseconds: what every coordinator's lease and
    /// heartbeat are measured on, so that no coordinator's own clock decides who holds it.
    pub fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postgres_begin_takes_the_writer_lock() {
        let key = format!("pg_advisory_xact_lock({WRITER_LOCK})");
        assert!(Dialect::Postgres.begin_write().ends_with(&key));
    }
}
