//! A bare-metal server's hardware as the health sweep last read it: its sensors, the health
//! they sum up to, where the sweep left off in the BMC's event log, and the log's entries
//! (each once, however often the agent answers it; the newest `keep` per server).

use super::corrupt;
use crate::db::{Store, StoreError};
use crate::events::{EventType, record_change};
use plinth_common::api::{HardwareEvent, Health, HealthSummary, SelCursor, Sensor, SensorList};
use plinth_common::timefmt::rfc3339;
use std::collections::HashMap;

/// Event-log entries kept per server; older ones are dropped as new ones arrive.
pub const EVENTS_KEPT: u32 = 1000;

/// What one poll of a server's BMC found.
#[derive(Debug, Clone)]
pub enum HealthRead<'a> {
    /// The BMC answered: its sensors and the log's entries after the cursor, oldest first.
    Read {
        sensors: &'a [Sensor],
        events: &'a [HardwareEvent],
        /// Where to continue; `None` leaves the stored cursor as it is, except after a reset:
        /// a cleared log that is empty is read from its start next time.
        cursor: Option<SelCursor>,
        /// The log was cleared or wrapped since the last poll (the entries are from its start).
        reset: bool,
    },
    /// The BMC could not be read: why, in words a tenant may read.
    Failed(&'a str),
}

/// The summary from a list entry's row (`h.*` of the `FROM` join; all null when never read).
pub(crate) fn summary(row: &crate::db::Row) -> Result<HealthSummary, StoreError> {
    let Some(health) = row.try_get::<Option<String>, _>("health")? else {
        return Ok(HealthSummary::not_read());
    };
    Ok(HealthSummary {
        health: Health::parse(&health).ok_or_else(|| corrupt("health", &health))?,
        worst_sensor: row.try_get("worst_sensor")?,
        read_at: row
            .try_get::<Option<i64>, _>("health_read_at")?
            .map(rfc3339),
    })
}

/// An entry's identity: the same record id at the same time about the same thing is the same
/// entry (ids alone restart when the log is cleared).
fn entry_key(e: &HardwareEvent) -> String {
    let time = e.time.as_deref().unwrap_or("");
    format!(
        "{}|{time}|{}|{}|{}",
        e.record_id, e.sensor, e.direction, e.description
    )
}

/// The entry plinth writes where it found the BMC's log cleared or wrapped.
fn cleared_entry(now: i64) -> HardwareEvent {
    HardwareEvent {
        record_id: 0,
        time: Some(rfc3339(now)),
        sensor: "Event log".into(),
        sensor_type: "Event Logging".into(),
        direction: "assert".into(),
        description: "the BMC's event log was cleared or wrapped; older entries are kept here"
            .into(),
    }
}

