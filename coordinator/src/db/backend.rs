//! One way to run SQL on either backend. The store writes each query once, with `$N`
//! placeholders (SQLite binds them too), through [`query`], [`query_scalar`] and
//! [`QueryBuilder`]; the arguments are kept as plain values ([`Arg`]) and bound to the
//! backend's own query only when it runs, by one macro expanded for each (`on_backend!`).
//! Not `sqlx::Any`: that translates no placeholders and widens no integers; here an integer is
//! always an `i64` (`BIGINT` on PostgreSQL) and every value a column holds decodes on both.

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{ColumnIndex, Decode, Postgres, Sqlite, Type};
use std::fmt::Display;

/// The store's connection pool: SQLite (the embedded default) or PostgreSQL (the HA store).
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Closes every connection (waits for those in use to come back).
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// An open transaction on either backend; dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// The dialect of the transaction's backend.
    pub fn dialect(&self) -> super::Dialect {
        match self {
            Tx::Sqlite(_) => super::Dialect::Sqlite,
            Tx::Postgres(_) => super::Dialect::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Where a query runs: on a connection from the pool, or inside a transaction.
pub enum Exec<'e> {
    Pool(&'e Pool),
    Tx(&'e mut Tx),
}

impl<'e> From<&'e Pool> for Exec<'e> {
    fn from(pool: &'e Pool) -> Self {
        Exec::Pool(pool)
    }
}

impl<'e> From<&'e mut Tx> for Exec<'e> {
    fn from(tx: &'e mut Tx) -> Self {
        Exec::Tx(tx)
    }
}

/// A bound value, as the store binds them: text, 64-bit integers, reals, bytes, or their NULLs
/// (which keep their type, for PostgreSQL).
#[derive(Debug, Clone)]
pub enum Arg<'q> {
    Str(Option<&'q str>),
    String(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bytes(Option<&'q [u8]>),
    Blob(Option<Vec<u8>>),
}

/// What `.bind()` takes.
pub trait Bind<'q> {
    fn arg(self) -> Arg<'q>;
}

macro_rules! bind_as {
    ($variant:ident: $($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl<'q> Bind<'q> for $t {
            fn arg(self) -> Arg<'q> {
                let $v = self;
                Arg::$variant(Some($e))
            }
        }
        impl<'q> Bind<'q> for Option<$t> {
            fn arg(self) -> Arg<'q> {
                Arg::$variant(self.map(|$v| $e))
            }
        }
    )*};
}

bind_as!(Str: &'q str => |v| v);
bind_as!(String: String => |v| v, &'q String => |v| v.clone());
bind_as!(Int: i64 => |v| v, i32 => |v| i64::from(v), u32 => |v| i64::from(v),
    u16 => |v| i64::from(v), u8 => |v| i64::from(v), bool => |v| i64::from(v));
bind_as!(Real: f64 => |v| v);
bind_as!(Bytes: &'q [u8] => |v| v);
bind_as!(Blob: Vec<u8> => |v| v);

impl<'q> Bind<'q> for &'q i64 {
    fn arg(self) -> Arg<'q> {
        Arg::Int(Some(*self))
    }
}

impl<'q> Bind<'q> for &'q Option<String> {
    fn arg(self) -> Arg<'q> {
        Arg::Str(self.as_deref())
    }
}

impl<'q> Bind<'q> for &'q &'q str {
    fn arg(self) -> Arg<'q> {
        Arg::Str(Some(*self))
    }
}

/// A type a column decodes into on both backends.
pub trait Value<'r>:
    Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}
impl<'r, T> Value<'r> for T where
    T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}

/// A column's name or position, on both backends.
pub trait Index: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}
impl<T> Index for T where T: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}

/// A result row from either backend.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    pub fn try_get<'r, T: Value<'r>, I: Index>(&'r self, index: I) -> Result<T, sqlx::Error> {
        use sqlx::Row as _;
        match self {
            Row::Sqlite(row) => row.try_get(index),
            Row::Postgres(row) => row.try_get(index),
        }
    }
}

/// What an `execute` did.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    rows: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows
    }
}

