//! The system event log, read incrementally: from the entry after the last one read (its id
//! and timestamp remembered by the caller), each entry decoded by `ipmi-rs-core`. A cursor
//! whose entry is gone or changed means the log was cleared or wrapped: it is read again from
//! its first entry.

use super::IpmiError;
use super::session::Session;
use ipmi_rs_core::storage::sdr::SensorType;
use ipmi_rs_core::storage::sel::{
    Entry, EventDirection, GetSelEntry, GetSelInfo, RecordId, SelEntryInfo,
};
use plinth_common::api::{HardwareEvent, SelCursor};
use std::collections::HashMap;

/// What one read of the log found.
#[derive(Debug, Default)]
pub struct SelRead {
    /// Oldest first.
    pub events: Vec<HardwareEvent>,
    pub cursor: Option<SelCursor>,
    pub reset: bool,
}

/// Sensor names by number, from the SDR, to name an entry's sensor.
pub type SensorNames = HashMap<u8, String>;

struct Description<'a>(&'a Entry);

impl std::fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.event_description(f)
    }
}

/// The timestamp field of a Get SEL Entry answer (bytes 3..7 of the record, after the next id).
fn timestamp_of(data: &[u8]) -> u32 {
    data.get(5..9)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A BMC timestamp in words; values below 0x20000000 count from the BMC's start, not 1970.
fn time_text(ts: u32) -> Option<String> {
    (ts >= 0x2000_0000).then(|| plinth_common::timefmt::rfc3339(i64::from(ts) * 1000))
}

/// One entry in the API's words.
pub fn decode(entry: &Entry, ts: u32, names: &SensorNames) -> HardwareEvent {
    match entry {
        Entry::System {
            record_id,
            sensor_type,
            sensor_number,
            event_direction,
            ..
        } => {
            let ty = SensorType::from(*sensor_type);
            let description = Description(entry).to_string();
            HardwareEvent {
                record_id: u32::from(record_id.value()),
                time: time_text(ts),
                sensor: names
                    .get(sensor_number)
                    .cloned()
                    .unwrap_or_else(|| format!("{ty} #{sensor_number:#04x}")),
                sensor_type: ty.to_string(),
                direction: match event_direction {
                    EventDirection::Assert => "assert".into(),
                    EventDirection::Deassert => "deassert".into(),
                },
                description: if description.is_empty() {
                    "unspecified event".into()
                } else {
                    description
                },
            }
        }
        Entry::OemTimestamped {
            record_id,
            ty,
            manufacturer_id,
            ..
        } => HardwareEvent {
            record_id: u32::from(record_id.value()),
            time: time_text(ts),
            sensor: "OEM".into(),
            sensor_type: "OEM".into(),
            direction: "assert".into(),
            description: format!("OEM record {ty:#04x} from manufacturer {manufacturer_id}"),
        },
        Entry::OemNotTimestamped { record_id, ty, .. } => HardwareEvent {
            record_id: u32::from(record_id.value()),
            time: None,
            sensor: "OEM".into(),
            sensor_type: "OEM".into(),
            direction: "assert".into(),
            description: format!("OEM record {ty:#04x}"),
        },
    }
}

fn record_id(id: u16) -> RecordId {
    RecordId::new(id).unwrap_or(RecordId::FIRST)
}

impl Session {
    async fn sel_entry(&mut self, id: RecordId) -> Result<(SelEntryInfo, u32), IpmiError> {
        let (info, data) = self
            .execute("get sel entry", GetSelEntry::new(None, id))
            .await?;
        Ok((info, timestamp_of(&data)))
    }

    /// Entries after `after` (at most `max`), decoded, and where to continue.
    pub async fn sel_since(
        &mut self,
        after: Option<SelCursor>,
        max: usize,
        names: &SensorNames,
    ) -> Result<SelRead, IpmiError> {
        let (info, _) = self.execute("get sel info", GetSelInfo).await?;
        let mut read = SelRead::default();
        if info.entries == 0 {
            read.reset = after.is_some();
            return Ok(read);
        }
        let mut next = RecordId::FIRST;
        if let Some(c) = after {
            match self.sel_entry(record_id(c.record_id)).await {
                Ok((e, ts)) if ts == c.timestamp && entry_id(&e.entry) == c.record_id => {
                    read.cursor = Some(c);
                    if e.next_entry.is_last() {
                        return Ok(read);
                    }
                    next = e.next_entry;
                }
                Ok(_) | Err(IpmiError::Completion { code: 0xcb, .. }) => {
                    read.reset = true;
                    read.cursor = None;
                }
                Err(e) => return Err(e),
            }
        }
        while read.events.len() < max {
            let (e, ts) = self.sel_entry(next).await?;
            read.events.push(decode(&e.entry, ts, names));
            read.cursor = Some(SelCursor {
                record_id: entry_id(&e.entry),
                timestamp: ts,
            });
            if e.next_entry.is_last() || e.next_entry == next {
                break;
            }
            next = e.next_entry;
        }
        Ok(read)
    }
}

fn entry_id(e: &Entry) -> u16 {
    match e {
        Entry::System { record_id, .. }
        | Entry::OemTimestamped { record_id, .. }
        | Entry::OemNotTimestamped { record_id, .. } => record_id.value(),
    }
}
