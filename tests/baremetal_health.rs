//! Hardware monitoring end to end (issue 24): a real coordinator sweeping health every second
//! and an agent reading OpenIPMI `ipmi_sim` BMCs on 127.0.0.130–139. Sensors with values and
//! status; a temperature past its critical threshold turns the server critical, naming the
//! sensor; an event-log entry is listed once however many sweeps see it; a cleared log is
//! followed; a BMC without sensors is healthy with an empty list; tenants see only their own.

use plinth_e2e::baremetal::{SECRET, WAIT, add_body, region_with, server, settled};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::tenant;
use plinth_e2e::{Region, wait_for};
use reqwest::Method;
use serde_json::Value;

/// An uncorrectable ECC error (memory sensor type, offset 1) as ipmi_sim's console adds it.
const ECC: &str = "sel_add 0x20 0x02 0 0 0 0 0x20 0x00 0x04 0x0c 0x05 0x6f 0x01 0xff 0xff";

async fn get_ok(r: &Region, path: &str) -> anyhow::Result<Value> {
    let (status, v) = r.get(path).await?;
    anyhow::ensure!(status == 200, "GET {path}: {status} {v}");
    Ok(v)
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

/// How many listed entries are of `sensor_type`.
fn of_type(events: &Value, sensor_type: &str) -> usize {
    events["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|e| e["sensor_type"] == sensor_type)
            .count()
    })
}

