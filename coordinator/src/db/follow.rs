//! On PostgreSQL, each coordinator's in-memory copies follow every coordinator's writes: the
//! host index (list filters, placement, free GPUs), the revoked agent certificates, and the
//! change feed's wake-up. After a change is committed and applied locally, the store notes it
//! ([`Peers::note`]); a sender task sends the notes, batched, on one `NOTIFY` channel, and
//! every coordinator (the writer too: that way the last read of a row always comes after its
//! last commit) re-reads what they name ([`follow`]). A coordinator whose listening connection
//! dropped may have missed notes, so it reloads everything once it is back.
//!
//! SQLite has one coordinator: no notes are sent and nothing listens.

use crate::db::{Pool, Store, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The one channel of the notes.
const CHANNEL: &str = "plinth_caches";
/// PostgreSQL takes payloads under 8000 bytes.
const PAYLOAD_MAX: usize = 7000;
/// How long a listener keeps gathering notes before it applies them: a few more rows per
/// query, well within the second the issue allows.
const GATHER: Duration = Duration::from_millis(20);
/// The most notes applied at once.
const BATCH_MAX: usize = 2000;

/// What changed, as other coordinators must hear it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Note {
    /// A host's row (state, presence, capacity, claims) changed, or the host was removed.
    Host(String),
    /// A host's free GPUs changed.
    Gpus(String),
    /// Agent certificates were revoked.
    Revoked,
    /// Events were committed to the change feed.
    Events,
}

impl Note {
    fn encode(&self) -> String {
        match self {
            Note::Host(id) => format!("h {id}"),
            Note::Gpus(id) => format!("g {id}"),
            Note::Revoked => "r".to_string(),
            Note::Events => "e".to_string(),
        }
    }

    fn decode(line: &str) -> Option<Note> {
        match line.split_once(' ') {
            Some(("h", id)) => Some(Note::Host(id.to_string())),
            Some(("g", id)) => Some(Note::Gpus(id.to_string())),
            None if line == "r" => Some(Note::Revoked),
            None if line == "e" => Some(Note::Events),
            _ => None,
        }
    }
}

/// Where the store's local changes are noted for the other coordinators: nowhere on SQLite.
#[derive(Debug, Clone, Default)]
pub struct Peers(Option<mpsc::UnboundedSender<Note>>);

impl Peers {
    /// Notes for `pool`'s other coordinators, sent by a task of their own (PostgreSQL), or
    /// none (SQLite). The task ends once every copy of the returned handle is dropped.
    pub fn for_pool(pool: &Pool) -> Peers {
        let Pool::Postgres(pool) = pool else {
            return Peers(None);
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send(pool.clone(), rx));
        Peers(Some(tx))
    }

    pub fn note(&self, note: Note) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(note);
        }
    }
}

/// Sends the notes queued on `rx`, the ones queued together in as few `NOTIFY`s as their size
/// allows, each note once.
async fn send(pool: sqlx::PgPool, mut rx: mpsc::UnboundedReceiver<Note>) {
    while let Some(first) = rx.recv().await {
        let mut notes = BTreeSet::from([first]);
        while let Ok(more) = rx.try_recv() {
            notes.insert(more);
        }
        for payload in payloads(&notes) {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&pool)
                .await;
            if let Err(err) = sent {
                // The peers' listeners reload everything when they reconnect; a database
                // that refuses a NOTIFY refuses their reads too, so this is seldom alone.
                tracing::warn!(error = %err, "Could not tell the other coordinators of a change.");
            }
        }
    }
}

/// `notes` as newline-separated payloads, each within PostgreSQL's limit.
fn payloads(notes: &BTreeSet<Note>) -> Vec<String> {
    let mut out = vec![String::new()];
    for note in notes {
        let line = note.encode();
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + line.len() > PAYLOAD_MAX {
            out.push(line);
        } else {
            if !last.is_empty() {
                last.push('\n');
            }
            last.push_str(&line);
        }
    }
    out
}

