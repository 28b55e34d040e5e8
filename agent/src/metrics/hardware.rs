//! Bare-metal sensors under prometheus ipmi_exporter's names, from the readings of the last
//! health sweep the coordinator asked this agent for (the agent is where they are read, so
//! its `/metrics` serves them: no scrape ever opens a BMC session). Labels: the server's id
//! (`server`), the sensor's `name`, and for `ipmi_sensor_state` its `type`.

use plinth_common::api::Sensor;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The last reading of each server this agent polls: its sensors, or `None` when its BMC did
/// not answer.
#[derive(Default)]
pub struct Hardware {
    servers: Mutex<BTreeMap<String, Option<Vec<Sensor>>>>,
}

/// The ipmi_exporter family that carries a sensor's value, by its type or unit.
fn family_of(s: &Sensor) -> Option<&'static str> {
    match (s.kind.as_str(), s.unit.as_deref()) {
        ("temperature", _) | (_, Some("°C")) => Some("ipmi_temperature_celsius"),
        ("fan", _) | (_, Some("RPM")) => Some("ipmi_fan_speed_rpm"),
        ("voltage", _) | (_, Some("V")) => Some("ipmi_voltage_volts"),
        ("current", _) | (_, Some("A")) => Some("ipmi_current_amperes"),
        (_, Some("W")) => Some("ipmi_power_watts"),
        _ => None,
    }
}

const FAMILIES: [(&str, &str); 7] = [
    (
        "ipmi_up",
        "1 when the server's BMC answered the last health poll.",
    ),
    ("ipmi_temperature_celsius", "Temperature sensor readings."),
    ("ipmi_fan_speed_rpm", "Fan speed sensor readings."),
    ("ipmi_voltage_volts", "Voltage sensor readings."),
    ("ipmi_current_amperes", "Current sensor readings."),
    ("ipmi_power_watts", "Power sensor readings."),
    (
        "ipmi_sensor_state",
        "Sensor state: 0 nominal, 1 warning, 2 critical, NaN not available.",
    ),
];

/// A label value in exposition-format quoting.
fn quoted(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

impl Hardware {
    /// Replaces a server's reading.
    pub fn record(&self, server: &str, sensors: Option<Vec<Sensor>>) {
        let mut map = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(server.to_string(), sensors);
    }

    /// Keeps only `servers` (the ones the coordinator still has this agent poll).
    pub fn retain(&self, servers: &std::collections::HashSet<String>) {
        let mut map = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|id, _| servers.contains(id));
    }

    /// The families as exposition text (the same in OpenMetrics and Prometheus text for
    /// gauges without units); empty when this agent polls no server.
    pub fn encode(&self) -> String {
        let map = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return String::new();
        }
        let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (server, sensors) in map.iter() {
            let srv = quoted(server);
            let up = if sensors.is_some() { 1 } else { 0 };
            lines
                .entry("ipmi_up")
                .or_default()
                .push(format!("ipmi_up{{server=\"{srv}\"}} {up}"));
            for s in sensors.iter().flatten() {
                let name = quoted(&s.name);
                if let (Some(family), Some(v)) = (family_of(s), s.value) {
                    lines.entry(family).or_default().push(format!(
                        "{family}{{name=\"{name}\",server=\"{srv}\"}} {}",
                        number(v)
                    ));
                }
                lines.entry("ipmi_sensor_state").or_default().push(format!(
                    "ipmi_sensor_state{{name=\"{name}\",server=\"{srv}\",type=\"{}\"}} {}",
                    quoted(&s.kind),
                    number(s.status.exporter_state())
                ));
            }
        }
        let mut out = String::new();
        for (family, help) in FAMILIES {
            let Some(samples) = lines.get(family) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
            for l in samples {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_common::api::{SensorStatus, SensorThresholds};

    fn sensor(name: &str, kind: &str, unit: &str, v: f64, status: SensorStatus) -> Sensor {
        Sensor {
            name: name.into(),
            kind: kind.into(),
            value: Some(v),
            unit: Some(unit.into()),
            thresholds: SensorThresholds::default(),
            status,
        }
    }

    #[test]
    fn families_follow_ipmi_exporter() {
        let h = Hardware::default();
        assert_eq!(h.encode(), "");
        h.record(
            "bm-1",
            Some(vec![
                sensor("MB Temp", "temperature", "°C", 42.0, SensorStatus::Ok),
                sensor("Fan \"1\"", "fan", "RPM", 5400.0, SensorStatus::Critical),
            ]),
        );
        h.record("bm-2", None);
        let text = h.encode();
        for want in [
            "# TYPE ipmi_up gauge",
            "ipmi_up{server=\"bm-1\"} 1",
            "ipmi_up{server=\"bm-2\"} 0",
            "ipmi_temperature_celsius{name=\"MB Temp\",server=\"bm-1\"} 42",
            "ipmi_fan_speed_rpm{name=\"Fan \\\"1\\\"\",server=\"bm-1\"} 5400",
            "ipmi_sensor_state{name=\"Fan \\\"1\\\"\",server=\"bm-1\",type=\"fan\"} 2",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        h.retain(&["bm-2".to_string()].into_iter().collect());
        assert!(!h.encode().contains("bm-1"));
    }
}
