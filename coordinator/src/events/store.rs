//! The `events` table: the one writer helper every resource's state change calls inside its
//! own transaction ([`record`]), the reads the streams make, and the backlog's pruning.

use crate::db::{Store, StoreError};
use std::sync::Arc;

/// What kind of resource an event is about (its SSE `event:` name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Host,
    Instance,
    Image,
    Baremetal,
    Segment,
    Eip,
    Operation,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::Host,
        EventType::Instance,
        EventType::Image,
        EventType::Baremetal,
        EventType::Segment,
        EventType::Eip,
        EventType::Operation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Host => "host",
            EventType::Instance => "instance",
            EventType::Image => "image",
            EventType::Baremetal => "baremetal",
            EventType::Segment => "segment",
            EventType::Eip => "eip",
            EventType::Operation => "operation",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One change, as a resource's store writes it.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: EventType,
    pub resource_id: &'a str,
    /// The resource's tenant; `None` for what only admins see (hosts).
    pub tenant_id: Option<&'a str>,
    /// The new state or the changed fields.
    pub data: serde_json::Value,
}

/// One stored event, as the feed sends it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// Monotonically increasing: the order the changes were committed in.
    pub id: i64,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: EventType,
    pub resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The new state or the changed fields.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When it was committed (milliseconds since the Unix epoch).
    pub at: i64,
}

/// Wakes the feed's streams after a commit that recorded events: a counter that only goes up.
#[derive(Clone, Debug)]
pub struct Wake(Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Wake {
        Wake(Arc::new(tokio::sync::watch::channel(0).0))
    }
}

impl Wake {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Writes `event` on `conn`, which must be the transaction of the change it reports, so that
/// the event exists exactly when the change does. The caller calls [`Store::events_committed`]
/// after its commit to wake the streams at once (they also look on their own every second).
pub async fn record(conn: &mut crate::db::Tx, event: Event<'_>) -> Result<(), StoreError> {
    record_all(conn, std::slice::from_ref(&event)).await
}

/// [`record`] for several changes at once, in one statement whatever their number; their ids
/// follow the order of `events`.
pub async fn record_all(conn: &mut crate::db::Tx, events: &[Event<'_>]) -> Result<(), StoreError> {
    let mut writes = crate::db::Writes::new();
    record_all_in(&mut writes, conn.dialect(), events);
    writes.run(conn).await?;
    Ok(())
}

/// [`record_all`]'s statement, added to `writes` (which the caller runs in the transaction of
/// the changes).
pub(crate) fn record_all_in(
    writes: &mut crate::db::Writes<'_>,
    dialect: crate::db::Dialect,
    events: &[Event<'_>],
) {
    if events.is_empty() {
        return;
    }
    let rows: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(n, e)| {
            serde_json::json!({
                "n": n,
                "kind": e.kind.as_str(),
                "resource": e.resource_id,
                "tenant": e.tenant_id,
                // As a string: both backends then store the text exactly as serialized here.
                "data": e.data.to_string(),
            })
        })
        .collect();
    let from = dialect.json_rows(
        "$1",
        "e",
        &[
            ("n", "BIGINT"),
            ("kind", "TEXT"),
            ("resource", "TEXT"),
            ("tenant", "TEXT"),
            ("data", "TEXT"),
        ],
    );
    let sql = format!(
        "INSERT INTO events (type, resource_id, tenant_id, data, at) \
         SELECT e.kind, e.resource, e.tenant, e.data, $2 FROM {from} ORDER BY e.n"
    );
    writes.push(
        crate::db::Query::owned(sql)
            .bind(serde_json::Value::Array(rows).to_string())
            .bind(plinth_common::timefmt::now_ms()),
    );
}

/// [`record`] for a change of resource `id` of type `kind`, with its tenant read from the
/// resource's row on `conn` (so call it while the row exists: before a delete). Hosts and
/// segments are admin-only: no tenant.
pub async fn record_change(
    conn: &mut crate::db::Tx,
    kind: EventType,
    id: &str,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    let owner = match kind {
        EventType::Host | EventType::Segment => None,
        EventType::Instance => Some("SELECT tenant_id FROM instances WHERE id = $1"),
        EventType::Image => Some("SELECT owner_tenant_id FROM images WHERE id = $1"),
        EventType::Baremetal => Some("SELECT tenant_id FROM baremetal WHERE id = $1"),
        EventType::Eip => Some("SELECT tenant_id FROM eips WHERE id = $1"),
        EventType::Operation => Some("SELECT owner_tenant_id FROM operations WHERE id = $1"),
    };
    let tenant: Option<String> = match owner {
        Some(sql) => crate::db::query_scalar::<Option<String>>(sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten(),
        None => None,
    };
    record(
        conn,
        Event {
            kind,
            resource_id: id,
            tenant_id: tenant.as_deref(),
            data,
        },
    )
    .await
}

/// The ids the backlog holds now: oldest and newest (both `None` when it is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
}

impl Store {
    /// Wakes the feed's streams: call after committing a transaction that recorded events.
    pub fn events_committed(&self) {
        self.events.notify();
        self.note_for_peers(crate::db::follow::Note::Events);
    }

    /// The feed's wake-up counter.
    pub fn events_wake(&self) -> &Wake {
        &self.events
    }

    /// Up to `limit` events after `after`, oldest first.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = crate::db::query(
            "SELECT id, type, resource_id, tenant_id, data, at FROM events WHERE id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("type")?;
                let data: String = r.try_get("data")?;
                Ok(StoredEvent {
                    id: r.try_get("id")?,
                    kind: EventType::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("event type {kind}")))?,
                    resource_id: r.try_get("resource_id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    data: serde_json::from_str(&data)
                        .map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<_, StoreError>>()
    }

    /// The oldest and newest ids the backlog holds.
    pub async fn events_span(&self) -> Result<Span, StoreError> {
        let row = crate::db::query("SELECT MIN(id) AS oldest, MAX(id) AS newest FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(Span {
            oldest: row.try_get("oldest")?,
            newest: row.try_get("newest")?,
        })
    }

    /// Drops events beyond the newest `keep`, and those older than `before` (ms), but never
    /// the newest one: it is what tells a resuming client whether it missed any.
    pub async fn prune_events(&self, keep: i64, before: i64) -> Result<u64, StoreError> {
        let prune = crate::db::query(
            "DELETE FROM events WHERE id < (SELECT MAX(id) FROM events) \
             AND (id <= (SELECT MAX(id) FROM events) - $1 OR at < $2)",
        )
        .bind(keep)
        .bind(before);
        self.write_one(prune).await
    }
}