impl Store {
    /// Records one poll of server `id`: on a read, its sensors and health, the new entries (those
    /// stored already are skipped) and the cursor; on a failure, health `unknown` and why (the
    /// last sensors read stay). The history is cut to the newest `keep` entries. `false` when
    /// the server is gone.
    pub async fn record_baremetal_health(
        &self,
        id: &str,
        read: &HealthRead<'_>,
        keep: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let exists = crate::db::query("SELECT id FROM baremetal WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let before = crate::db::query(
            "SELECT health, worst_sensor FROM baremetal_health WHERE server_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut tx)
        .await?
        .map(|r| {
            Ok::<_, StoreError>((
                r.try_get::<String, _>("health")?,
                r.try_get::<Option<String>, _>("worst_sensor")?,
            ))
        })
        .transpose()?;
        let (health, worst, sensors, read_at, error, cursor, cleared) = match read {
            HealthRead::Read {
                sensors,
                cursor,
                reset,
                ..
            } => {
                let (health, worst) = HealthSummary::of(sensors);
                let text = serde_json::to_string(sensors)
                    .map_err(|e| StoreError::Corrupt(format!("sensors of {id}: {e}")))?;
                let cleared = reset.then_some(now);
                (health, worst, Some(text), Some(now), None, *cursor, cleared)
            }
            HealthRead::Failed(why) => (Health::Unknown, None, None, None, Some(*why), None, None),
        };
        crate::db::query(
            "INSERT INTO baremetal_health (server_id, health, worst_sensor, sensors_json, read_at, \
                error, sel_record_id, sel_timestamp, sel_cleared_at, updated_at) \
             VALUES ($1, $2, $3, coalesce($4, '[]'), $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (server_id) DO UPDATE SET health = excluded.health, \
                worst_sensor = excluded.worst_sensor, \
                sensors_json = coalesce($11, baremetal_health.sensors_json), \
                read_at = coalesce(excluded.read_at, baremetal_health.read_at), \
                error = excluded.error, \
                sel_record_id = CASE WHEN $12 = 1 THEN excluded.sel_record_id \
                    ELSE coalesce(excluded.sel_record_id, baremetal_health.sel_record_id) END, \
                sel_timestamp = CASE WHEN $13 = 1 THEN excluded.sel_timestamp \
                    ELSE coalesce(excluded.sel_timestamp, baremetal_health.sel_timestamp) END, \
                sel_cleared_at = coalesce(excluded.sel_cleared_at, baremetal_health.sel_cleared_at), \
                updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(health.as_str())
        .bind(worst.as_deref())
        .bind(sensors.as_deref())
        .bind(read_at)
        .bind(error)
        .bind(cursor.map(|c| i64::from(c.record_id)))
        .bind(cursor.map(|c| i64::from(c.timestamp)))
        .bind(cleared)
        .bind(now)
        .bind(sensors.as_deref())
        .bind(cleared.is_some())
        .bind(cleared.is_some())
        .execute(&mut tx)
        .await?;
        if let HealthRead::Read { events, reset, .. } = read {
            let marker = reset.then(|| cleared_entry(now));
            for e in marker.iter().chain(events.iter()) {
                crate::db::query(
                    "INSERT INTO baremetal_hw_events (server_id, entry_key, record_id, logged_at, \
                        sensor, sensor_type, direction, description) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (server_id, entry_key) DO NOTHING",
                )
                .bind(id)
                .bind(entry_key(e))
                .bind(i64::from(e.record_id))
                .bind(e.time.as_deref())
                .bind(&e.sensor)
                .bind(&e.sensor_type)
                .bind(&e.direction)
                .bind(&e.description)
                .execute(&mut tx)
                .await?;
            }
            if marker.is_some() || !events.is_empty() {
                // The newest `keep` stay: everything at or below the first one past them goes.
                crate::db::query(
                    "DELETE FROM baremetal_hw_events WHERE server_id = $1 AND seq <= \
                        (SELECT seq FROM baremetal_hw_events WHERE server_id = $2 \
                         ORDER BY seq DESC LIMIT 1 OFFSET $3)",
                )
                .bind(id)
                .bind(id)
                .bind(i64::from(keep))
                .execute(&mut tx)
                .await?;
            }
        }
        // The change feed hears of a new health (a console re-reads the server), not of each
        // reading.
        let changed = before
            .as_ref()
            .is_none_or(|(h, w)| h != health.as_str() || *w != worst);
        if changed {
            let data = serde_json::json!({ "health": health.as_str(), "worst_sensor": worst });
            record_change(&mut tx, EventType::Baremetal, id, data).await?;
        }
        tx.commit().await?;
        if changed {
            self.events_committed();
        }
        Ok(true)
    }

    /// Every stored event-log cursor: server id → where its next poll continues.
    pub async fn baremetal_sel_cursors(&self) -> Result<HashMap<String, SelCursor>, StoreError> {
        let rows = crate::db::query(
            "SELECT server_id, sel_record_id, sel_timestamp FROM baremetal_health \
             WHERE sel_record_id IS NOT NULL AND sel_timestamp IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let (id, ts): (i64, i64) =
                    (r.try_get("sel_record_id")?, r.try_get("sel_timestamp")?);
                let cursor = SelCursor {
                    record_id: u16::try_from(id)
                        .map_err(|_| corrupt("SEL record id", &id.to_string()))?,
                    timestamp: u32::try_from(ts)
                        .map_err(|_| corrupt("SEL timestamp", &ts.to_string()))?,
                };
                Ok((r.try_get("server_id")?, cursor))
            })
            .collect()
    }

    /// Server `id`'s sensors as last read, its health, and why the last poll failed; the
    /// empty list with health `unknown` when it was never read.
    pub async fn baremetal_sensors(&self, id: &str) -> Result<SensorList, StoreError> {
        let row = crate::db::query(
            "SELECT health, worst_sensor, read_at AS health_read_at, sensors_json, error \
             FROM baremetal_health WHERE server_id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(SensorList {
                health: HealthSummary::not_read(),
                items: Vec::new(),
                error: None,
            });
        };
        let text: String = row.try_get("sensors_json")?;
        let items = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("sensors of {id}: {e}")))?;
        Ok(SensorList {
            health: summary(&row)?,
            items,
            error: row.try_get("error")?,
        })
    }

    /// Server `id`'s event-log entries, newest first, `limit` at most.
    pub async fn baremetal_hw_events(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<Vec<HardwareEvent>, StoreError> {
        let rows = crate::db::query(
            "SELECT record_id, logged_at, sensor, sensor_type, direction, description \
             FROM baremetal_hw_events WHERE server_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("record_id")?;
                Ok(HardwareEvent {
                    record_id: u32::try_from(n)
                        .map_err(|_| corrupt("SEL record id", &n.to_string()))?,
                    time: r.try_get("logged_at")?,
                    sensor: r.try_get("sensor")?,
                    sensor_type: r.try_get("sensor_type")?,
                    direction: r.try_get("direction")?,
                    description: r.try_get("description")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::one_server;
    use super::*;
    use plinth_common::api::{SensorStatus, SensorThresholds};

    fn sensor(name: &str, value: f64, status: SensorStatus) -> Sensor {
        Sensor {
            name: name.into(),
            kind: "temperature".into(),
            value: Some(value),
            unit: Some("°C".into()),
            thresholds: SensorThresholds {
                upper_critical: Some(90.0),
                ..SensorThresholds::default()
            },
            status,
        }
    }

    fn event(record_id: u32, second: u32) -> HardwareEvent {
        HardwareEvent {
            record_id,
            time: Some(format!("2026-12-02T10:00:{second:02}Z")),
            sensor: "CPU Temp".into(),
            sensor_type: "Temperature".into(),
            direction: "assert".into(),
            description: "upper critical going high".into(),
        }
    }

    fn read<'a>(
        sensors: &'a [Sensor],
        events: &'a [HardwareEvent],
        last: u16,
        reset: bool,
    ) -> HealthRead<'a> {
        HealthRead::Read {
            sensors,
            events,
            cursor: Some(SelCursor {
                record_id: last,
                timestamp: u32::from(last) * 10,
            }),
            reset,
        }
    }

    fn ids(events: &[HardwareEvent]) -> Vec<u32> {
        events.iter().map(|e| e.record_id).collect()
    }

    crate::db::store_test! {
    /// The list entry and the sensor list follow each poll; a failed poll keeps the last
    /// sensors but says unknown and why; the cursor is kept across a failure.
    async fn health_follows_the_polls(store, _dir) -> Result<(), StoreError> {
        one_server(&store).await?;
        let entry = |store: Store| async move {
            Ok::<_, StoreError>(store.baremetal("bm-0001").await?.expect("row").server.health)
        };
        assert_eq!(entry(store.clone()).await?, HealthSummary::not_read());
        // What the change feed heard of the server after its creation: one entry per new health.
        let fed = |store: Store| async move {
            let all = store.events_after(0, 100).await?;
            let health: Vec<serde_json::Value> =
                all.into_iter().filter_map(|e| e.data.get("health").cloned()).collect();
            Ok::<_, StoreError>(health)
        };
        let hot = [sensor("Inlet", 30.0, SensorStatus::Ok), sensor("CPU Temp", 95.0, SensorStatus::Critical)];
        assert!(store.record_baremetal_health("bm-0001", &read(&hot, &[], 3, false), EVENTS_KEPT, 1_000).await?);
        let got = entry(store.clone()).await?;
        assert_eq!((got.health, got.worst_sensor.as_deref()), (Health::Critical, Some("CPU Temp")));
        assert_eq!(got.read_at.as_deref(), Some(rfc3339(1_000).as_str()));
        let list = store.baremetal_sensors("bm-0001").await?;
        assert_eq!((list.items, list.error), (hot.to_vec(), None));
        let failed = HealthRead::Failed("the BMC did not answer");
        assert!(store.record_baremetal_health("bm-0001", &failed, EVENTS_KEPT, 2_000).await?);
        let list = store.baremetal_sensors("bm-0001").await?;
        assert_eq!(list.health.health, Health::Unknown);
        assert_eq!(list.health.read_at.as_deref(), Some(rfc3339(1_000).as_str()), "last read kept");
        assert_eq!((list.items.len(), list.error.as_deref()), (2, Some("the BMC did not answer")));
        let cursors = store.baremetal_sel_cursors().await?;
        assert_eq!(cursors.get("bm-0001"), Some(&SelCursor { record_id: 3, timestamp: 30 }));
        assert!(store.record_baremetal_health("bm-0001", &failed, EVENTS_KEPT, 3_000).await?);
        assert_eq!(fed(store.clone()).await?, ["critical", "unknown"], "the same health again is not fed");
        assert!(!store.record_baremetal_health("bm-0404", &failed, EVENTS_KEPT, 2_000).await?, "gone");
        Ok(())
    }
    }

    crate::db::store_test! {
    /// An entry answered twice is listed once; a cleared log is marked and the older entries
    /// stay; only the newest `keep` are kept; deleting the server removes its rows.
    async fn events_are_kept_once_and_bounded(store, _dir) -> Result<(), StoreError> {
        one_server(&store).await?;
        let first = [event(1, 1), event(2, 2)];
        store.record_baremetal_health("bm-0001", &read(&[], &first, 2, false), 10, 1_000).await?;
        let again = [event(2, 2), event(3, 3)];
        store.record_baremetal_health("bm-0001", &read(&[], &again, 3, false), 10, 2_000).await?;
        assert_eq!(ids(&store.baremetal_hw_events("bm-0001", 100).await?), [3, 2, 1]);
        let after_clear = [event(1, 40)];
        store.record_baremetal_health("bm-0001", &read(&[], &after_clear, 1, true), 10, 3_000).await?;
        let listed = store.baremetal_hw_events("bm-0001", 100).await?;
        assert_eq!(ids(&listed), [1, 0, 3, 2, 1]);
        assert_eq!(listed[1], cleared_entry(3_000));
        assert_eq!(ids(&store.baremetal_hw_events("bm-0001", 2).await?), [1, 0], "limit");
        let cleared_empty = HealthRead::Read { sensors: &[], events: &[], cursor: None, reset: true };
        store.record_baremetal_health("bm-0001", &cleared_empty, 10, 3_500).await?;
        assert!(store.baremetal_sel_cursors().await?.is_empty(), "an empty cleared log: from its start");
        store.record_baremetal_health("bm-0001", &read(&[], &[], 1, false), 10, 3_600).await?;
        let many: Vec<_> = (2..=12).map(|n| event(n, 40 + n)).collect();
        store.record_baremetal_health("bm-0001", &read(&[], &many, 12, false), 10, 4_000).await?;
        let listed = store.baremetal_hw_events("bm-0001", 100).await?;
        assert_eq!(ids(&listed), (3..=12).rev().collect::<Vec<_>>(), "the newest 10");
        store.delete_baremetal("bm-0001").await?;
        assert!(store.baremetal_hw_events("bm-0001", 100).await?.is_empty());
        assert!(store.baremetal_sel_cursors().await?.is_empty());
        assert_eq!(store.baremetal_sensors("bm-0001").await?.health, HealthSummary::not_read());
        Ok(())
    }
    }
}