/// Applies every coordinator's notes to `store`'s copies until `stop` (PostgreSQL; returns at
/// once on SQLite). Reloads everything after each (re)connection of its listener, since notes
/// sent while it was away are lost.
pub async fn follow(store: Store, stop: CancellationToken) {
    let Pool::Postgres(pool) = store.pool().clone() else {
        return;
    };
    let mut quiet = false;
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            _ = stop.cancelled() => return,
            l = listener => match l {
                Ok(l) => l,
                Err(err) => {
                    if !quiet {
                        tracing::warn!(error = %err, "Cannot listen for other coordinators' changes; retrying.");
                        quiet = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        if let Err(err) = store.reload_caches().await {
            tracing::warn!(error = %err, "Could not reload the caches; retrying.");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if quiet {
            tracing::info!("Listening for other coordinators' changes again.");
            quiet = false;
        }
        loop {
            let heard = tokio::select! {
                _ = stop.cancelled() => return,
                heard = gather(&mut listener) => heard,
            };
            let notes = match heard {
                Ok(Some(notes)) => notes,
                // Lost and reconnected: reload first.
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "Lost the listener for other coordinators' changes; reconnecting.");
                    break;
                }
            };
            if let Err(err) = store.apply_notes(&notes).await {
                tracing::warn!(error = %err, "Could not apply other coordinators' changes; reloading.");
                break;
            }
        }
    }
}

/// The notes of the next notification and of those that follow it within [`GATHER`]; `None`
/// when the connection was lost (the listener reconnects on its next call).
async fn gather(
    listener: &mut sqlx::postgres::PgListener,
) -> Result<Option<BTreeSet<Note>>, sqlx::Error> {
    let Some(first) = listener.try_recv().await? else {
        return Ok(None);
    };
    let mut notes = BTreeSet::new();
    notes.extend(first.payload().lines().filter_map(Note::decode));
    let deadline = tokio::time::Instant::now() + GATHER;
    while notes.len() < BATCH_MAX {
        match tokio::time::timeout_at(deadline, listener.try_recv()).await {
            Err(_) => break,
            Ok(Ok(Some(n))) => notes.extend(n.payload().lines().filter_map(Note::decode)),
            // Apply what was heard; the next call reports the loss.
            Ok(Ok(None)) | Ok(Err(_)) => break,
        }
    }
    Ok(Some(notes))
}

impl Store {
    /// Notes a local change for the other coordinators.
    pub(crate) fn note_for_peers(&self, note: Note) {
        self.peers.note(note);
    }

    /// Re-reads what `notes` name into this coordinator's copies.
    async fn apply_notes(&self, notes: &BTreeSet<Note>) -> Result<(), StoreError> {
        let mut hosts = Vec::new();
        for note in notes {
            match note {
                Note::Host(id) => hosts.push(id.clone()),
                Note::Gpus(id) => self.recount_gpus_quietly(id).await?,
                Note::Revoked => {
                    self.load_revocations(plinth_common::timefmt::now_ms())
                        .await?
                }
                Note::Events => self.events_wake().notify(),
            }
        }
        if !hosts.is_empty() {
            self.reindex_hosts_quietly(&hosts).await?;
        }
        Ok(())
    }

    /// Reloads every copy from the tables (after this coordinator may have missed notes).
    async fn reload_caches(&self) -> Result<(), StoreError> {
        self.load_host_index().await?;
        self.load_gpu_index().await?;
        self.load_revocations(plinth_common::timefmt::now_ms())
            .await?;
        self.events_wake().notify();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::hosts::store::HostFilter;
    use plinth_common::host::{HostEvent, HostState};

    /// Waits (a bounded while) for `seen` to hold of `store`.
    async fn until(what: &str, store: &Store, seen: impl Fn(&Store) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !seen(store) {
            assert!(tokio::time::Instant::now() < deadline, "{what}: not seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn listed(store: &Store, state: HostState) -> Vec<String> {
        let filter = HostFilter {
            state: Some(state),
            limit: 100,
            ..HostFilter::default()
        };
        store.host_index_read().query(&filter, 0).0
    }

    /// Two coordinators' stores on one PostgreSQL database: the second's copies follow the
    /// first's writes (a lock, a removal, events), and its placement sees them.
    #[tokio::test]
    async fn a_second_store_follows_the_first_s_writes() {
        let db = Database::Postgres(crate::db::test_backends::fresh_database().await);
        let jobs = crate::jobs::Jobs::new();
        let a = Store::connect(&db, &jobs).await.expect("a");
        crate::db::test_hosts(&a, 2, 8, 1 << 30)
            .await
            .expect("hosts");
        let b = Store::connect(&db, &jobs).await.expect("b");
        let stop = CancellationToken::new();
        let follower = tokio::spawn(follow(b.clone(), stop.clone()));
        until("both hosts", &b, |b| {
            listed(b, HostState::Available).len() == 2
        })
        .await;
        let mut woken = b.events_wake().subscribe();
        woken.mark_unchanged();

        a.transition_host("host-1", HostEvent::Lock, 5)
            .await
            .expect("lock");
        until("the lock", &b, |b| {
            listed(b, HostState::Locked) == ["host-1"]
        })
        .await;
        let placed = b.placement_candidates(0);
        let one = placed
            .iter()
            .find(|c| c.host_id == "host-1")
            .expect("host-1");
        assert_eq!(one.state, HostState::Locked, "placement follows too");
        // The event's note may come in a notification after the host's: waited for, not
        // expected at once.
        let woke = tokio::time::timeout(Duration::from_secs(10), woken.changed()).await;
        assert!(woke.is_ok_and(|r| r.is_ok()), "the event woke b's feed");

        a.remove_host("host-2", None, 6)
            .await
            .expect("remove")
            .expect("removed");
        until("the removal", &b, |b| {
            listed(b, HostState::Available).is_empty()
        })
        .await;
        assert_eq!(b.placement_candidates(0).len(), 1);
        stop.cancel();
        follower.await.expect("follower");
    }

    #[test]
    fn notes_round_trip_and_payloads_stay_under_the_limit() {
        let mut notes: BTreeSet<Note> = (0..2000)
            .map(|n| Note::Host(format!("host-{n:012x}")))
            .collect();
        notes.insert(Note::Gpus("host-1".into()));
        notes.insert(Note::Revoked);
        notes.insert(Note::Events);
        let sent = payloads(&notes);
        assert!(sent.len() > 1, "2000 hosts do not fit one payload");
        assert!(sent.iter().all(|p| p.len() <= PAYLOAD_MAX));
        let heard: BTreeSet<Note> = sent
            .iter()
            .flat_map(|p| p.lines().filter_map(Note::decode))
            .collect();
        assert_eq!(heard, notes);
        assert_eq!(Note::decode("x y"), None);
        assert_eq!(payloads(&BTreeSet::new()), vec![String::new()]);
    }
}
