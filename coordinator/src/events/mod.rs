//! The change feed (`GET /v1/events`): every state change of hosts, instances, images, bare
//! metal, segments, EIPs and operations is a row of the `events` table, written by the
//! resource's own store in the transaction of the change ([`store::record`]). Streams read
//! the rows after their last id, so order and resumption come from the table; a commit wakes
//! them through the store's [`store::Wake`]. The backlog is bounded: a client that resumes
//! from before it is told to reload.
//!
//! An event's `data`, the same for every resource: a new one `{"created": true, ...}` with
//! its first state; a state change `{"state": to, "from": from, ...}` (`status` for images and
//! operations, `power_state` / `console_state` / `agent` for those columns); an edit the
//! fields it gave, as they are now; and a row's removal `{"deleted": true}` (images add
//! `"removed"`, EIPs `"released"`), recorded before the `DELETE` so that its tenant is read.

pub mod api;
pub mod store;

#[cfg(test)]
mod coverage;

use crate::db::Store;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
pub(crate) use store::record_all_in;
pub use store::{Event, EventType, Span, StoredEvent, record, record_all, record_change};
use tokio_util::sync::CancellationToken;

/// How much of the feed is kept for clients that resume.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    /// The newest events kept, however old.
    pub keep: i64,
    /// Events older than this go, even within `keep`.
    pub max_age: Duration,
}

impl Default for Backlog {
    fn default() -> Backlog {
        Backlog {
            keep: 10_000,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// Rows read per query.
const BATCH: i64 = 500;
/// Streams look for new rows this often even without a wake-up (a commit that forgot to wake).
const POLL: Duration = Duration::from_secs(1);
/// The pruning job's period.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Which events a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Only these types; `None` for all.
    pub types: Option<Vec<EventType>>,
    /// A tenant caller's own tenant: only events of its resources. `None` for an admin.
    pub tenant: Option<String>,
}

impl Filter {
    /// Whether the subscriber may and wants to see `event`. Events without a tenant (hosts)
    /// are for admins only.
    pub fn admits(&self, event: &StoredEvent) -> bool {
        let wanted = self
            .types
            .as_ref()
            .is_none_or(|types| types.contains(&event.kind));
        let allowed = match &self.tenant {
            None => true,
            Some(own) => event.tenant_id.as_deref() == Some(own.as_str()),
        };
        wanted && allowed
    }
}

/// Parses `?type=host,instance`.
pub fn parse_types(list: &str) -> Result<Vec<EventType>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| EventType::parse(s).ok_or_else(|| s.to_string()))
        .collect()
}

/// Where a new stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this id.
    After(i64),
    /// Events the client needs were pruned (or its id is not from this feed): tell it to
    /// reload, then continue after the newest id.
    Reload { newest: i64 },
}

/// Decides where a stream starts from the client's last id (`Last-Event-ID` or `?after=`),
/// whether it asked for the whole backlog, and what the backlog holds.
pub fn start(last: Option<i64>, backlog: bool, span: Span) -> Start {
    let newest = span.newest.unwrap_or(0);
    match last {
        None if backlog => Start::After(span.oldest.map_or(newest, |o| o - 1)),
        None => Start::After(newest),
        Some(n) if n > newest || n < 0 => Start::Reload { newest },
        Some(n) => match span.oldest {
            Some(oldest) if n < oldest - 1 => Start::Reload { newest },
            _ => Start::After(n),
        },
    }
}

/// What a stream sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Event(StoredEvent),
    /// The client missed events the backlog no longer holds: re-fetch, then go on from `id`.
    Reload {
        id: i64,
    },
}

/// The feed service: opens streams and prunes the backlog.
#[derive(Clone, Debug)]
pub struct Events {
    store: Store,
    backlog: Backlog,
    recent: Arc<tokio::sync::Mutex<Recent>>,
}

/// The newest events in memory, so that a commit costs one query for all its subscribers
/// instead of one each: every row with an id in `(base, upto]`, oldest first.
#[derive(Debug, Default)]
struct Recent {
    rows: VecDeque<StoredEvent>,
    base: i64,
    upto: i64,
    /// The wake-up count and time of the last refresh: refresh again when either moved on.
    seen: Option<(u64, tokio::time::Instant)>,
}

/// Events kept in memory.
const RECENT: usize = 4096;

