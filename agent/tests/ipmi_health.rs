//! Hardware monitoring against real `ipmi_sim` BMCs: sensors read from the SDR (parsed by
//! ipmi-rs-core) with their readings converted and judged; values changed on the simulator's
//! console while plinth polls; the event log read incrementally, each entry once, and resumed
//! after the log is cleared; a BMC without sensors gives an empty list.

#![allow(clippy::unwrap_used)]

mod sim;

use plinth_agent::ipmi::sel::SelRead;
use plinth_agent::ipmi::{Ipmi, IpmiSettings, Password, Target};
use plinth_common::api::{Health, HealthSummary, SelCursor, Sensor, SensorStatus};
use sim::SimBmc;
use std::net::IpAddr;

fn admin(sim: &SimBmc) -> Target {
    Target {
        addr: sim.addr(),
        username: "admin".into(),
        password: Password::new("password"),
        suite: None,
    }
}

async fn poll(ipmi: &Ipmi, t: &Target, after: Option<SelCursor>) -> (Vec<Sensor>, SelRead) {
    let mut out =
        plinth_agent::ipmi::sweep::health_sweep(ipmi, vec![((), t.clone(), after)], 1, 64).await;
    out.pop().unwrap().1.unwrap()
}

fn named<'a>(sensors: &'a [Sensor], name: &str) -> &'a Sensor {
    sensors
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {sensors:?}"))
}

/// A memory ECC event as `sel_add` takes it: record type 2, then 13 bytes (timestamp, generator,
/// revision, sensor type 0x0c memory, sensor 5, sensor-specific, offset 1 uncorrectable ECC).
const ECC: &str = "sel_add 0x20 0x02 0 0 0 0 0x20 0x00 0x04 0x0c 0x05 0x6f 0x01 0xff 0xff";

#[tokio::test]
async fn sensors_thresholds_and_the_event_log_follow_the_simulator() {
    let ip: IpAddr = "127.0.0.131".parse().unwrap();
    let sim = SimBmc::start_with(ip, "full");
    let ipmi = Ipmi::new(IpmiSettings::default());
    let t = admin(&sim);

    let (sensors, sel) = poll(&ipmi, &t, None).await;
    assert_eq!(sensors.len(), 3, "{sensors:?}");
    let temp = named(&sensors, "MB Temp");
    assert_eq!(
        (
            temp.kind.as_str(),
            temp.value,
            temp.unit.as_deref(),
            temp.status
        ),
        ("temperature", Some(42.0), Some("°C"), SensorStatus::Ok)
    );
    assert_eq!(temp.thresholds.upper_critical, Some(144.0));
    assert_eq!(temp.thresholds.upper_non_critical, Some(112.0));
    assert_eq!(temp.thresholds.lower_critical, None, "not readable");
    let fan = named(&sensors, "Fan 1");
    assert_eq!(
        (fan.kind.as_str(), fan.value, fan.unit.as_deref()),
        ("fan", Some(5400.0), Some("RPM"))
    );
    assert_eq!(fan.thresholds.lower_critical, Some(1000.0));
    let volts = named(&sensors, "12V");
    assert_eq!(
        (volts.kind.as_str(), volts.value, volts.unit.as_deref()),
        ("voltage", Some(12.0), Some("V"))
    );
    assert_eq!(volts.thresholds.upper_critical, Some(13.2));
    assert_eq!(HealthSummary::of(&sensors), (Health::Ok, None));
    assert!(sel.events.is_empty() && !sel.reset, "{sel:?}");

    // Past the upper critical threshold (149 °C), and the fan below its lower non-critical one.
    sim.emu(&[
        "sensor_set_value 0x20 0 1 0x95 1",
        "sensor_set_value 0x20 0 2 0x1a 0",
        ECC,
    ]);
    let (sensors, sel) = poll(&ipmi, &t, sel.cursor).await;
    assert_eq!(named(&sensors, "MB Temp").status, SensorStatus::Critical);
    assert_eq!(named(&sensors, "MB Temp").value, Some(149.0));
    assert_eq!(named(&sensors, "Fan 1").status, SensorStatus::NonCritical);
    assert_eq!(
        HealthSummary::of(&sensors),
        (Health::Critical, Some("MB Temp".into()))
    );
    // Two threshold events the simulator logged for the temperature, then the ECC entry.
    let words: Vec<String> = sel
        .events
        .iter()
        .map(|e| format!("{} | {} | {}", e.sensor, e.direction, e.description))
        .collect();
    assert_eq!(sel.events.len(), 3, "{words:?}");
    assert_eq!(sel.events[0].sensor, "MB Temp", "{words:?}");
    assert_eq!(sel.events[0].sensor_type, "Temperature");
    let ecc = &sel.events[2];
    assert_eq!(ecc.sensor_type, "Memory", "{words:?}");
    assert_eq!(ecc.direction, "assert");
    assert!(
        ecc.description.to_lowercase().contains("uncorrectable"),
        "{words:?}"
    );

    // Nothing new: nothing listed again.
    let (_, again) = poll(&ipmi, &t, sel.cursor).await;
    assert!(again.events.is_empty() && !again.reset, "{again:?}");
    assert_eq!(again.cursor, sel.cursor);

    // Back to normal, one more event: only it is new.
    sim.emu(&[
        "sensor_set_value 0x20 0 1 0x2a 0",
        "sensor_set_value 0x20 0 2 108 0",
        ECC,
    ]);
    let (sensors, one) = poll(&ipmi, &t, sel.cursor).await;
    assert_eq!(HealthSummary::of(&sensors), (Health::Ok, None));
    assert_eq!(one.events.len(), 1, "{one:?}");
    assert!(!one.reset);

    // A cleared log is noticed, and what comes after it is read from its start.
    let clear = std::process::Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            &ip.to_string(),
            "-U",
            "admin",
            "-P",
            "password",
        ])
        .args(["sel", "clear"])
        .output()
        .unwrap();
    assert!(clear.status.success(), "{clear:?}");
    let (_, cleared) = poll(&ipmi, &t, one.cursor).await;
    assert!(cleared.reset && cleared.events.is_empty(), "{cleared:?}");
    sim.emu(&[ECC]);
    let (_, resumed) = poll(&ipmi, &t, cleared.cursor).await;
    assert_eq!(resumed.events.len(), 1, "{resumed:?}");
    assert_eq!(resumed.events[0].sensor_type, "Memory");
    ipmi.close_all().await;
}

#[tokio::test]
async fn a_bmc_without_sensors_has_an_empty_list() {
    let sim = SimBmc::start_with("127.0.0.132".parse().unwrap(), "none");
    let ipmi = Ipmi::new(IpmiSettings::default());
    let (sensors, sel) = poll(&ipmi, &admin(&sim), None).await;
    assert!(sensors.is_empty(), "{sensors:?}");
    assert!(sel.events.is_empty());
    assert_eq!(HealthSummary::of(&sensors), (Health::Ok, None));
    ipmi.close_all().await;
}