/// Binds `$args` to `$q` (a `sqlx::query` of one backend), then runs `$body` with the
/// result as `$bound`: the same code, expanded for each backend.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for arg in $args {
            q = match arg {
                Arg::Str(v) => q.bind(v),
                Arg::String(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
                Arg::Blob(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Runs `$method` of a query made from `$sql` and `$args` on `$exec`, and passes the
/// backend's answer through `$wrap` (which must give both backends' answers one type).
macro_rules! on_backend {
    ($exec:expr, $sql:expr, $args:expr, |$answer:ident| $method:ident, $wrap:expr) => {
        match $exec {
            Exec::Pool(Pool::Sqlite(pool)) => {
                let $answer = bind_all!(sqlx::query::<Sqlite>($sql), $args)
                    .$method(pool)
                    .await?;
                $wrap
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                let $answer = bind_all!(sqlx::query::<Postgres>($sql), $args)
                    .$method(pool)
                    .await?;
                $wrap
            }
            Exec::Tx(Tx::Sqlite(tx)) => {
                let conn: &mut sqlx::SqliteConnection = tx;
                let $answer = bind_all!(sqlx::query::<Sqlite>($sql), $args)
                    .$method(conn)
                    .await?;
                $wrap
            }
            Exec::Tx(Tx::Postgres(tx)) => {
                let conn: &mut sqlx::PgConnection = tx;
                let $answer = bind_all!(sqlx::query::<Postgres>($sql), $args)
                    .$method(conn)
                    .await?;
                $wrap
            }
        }
    };
}

/// A query written once for both backends.
#[must_use = "a query does nothing until it runs"]
pub struct Query<'q> {
    sql: std::borrow::Cow<'q, str>,
    args: Vec<Arg<'q>>,
}

pub fn query(sql: &str) -> Query<'_> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Query<'static> {
    /// A query of SQL made at run time, which it keeps.
    pub fn owned(sql: String) -> Self {
        Query {
            sql: sql.into(),
            args: Vec::new(),
        }
    }
}

impl<'q> Query<'q> {
    pub(super) fn from_parts(sql: std::borrow::Cow<'q, str>, args: Vec<Arg<'q>>) -> Self {
        Query { sql, args }
    }

    pub(super) fn into_parts(self) -> (std::borrow::Cow<'q, str>, Vec<Arg<'q>>) {
        (self.sql, self.args)
    }

    pub fn bind(mut self, value: impl Bind<'q>) -> Self {
        self.args.push(value.arg());
        self
    }

    pub async fn execute<'e>(self, exec: impl Into<Exec<'e>>) -> Result<Done, sqlx::Error> {
        let (sql, args) = (&*self.sql, self.args);
        Ok(on_backend!(
            exec.into(),
            sql,
            args,
            |done| execute,
            Done {
                rows: done.rows_affected()
            }
        ))
    }

    pub async fn fetch_all<'e>(self, exec: impl Into<Exec<'e>>) -> Result<Vec<Row>, sqlx::Error> {
        let (sql, args) = (&*self.sql, self.args);
        Ok(on_backend!(exec.into(), sql, args, |rows| fetch_all, {
            rows.into_iter().map(Into::into).collect()
        }))
    }

    pub async fn fetch_one<'e>(self, exec: impl Into<Exec<'e>>) -> Result<Row, sqlx::Error> {
        let (sql, args) = (&*self.sql, self.args);
        Ok(on_backend!(
            exec.into(),
            sql,
            args,
            |row| fetch_one,
            row.into()
        ))
    }

    pub async fn fetch_optional<'e>(
        self,
        exec: impl Into<Exec<'e>>,
    ) -> Result<Option<Row>, sqlx::Error> {
        let (sql, args) = (&*self.sql, self.args);
        Ok(on_backend!(
            exec.into(),
            sql,
            args,
            |row| fetch_optional,
            row.map(Into::into)
        ))
    }
}

impl From<SqliteRow> for Row {
    fn from(row: SqliteRow) -> Self {
        Row::Sqlite(row)
    }
}

impl From<PgRow> for Row {
    fn from(row: PgRow) -> Self {
        Row::Postgres(row)
    }
}

/// A query whose rows are one value each (the first column).
#[must_use = "a query does nothing until it runs"]
pub struct QueryScalar<'q, T> {
    query: Query<'q>,
    value: std::marker::PhantomData<fn() -> T>,
}

pub fn query_scalar<T>(sql: &str) -> QueryScalar<'_, T> {
    QueryScalar {
        query: query(sql),
        value: std::marker::PhantomData,
    }
}

impl<'q, T> QueryScalar<'q, T>
where
    T: for<'r> Value<'r>,
{
    pub fn bind(mut self, value: impl Bind<'q>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    pub async fn fetch_one<'e>(self, exec: impl Into<Exec<'e>>) -> Result<T, sqlx::Error> {
        self.query.fetch_one(exec).await?.try_get(0)
    }

    pub async fn fetch_optional<'e>(
        self,
        exec: impl Into<Exec<'e>>,
    ) -> Result<Option<T>, sqlx::Error> {
        match self.query.fetch_optional(exec).await? {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }

    pub async fn fetch_all<'e>(self, exec: impl Into<Exec<'e>>) -> Result<Vec<T>, sqlx::Error> {
        let rows = self.query.fetch_all(exec).await?;
        rows.iter().map(|row| row.try_get(0)).collect()
    }
}

/// Builds a query piece by piece; each bound value becomes the next `$N`.
pub struct QueryBuilder<'q> {
    sql: String,
    args: Vec<Arg<'q>>,
}

impl<'q> QueryBuilder<'q> {
    pub fn new(init: impl Into<String>) -> Self {
        QueryBuilder {
            sql: init.into(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    pub fn push_bind(&mut self, value: impl Bind<'q>) -> &mut Self {
        self.args.push(value.arg());
        let n = self.args.len();
        self.push(format_args!("${n}"))
    }

    /// Appends items with `separator` between them (the first push of each adds it).
    pub fn separated(&mut self, separator: &'static str) -> Separated<'_, 'q> {
        Separated {
            builder: self,
            separator,
            first: true,
        }
    }

    /// The query so far, borrowing the builder's text.
    pub fn build(&self) -> Query<'_> {
        Query {
            sql: self.sql.as_str().into(),
            args: self.args.clone(),
        }
    }

    pub fn build_query_scalar<T>(&self) -> QueryScalar<'_, T> {
        QueryScalar {
            query: self.build(),
            value: std::marker::PhantomData,
        }
    }
}

pub struct Separated<'b, 'q> {
    builder: &'b mut QueryBuilder<'q>,
    separator: &'static str,
    first: bool,
}

impl<'q> Separated<'_, 'q> {
    fn next(&mut self) {
        if !self.first {
            self.builder.push(self.separator);
        }
        self.first = false;
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.next();
        self.builder.push(sql);
        self
    }

    pub fn push_bind(&mut self, value: impl Bind<'q>) -> &mut Self {
        self.next();
        self.builder.push_bind(value);
        self
    }

    pub fn push_unseparated(&mut self, sql: impl Display) -> &mut Self {
        self.builder.push(sql);
        self
    }
}