impl Recent {
    /// Reads what was committed since `upto` when a wake-up came (or a poll period passed).
    async fn refresh(&mut self, store: &Store, wake: u64) -> Result<(), crate::db::StoreError> {
        let fresh = self
            .seen
            .is_some_and(|(w, at)| w == wake && at.elapsed() < POLL);
        if fresh {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if self.seen.is_none() {
            let newest = store.events_span().await?.newest.unwrap_or(0);
            (self.base, self.upto) = (newest, newest);
        }
        loop {
            let rows = store.events_after(self.upto, BATCH).await?;
            let full = rows.len() as i64 == BATCH;
            for row in rows {
                self.upto = row.id;
                self.rows.push_back(row);
            }
            while self.rows.len() > RECENT {
                if let Some(old) = self.rows.pop_front() {
                    self.base = old.id;
                }
            }
            if !full {
                break;
            }
        }
        self.seen = Some((wake, now));
        Ok(())
    }

    /// Up to `BATCH` events after `last`, when memory holds all of them.
    fn after(&self, last: i64) -> Option<Vec<StoredEvent>> {
        if last < self.base || last > self.upto {
            return None;
        }
        let start = self.rows.partition_point(|e| e.id <= last);
        Some(
            self.rows
                .iter()
                .skip(start)
                .take(BATCH as usize)
                .cloned()
                .collect(),
        )
    }
}

/// One subscriber's position in the feed.
struct Tail {
    events: Events,
    filter: Filter,
    last: i64,
    follow: bool,
    pending: VecDeque<Item>,
    wake: tokio::sync::watch::Receiver<u64>,
    cancel: CancellationToken,
    /// Counted in /metrics while the stream lives.
    _subscriber: crate::metrics::Subscriber,
}

impl Tail {
    async fn next(mut self) -> Option<(Item, Tail)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.cancel.is_cancelled() {
                return None;
            }
            // Seen before reading: a commit after the read wakes the wait below.
            self.wake.borrow_and_update();
            let wake = *self.wake.borrow();
            match self.events.after(self.last, wake).await {
                Ok(rows) => {
                    let full = rows.len() as i64 == BATCH;
                    for row in rows {
                        self.last = row.id;
                        if self.filter.admits(&row) {
                            self.pending.push_back(Item::Event(row));
                        }
                    }
                    if full || !self.pending.is_empty() {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Reading the change feed failed."),
            }
            if !self.follow {
                return None;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = self.wake.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

impl Events {
    pub fn new(store: Store, backlog: Backlog) -> Events {
        Events {
            store,
            backlog,
            recent: Arc::default(),
        }
    }

    /// Up to `BATCH` events after `last`: from memory when it holds them, else the table.
    async fn after(&self, last: i64, wake: u64) -> Result<Vec<StoredEvent>, crate::db::StoreError> {
        {
            let mut recent = self.recent.lock().await;
            recent.refresh(&self.store, wake).await?;
            if let Some(rows) = recent.after(last) {
                return Ok(rows);
            }
        }
        self.store.events_after(last, BATCH).await
    }

    /// A stream of the events after the client's `last` id (see [`start`]) that `filter`
    /// admits; with `follow` it waits for new ones until `cancel` (the coordinator's
    /// shutdown), else it ends after the backlog.
    pub async fn subscribe(
        &self,
        filter: Filter,
        last: Option<i64>,
        backlog: bool,
        follow: bool,
        cancel: CancellationToken,
    ) -> Result<impl futures_util::Stream<Item = Item> + use<>, crate::db::StoreError> {
        let wake = self.store.events_wake().subscribe();
        let span = self.store.events_span().await?;
        let mut pending = VecDeque::new();
        let last = match start(last, backlog, span) {
            Start::After(n) => n,
            Start::Reload { newest } => {
                pending.push_back(Item::Reload { id: newest });
                newest
            }
        };
        let tail = Tail {
            events: self.clone(),
            filter,
            last,
            follow,
            pending,
            wake,
            cancel,
            _subscriber: crate::metrics::Subscriber::join(),
        };
        Ok(futures_util::stream::unfold(tail, Tail::next))
    }

    /// Prunes the backlog now and then until `cancel`.
    pub async fn prune(self, cancel: CancellationToken) {
        loop {
            let before = plinth_common::timefmt::now_ms()
                - i64::try_from(self.backlog.max_age.as_millis()).unwrap_or(i64::MAX);
            match self.store.prune_events(self.backlog.keep, before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "Pruned the change feed's backlog."),
                Err(e) => tracing::warn!(error = %e, "Pruning the change feed failed."),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, kind: EventType, tenant: Option<&str>) -> StoredEvent {
        StoredEvent {
            id,
            kind,
            resource_id: format!("r{id}"),
            tenant_id: tenant.map(str::to_string),
            data: serde_json::json!({}),
            at: 0,
        }
    }

    #[test]
    fn admins_see_everything_tenants_only_their_own() {
        let admin = Filter {
            types: None,
            tenant: None,
        };
        let tenant = Filter {
            types: None,
            tenant: Some("t1".into()),
        };
        let host = ev(1, EventType::Host, None);
        let own = ev(2, EventType::Instance, Some("t1"));
        let other = ev(3, EventType::Image, Some("t2"));
        assert!(admin.admits(&host) && admin.admits(&own) && admin.admits(&other));
        assert!(!tenant.admits(&host), "hosts are for admins only");
        assert!(tenant.admits(&own));
        assert!(!tenant.admits(&other));
    }

    #[test]
    fn type_filter_applies_with_the_tenant_scope() {
        let f = Filter {
            types: Some(vec![EventType::Host, EventType::Image]),
            tenant: None,
        };
        assert!(f.admits(&ev(1, EventType::Host, None)));
        assert!(f.admits(&ev(2, EventType::Image, Some("t"))));
        assert!(!f.admits(&ev(3, EventType::Instance, Some("t"))));
        let t = Filter {
            types: Some(vec![EventType::Host, EventType::Image]),
            tenant: Some("t".into()),
        };
        assert!(!t.admits(&ev(1, EventType::Host, None)));
        assert!(t.admits(&ev(2, EventType::Image, Some("t"))));
    }

    #[test]
    fn types_parse_and_name_the_unknown_one() {
        assert_eq!(
            parse_types("host, instance,"),
            Ok(vec![EventType::Host, EventType::Instance])
        );
        assert_eq!(parse_types("host,bogus"), Err("bogus".to_string()));
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn start_resumes_within_the_backlog_and_reloads_outside_it() {
        let span = Span {
            oldest: Some(10),
            newest: Some(20),
        };
        assert_eq!(start(None, false, span), Start::After(20));
        assert_eq!(start(None, true, span), Start::After(9));
        assert_eq!(start(Some(9), false, span), Start::After(9));
        assert_eq!(start(Some(15), false, span), Start::After(15));
        assert_eq!(start(Some(20), false, span), Start::After(20));
        assert_eq!(start(Some(8), false, span), Start::Reload { newest: 20 });
        assert_eq!(start(Some(21), false, span), Start::Reload { newest: 20 });
        let empty = Span::default();
        assert_eq!(start(None, true, empty), Start::After(0));
        assert_eq!(start(Some(0), false, empty), Start::After(0));
        assert_eq!(start(Some(3), false, empty), Start::Reload { newest: 0 });
    }

    #[test]
    fn memory_serves_only_what_it_holds_whole() {
        let recent = Recent {
            rows: (11..=20).map(|id| ev(id, EventType::Host, None)).collect(),
            base: 10,
            upto: 20,
            seen: None,
        };
        let ids = |last| {
            recent
                .after(last)
                .map(|r| r.iter().map(|e| e.id).collect::<Vec<_>>())
        };
        assert_eq!(ids(9), None, "older than memory: the table answers");
        assert_eq!(ids(10), Some((11..=20).collect()));
        assert_eq!(ids(18), Some(vec![19, 20]));
        assert_eq!(ids(20), Some(vec![]));
        assert_eq!(ids(21), None, "newer than memory: refresh first");
    }

    crate::db::store_test! {
    async fn recorded_events_stream_in_order_and_resume(store, _dir) {
        let events = Events::new(store.clone(), Backlog::default());
        for i in 0..3 {
            let mut tx = store.write().await.expect("tx");
            record(
                &mut tx,
                Event {
                    kind: EventType::Host,
                    resource_id: &format!("h{i}"),
                    tenant_id: None,
                    data: serde_json::json!({"state": "locked"}),
                },
            )
            .await
            .expect("record");
            tx.commit().await.expect("commit");
            store.events_committed();
        }
        use futures_util::StreamExt;
        let admin = Filter {
            types: None,
            tenant: None,
        };
        let all: Vec<Item> = events
            .subscribe(admin.clone(), None, true, false, CancellationToken::new())
            .await
            .expect("subscribe")
            .collect()
            .await;
        let ids: Vec<i64> = all
            .iter()
            .map(|i| match i {
                Item::Event(e) => e.id,
                Item::Reload { .. } => -1,
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let rest: Vec<Item> = events
            .subscribe(admin, Some(2), false, false, CancellationToken::new())
            .await
            .expect("subscribe")
            .collect()
            .await;
        assert!(matches!(&rest[..], [Item::Event(e)] if e.id == 3));
        assert_eq!(store.prune_events(1, 0).await.expect("prune"), 2);
        let tenant = Filter {
            types: None,
            tenant: Some("t".into()),
        };
        let reload: Vec<Item> = events
            .subscribe(tenant, Some(1), false, false, CancellationToken::new())
            .await
            .expect("subscribe")
            .collect()
            .await;
        assert_eq!(reload, vec![Item::Reload { id: 3 }]);
    }
    }
}
