//! Writes that return nothing, sent together: on PostgreSQL every statement is a round trip
//! to the server, and a write transaction makes them holding the writer lock, so a
//! transaction that inserts into four tables keeps every other coordinator's writer waiting
//! for four round trips. [`Writes`] sends them as one statement there.

use super::Dialect;
use super::backend::{Query, Tx};

/// Statements that return nothing, run in the order pushed in one transaction: on SQLite one
/// after another (a statement there is a function call, not a round trip), on PostgreSQL as
/// the data-modifying `WITH` parts of one statement. Parts of one statement see one snapshot
/// there, and their order is not theirs to rely on, so a part must not read what another part
/// writes: each inserts or updates from its own parameters. Constraints are checked at the end
/// of the statement, so a row may refer to a row another part inserts. A part must not itself
/// begin with `WITH`.
#[must_use = "writes do nothing until they run"]
#[derive(Default)]
pub struct Writes<'q> {
    parts: Vec<Query<'q>>,
}

impl<'q> Writes<'q> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, query: Query<'q>) {
        self.parts.push(query);
    }

    pub async fn run(self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        match tx.dialect() {
            Dialect::Sqlite => {
                for part in self.parts {
                    part.execute(&mut *tx).await?;
                }
            }
            Dialect::Postgres => {
                if let Some(one) = combined(self.parts) {
                    one.execute(tx).await?;
                }
            }
        }
        Ok(())
    }
}

/// `parts` as one PostgreSQL statement: `WITH w1 AS (part 1), w2 AS (part 2) ... SELECT 1`,
/// each part's placeholders renumbered after those of the parts before it.
fn combined(mut parts: Vec<Query<'_>>) -> Option<Query<'_>> {
    if parts.len() < 2 {
        return parts.pop();
    }
    let mut sql = String::from("WITH ");
    let mut args = Vec::new();
    for (n, part) in parts.into_iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        let (text, part_args) = part.into_parts();
        sql.push_str(&format!(
            "w{} AS ({})",
            n + 1,
            renumbered(&text, args.len())
        ));
        args.extend(part_args);
    }
    sql.push_str(" SELECT 1");
    Some(Query::from_parts(sql.into(), args))
}

/// `sql` with each placeholder `$N` outside quotes made `$(N + offset)`.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                match digits.parse::<usize>() {
                    Ok(n) => out.push_str(&(n + offset).to_string()),
                    Err(_) => out.push_str(&digits),
                }
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_backends::test_store_on;

    #[test]
    fn placeholders_are_renumbered_outside_quotes() {
        assert_eq!(
            renumbered("SELECT $1, '$1', \"$2\", $12 || 'it''s $3', $", 4),
            "SELECT $5, '$1', \"$2\", $16 || 'it''s $3', $"
        );
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
    }

    #[test]
    fn parts_become_one_statement() {
        let parts = vec![
            crate::db::query("INSERT INTO a (x) SELECT $1").bind(1i64),
            crate::db::query("UPDATE b SET y = $2 WHERE z = $1")
                .bind("z")
                .bind("y"),
        ];
        let (sql, args) = combined(parts).expect("a statement").into_parts();
        assert_eq!(
            sql,
            "WITH w1 AS (INSERT INTO a (x) SELECT $1), \
             w2 AS (UPDATE b SET y = $3 WHERE z = $2) SELECT 1"
        );
        assert_eq!(args.len(), 3);
    }

    const OP: &str = "INSERT INTO operations (id, kind, target_id, owner_tenant_id, status, \
                        progress_bytes, created_at, updated_at) \
                      VALUES ($1, 'test', 'host-1', NULL, 'running', 0, 5, 5)";
    const STEP: &str = "INSERT INTO operation_steps (operation_id, seq, at, message) \
                        VALUES ($1, 1, 5, $2)";

    async fn count(store: &crate::db::Store, table: &str) -> Result<i64, sqlx::Error> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        crate::db::query_scalar::<i64>(&sql)
            .fetch_one(store.pool())
            .await
    }

    /// Each part is written, on PostgreSQL a row may refer to one a later part inserts, and a
    /// part that fails leaves nothing of the others.
    #[tokio::test]
    async fn parts_write_together_on_both_backends() -> Result<(), crate::db::StoreError> {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let (store, _dir) = test_store_on(dialect).await;
            let mut writes = Writes::new();
            if dialect == Dialect::Postgres {
                // The step first: its reference is checked at the end of the statement.
                writes.push(crate::db::query(STEP).bind("op-1").bind("hello"));
                writes.push(crate::db::query(OP).bind("op-1"));
            } else {
                writes.push(crate::db::query(OP).bind("op-1"));
                writes.push(crate::db::query(STEP).bind("op-1").bind("hello"));
            }
            let mut tx = store.write().await?;
            writes.run(&mut tx).await?;
            tx.commit().await?;
            let mut writes = Writes::new();
            writes.push(crate::db::query(OP).bind("op-2"));
            writes.push(crate::db::query(STEP).bind("op-missing").bind("hello"));
            let mut tx = store.write().await?;
            assert!(writes.run(&mut tx).await.is_err(), "{dialect:?}");
            drop(tx);
            assert_eq!(count(&store, "operations").await?, 1, "{dialect:?}");
            assert_eq!(count(&store, "operation_steps").await?, 1, "{dialect:?}");
        }
        Ok(())
    }
}
