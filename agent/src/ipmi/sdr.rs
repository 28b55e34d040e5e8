//! The SDR repository: every record read in parts (header, then the body a few bytes at a
//! time) under a reservation that is renewed when the BMC cancels it, then named.

use super::IpmiError;
use super::session::{NETFN_STORAGE, Session};
use serde::{Deserialize, Serialize};

const CHUNK: usize = 16;
const MIN_CHUNK: usize = 4;
/// A repository that claims more is treated as looping.
const MAX_RECORDS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdrRecord {
    pub record_id: u16,
    /// 0x01 full sensor, 0x02 compact sensor, 0x03 event-only, 0x11 FRU locator, 0x12 MC locator.
    pub record_type: u8,
    pub sensor_number: Option<u8>,
    pub sensor_type: Option<u8>,
    pub name: Option<String>,
}

/// Names a record from its bytes (header included).
pub fn describe(record_id: u16, bytes: &[u8]) -> SdrRecord {
    let record_type = bytes.get(3).copied().unwrap_or(0);
    let (number, kind, name_at) = match record_type {
        0x01 => (bytes.get(7), bytes.get(12), 47),
        0x02 => (bytes.get(7), bytes.get(12), 31),
        0x03 => (bytes.get(7), bytes.get(12), 16),
        0x11 | 0x12 => (None, None, 15),
        _ => (None, None, usize::MAX),
    };
    let name = bytes.get(name_at).and_then(|&tl| {
        let len = usize::from(tl & 0x1f);
        let raw = bytes.get(name_at + 1..name_at + 1 + len)?;
        let text: String = raw.iter().map(|&b| char::from(b)).collect();
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        (!text.is_empty()).then(|| text.to_string())
    });
    SdrRecord {
        record_id,
        record_type,
        sensor_number: number.copied(),
        sensor_type: kind.copied(),
        name,
    }
}

impl Session {
    async fn reserve_sdr(&mut self) -> Result<[u8; 2], IpmiError> {
        let d = self
            .command("reserve sdr repository", NETFN_STORAGE, 0x22, &[])
            .await?;
        match d.get(..2) {
            Some(r) => Ok([r[0], r[1]]),
            None => Err(IpmiError::Malformed {
                command: "reserve sdr repository",
                detail: "no reservation id".into(),
            }),
        }
    }

    /// `count` bytes of record `id` from `offset`: the next record's id and the bytes.
    async fn get_sdr(
        &mut self,
        reservation: [u8; 2],
        id: u16,
        offset: usize,
        count: usize,
    ) -> Result<(u16, Vec<u8>), IpmiError> {
        let r = id.to_le_bytes();
        let d = self
            .command(
                "get sdr",
                NETFN_STORAGE,
                0x23,
                &[
                    reservation[0],
                    reservation[1],
                    r[0],
                    r[1],
                    offset as u8,
                    count as u8,
                ],
            )
            .await?;
        if d.len() < 2 {
            return Err(IpmiError::Malformed {
                command: "get sdr",
                detail: "no next record id".into(),
            });
        }
        Ok((u16::from_le_bytes([d[0], d[1]]), d[2..].to_vec()))
    }

    /// One record, header then body in chunks; `None` when the reservation was cancelled.
    async fn sdr_record(
        &mut self,
        reservation: [u8; 2],
        id: u16,
    ) -> Result<Option<(u16, Vec<u8>)>, IpmiError> {
        let cancelled = |e: &IpmiError| matches!(e, IpmiError::Completion { code: 0xc5, .. });
        let (next, mut bytes) = match self.get_sdr(reservation, id, 0, 5).await {
            Ok(v) => v,
            Err(e) if cancelled(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() < 5 {
            return Err(IpmiError::Malformed {
                command: "get sdr",
                detail: format!("record {id:#06x} header is {} bytes", bytes.len()),
            });
        }
        let total = 5 + usize::from(bytes[4]);
        bytes.truncate(5);
        let mut chunk = CHUNK;
        while bytes.len() < total {
            let want = chunk.min(total - bytes.len());
            match self.get_sdr(reservation, id, bytes.len(), want).await {
                Ok((_, part)) if !part.is_empty() => {
                    let take = part.len().min(total - bytes.len());
                    bytes.extend_from_slice(&part[..take]);
                }
                Ok(_) => {
                    return Err(IpmiError::Malformed {
                        command: "get sdr",
                        detail: format!("record {id:#06x} ended early"),
                    });
                }
                Err(e) if cancelled(&e) => return Ok(None),
                Err(IpmiError::Completion { code, .. })
                    if matches!(code, 0xc7 | 0xc8 | 0xca) && chunk > MIN_CHUNK =>
                {
                    chunk /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some((next, bytes)))
    }

    /// Every record of the repository, named.
    pub async fn sdr_records(&mut self) -> Result<Vec<SdrRecord>, IpmiError> {
        Ok(self
            .sdr_raw()
            .await?
            .into_iter()
            .map(|(id, bytes)| describe(id, &bytes))
            .collect())
    }

    /// Every record of the repository as its bytes (header included), with its id.
    pub async fn sdr_raw(&mut self) -> Result<Vec<(u16, Vec<u8>)>, IpmiError> {
        let mut reservation = self.reserve_sdr().await?;
        let mut out = Vec::new();
        let mut id = 0u16;
        let mut renewals = 0;
        while out.len() < MAX_RECORDS {
            let record = match self.sdr_record(reservation, id).await {
                // An empty repository has no first record.
                Err(IpmiError::Completion { code: 0xcb, .. }) if out.is_empty() => break,
                other => other?,
            };
            match record {
                Some((next, bytes)) => {
                    out.push((u16::from_le_bytes([bytes[0], bytes[1]]), bytes));
                    if next == 0xffff || next == id {
                        break;
                    }
                    id = next;
                }
                None if renewals < 8 => {
                    renewals += 1;
                    reservation = self.reserve_sdr().await?;
                }
                None => {
                    return Err(IpmiError::Malformed {
                        command: "get sdr",
                        detail: "the reservation kept being cancelled".into(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_full_sensor_record() {
        // The record the ipmi_sim recipe adds: "MB Temp", sensor 1, type 0x01 (temperature).
        let name = b"MB Temp";
        let mut body = vec![
            0x20, 0, 1, 7, 1, 0x67, 0x08, 1, 1, 0, 0, 0, 0, 0x38, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0xff, 0, 0xa0, 0x90, 0x70, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        body.push(0xc0 | name.len() as u8);
        body.extend_from_slice(name);
        let mut rec = vec![0, 0, 0x51, 0x01, body.len() as u8];
        rec.extend(body);
        let r = describe(0, &rec);
        assert_eq!(r.record_type, 0x01);
        assert_eq!(r.sensor_number, Some(1));
        assert_eq!(r.sensor_type, Some(0x01));
        assert_eq!(r.name.as_deref(), Some("MB Temp"));
        let _ = describe(0, &rec[..20]);
        let _ = describe(0, &[]);
    }
}
