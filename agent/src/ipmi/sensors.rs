//! Sensors: every full and compact sensor record of the SDR repository (parsed by
//! `ipmi-rs-core`), each with its current reading (Get Sensor Reading), converted with the
//! record's linear formula and judged against its thresholds.

use super::IpmiError;
use super::sel::SensorNames;
use super::session::Session;
use ipmi_rs_core::connection::{Address, Channel};
use ipmi_rs_core::sensor_event::{GetSensorReading, ThresholdReading};
use ipmi_rs_core::storage::sdr::event_reading_type_code::EventReadingTypeCodes;
use ipmi_rs_core::storage::sdr::record::{
    DataFormat, FullSensorRecord, RecordContents, SensorRecordCommon, WithSensorRecordCommon,
};
use ipmi_rs_core::storage::sdr::{Record, SensorType, Unit};
use plinth_common::api::{Sensor, SensorStatus, SensorThresholds};

/// What a sensor type is called in the API (ipmi_exporter's families first).
pub fn kind_of(ty: SensorType) -> String {
    match ty {
        SensorType::Temperature => "temperature".into(),
        SensorType::Fan => "fan".into(),
        SensorType::Voltage => "voltage".into(),
        SensorType::Current => "current".into(),
        SensorType::PowerSupply => "power_supply".into(),
        SensorType::PowerUnit => "power".into(),
        other => other.to_string().to_lowercase().replace(' ', "_"),
    }
}

fn unit_text(unit: Unit) -> Option<String> {
    match unit {
        Unit::Unspecified => None,
        Unit::DegreesCelsius => Some("°C".into()),
        Unit::RevolutionsPerMinute => Some("RPM".into()),
        Unit::Volt => Some("V".into()),
        Unit::Amp => Some("A".into()),
        Unit::Watt => Some("W".into()),
        other => Some(other.display(true, 1u8).trim_start_matches("1.00 ").into()),
    }
}

/// `y = (M·x + B·10^Bexp) · 10^Rexp` on the record's fields (the crate computes the same but
/// only hands it out as text).
pub fn convert(r: &FullSensorRecord, raw: u8) -> Option<f64> {
    let x = match r.analog_data_format? {
        DataFormat::Unsigned => f64::from(raw),
        DataFormat::OnesComplement => {
            let v = raw as i8;
            f64::from(if v < 0 { v + 1 } else { v })
        }
        DataFormat::TwosComplement => f64::from(raw as i8),
    };
    let m = f64::from(r.m);
    let b = f64::from(r.b) * 10f64.powi(i32::from(r.b_exponent));
    let y = (m * x + b) * 10f64.powi(i32::from(r.result_exponent));
    // Round away float noise from the powers of ten (readings have at most a few decimals).
    Some((y * 1e6).round() / 1e6)
}

/// The thresholds' raw bytes sit at offsets 36..=41 of the record (IPMI v2.0 table 43-1: upper
/// non-recoverable, critical, non-critical, then lower); the crate parses but keeps them private.
fn thresholds(r: &FullSensorRecord, bytes: &[u8]) -> SensorThresholds {
    use ipmi_rs_core::storage::sdr::record::ThresholdKind as K;
    let access = &r.capabilities().threshold_access;
    let get = |kind: K, at: usize| {
        let raw = *bytes.get(at)?;
        access.readable(kind).then(|| convert(r, raw)).flatten()
    };
    SensorThresholds {
        upper_non_recoverable: get(K::UpperNonRecoverable, 36),
        upper_critical: get(K::UpperCritical, 37),
        upper_non_critical: get(K::UpperNonCritical, 38),
        lower_non_recoverable: get(K::LowerNonRecoverable, 39),
        lower_critical: get(K::LowerCritical, 40),
        lower_non_critical: get(K::LowerNonCritical, 41),
    }
}

/// The status a threshold reading's bits say.
pub fn status_of(reading: &ThresholdReading, threshold_based: bool) -> SensorStatus {
    if reading.reading.is_none() || reading.scanning_disabled {
        return SensorStatus::NotAvailable;
    }
    let Some(t) = reading.threshold_status.filter(|_| threshold_based) else {
        return SensorStatus::Ok;
    };
    if t.at_or_above_non_recoverable || t.at_or_below_lower_non_recoverable {
        SensorStatus::NonRecoverable
    } else if t.at_or_above_upper_critical || t.at_or_below_lower_critical {
        SensorStatus::Critical
    } else if t.at_or_above_upper_non_critical || t.at_or_below_lower_non_critical {
        SensorStatus::NonCritical
    } else {
        SensorStatus::Ok
    }
}

fn name_of(common: &SensorRecordCommon) -> String {
    let name = common.sensor_id.to_string();
    let name = name.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if name.is_empty() {
        format!("sensor {}", common.key.sensor_number.get())
    } else {
        name.to_string()
    }
}

/// A sensor record's parts this module reads; `None` for records that are not sensors.
fn sensor_record(record: &Record) -> Option<(&SensorRecordCommon, Option<&FullSensorRecord>)> {
    match &record.contents {
        RecordContents::FullSensor(f) => Some((f.common(), Some(f))),
        RecordContents::CompactSensor(c) => Some((c.common(), None)),
        _ => None,
    }
}

impl Session {
    /// Every full and compact sensor with its reading now, and the sensors' names by number
    /// (for the event log). A sensor the BMC has no reading for is `not_available`.
    pub async fn sensors(&mut self) -> Result<(Vec<Sensor>, SensorNames), IpmiError> {
        let records = self.sdr_raw().await?;
        let mut out = Vec::new();
        let mut names = SensorNames::new();
        for (_, bytes) in records {
            // A record the crate cannot parse (OEM, damaged) is skipped: the rest still count.
            let Ok(record) = Record::parse(&bytes) else {
                continue;
            };
            let Some((common, full)) = sensor_record(&record) else {
                continue;
            };
            let threshold_based =
                common.event_reading_type_code == EventReadingTypeCodes::Threshold;
            let owner = Address(common.key.owner_id.into());
            let cmd = GetSensorReading::new(common.key.sensor_number, owner, Channel::Primary);
            let reading = match self.execute("get sensor reading", cmd).await {
                Ok((raw, _)) => Some(ThresholdReading::from(&raw)),
                // 0xcb: the sensor is not present (hot-plug bays, absent DIMMs).
                Err(IpmiError::Completion {
                    code: 0xcb | 0xcd, ..
                }) => None,
                Err(e) => return Err(e),
            };
            let status = reading.as_ref().map_or(SensorStatus::NotAvailable, |r| {
                status_of(r, threshold_based)
            });
            let value = match (full, reading.as_ref().and_then(|r| r.reading)) {
                (Some(f), Some(raw)) if threshold_based && status != SensorStatus::NotAvailable => {
                    convert(f, raw)
                }
                _ => None,
            };
            let name = name_of(common);
            names.insert(common.key.sensor_number.get(), name.clone());
            out.push(Sensor {
                name,
                kind: kind_of(common.ty),
                value,
                unit: unit_text(common.sensor_units.base_unit),
                thresholds: full.map(|f| thresholds(f, &bytes)).unwrap_or_default(),
                status,
            });
        }
        Ok((out, names))
    }
}