/// Waits until the server's sensors have been read `n` more times.
async fn sweeps(r: &Region, id: &str, n: usize) -> anyhow::Result<()> {
    let path = format!("/v1/baremetal/{id}/sensors");
    for _ in 0..n {
        let before = get_ok(r, &path).await?["health"]["read_at"].clone();
        wait_for("another health sweep", WAIT, || async {
            let now = get_ok(r, &path).await?["health"]["read_at"].clone();
            Ok((now != before).then_some(()))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn sensors_health_and_the_event_log_follow_the_bmc() -> anyhow::Result<()> {
    let r = region_with(&["--baremetal-health-interval", "1s"]).await?;
    let _agent = r.start_agent("127.0.0.130", "az1").await?;
    let a = tenant(&r, "a@example.com").await?;
    let b = tenant(&r, "b@example.com").await?;
    let mut full = SimBmc::start_with_sensors("127.0.0.135", SECRET, "full")?;
    let mut bare = SimBmc::start_with_sensors("127.0.0.136", SECRET, "none")?;

    let mut ids = Vec::new();
    for (name, sim) in [("hot-1", &full), ("bare-1", &bare)] {
        let body = add_body(name, &sim.ip, SECRET, Some("a@example.com"));
        let (status, added) = r.post("/v1/baremetal", body).await?;
        anyhow::ensure!(status == 202, "{added}");
        let id = added["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(settled(&r, &id).await?["state"], "running");
        ids.push(id);
    }
    let (hot, plain) = (ids[0].as_str(), ids[1].as_str());
    let sensors_of = format!("/v1/baremetal/{hot}/sensors");
    let events_of = format!("/v1/baremetal/{hot}/events");

    // Read: values, units and status ok; the list entry healthy.
    let list = wait_for("the sensors read", WAIT, || async {
        let v = get_ok(&r, &sensors_of).await?;
        Ok((v["items"].as_array().is_some_and(|i| i.len() == 3)).then_some(v))
    })
    .await?;
    let temp = named(&list, "MB Temp");
    assert_eq!(
        (
            &temp["kind"],
            &temp["value"],
            &temp["unit"],
            &temp["status"]
        ),
        (
            &"temperature".into(),
            &42.0.into(),
            &"°C".into(),
            &"ok".into()
        ),
        "{list}"
    );
    assert_eq!(temp["thresholds"]["upper_critical"], 144.0, "{list}");
    assert_eq!(named(&list, "Fan 1")["unit"], "RPM", "{list}");
    assert_eq!(named(&list, "12V")["value"], 12.0, "{list}");
    assert_eq!(
        (&list["health"]["health"], &list["error"]),
        (&"ok".into(), &Value::Null)
    );
    assert_eq!(server(&r, hot).await?["health"]["health"], "ok");

    // Past the upper critical threshold (149 °C), and an ECC error logged.
    full.emu(&["sensor_set_value 0x20 0 1 0x95 1", ECC])?;
    let entry = wait_for("the list entry critical", WAIT, || async {
        let (_, page) = r.get("/v1/baremetal?q=hot-1").await?;
        let entry = page["items"][0].clone();
        Ok((entry["health"]["health"] == "critical").then_some(entry))
    })
    .await?;
    assert_eq!(entry["health"]["worst_sensor"], "MB Temp", "{entry}");
    let list = get_ok(&r, &sensors_of).await?;
    let temp = named(&list, "MB Temp");
    assert_eq!(
        (&temp["status"], &temp["value"]),
        (&"critical".into(), &149.0.into())
    );
    let events = wait_for("the ECC entry listed", WAIT, || async {
        let v = get_ok(&r, &events_of).await?;
        Ok((of_type(&v, "Memory") == 1).then_some(v))
    })
    .await?;
    let newest = &events["items"][0];
    assert_eq!(
        (&newest["sensor_type"], &newest["direction"]),
        (&"Memory".into(), &"assert".into()),
        "newest first: {events}"
    );
    assert!(
        of_type(&events, "Temperature") >= 1,
        "threshold events: {events}"
    );

    // Three more sweeps: each entry still listed once.
    sweeps(&r, hot, 3).await?;
    let again = get_ok(&r, &events_of).await?;
    assert_eq!(again["items"], events["items"], "nothing listed twice");

    // A cleared log: the older entries stay, a mark says so, and what follows is read.
    full.ipmitool(&["sel", "clear"])?;
    sweeps(&r, hot, 2).await?;
    full.emu(&[ECC])?;
    let resumed = wait_for("the entry after the clear", WAIT, || async {
        let v = get_ok(&r, &events_of).await?;
        Ok((of_type(&v, "Memory") == 2).then_some(v))
    })
    .await?;
    let items = resumed["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        items.len(),
        events["items"].as_array().map_or(0, Vec::len) + 2,
        "{resumed}"
    );
    assert_eq!(items[0]["sensor_type"], "Memory", "{resumed}");
    assert_eq!(
        items[1]["sensor_type"], "Event Logging",
        "the clear marked: {resumed}"
    );
    assert_eq!(
        &items[2..],
        events["items"].as_array().map_or(&[][..], Vec::as_slice)
    );

    // A BMC without sensors: an empty list, healthy, no error.
    let bare_list = wait_for("the bare BMC read", WAIT, || async {
        let v = get_ok(&r, &format!("/v1/baremetal/{plain}/sensors")).await?;
        Ok((v["health"]["read_at"] != Value::Null).then_some(v))
    })
    .await?;
    assert_eq!(bare_list["items"], Value::Array(vec![]), "{bare_list}");
    assert_eq!(
        (&bare_list["health"]["health"], &bare_list["error"]),
        (&"ok".into(), &Value::Null),
        "{bare_list}"
    );

    // Tenants: the owner reads them, another tenant learns nothing; a bad limit names itself.
    for path in [&sensors_of, &events_of] {
        let (status, _) = r.call(Method::GET, path, Some(&a.token), None).await?;
        assert_eq!(status, 200, "{path} as its tenant");
        let (status, v) = r.call(Method::GET, path, Some(&b.token), None).await?;
        assert_eq!(status, 404, "{path} as another tenant: {v}");
    }
    let (status, v) = r.get(&format!("{events_of}?limit=0")).await?;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("limit")),
        "{v}"
    );

    // The CLI's table.
    let (ok, out, err) = r.cli(&["baremetal", "sensors", hot])?;
    assert!(ok, "{err}");
    println!("{out}");
    assert!(out.contains("health: critical (MB Temp)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("MB Temp") && l.contains("149 °C") && l.contains("uc 144")),
        "{out}"
    );
    let (ok, out, err) = r.cli(&["baremetal", "events", hot, "--limit", "1"])?;
    assert!(
        ok && out.contains("Memory") && out.contains("assert"),
        "{out}{err}"
    );

    full.stop();
    bare.stop();
    Ok(())
}
