//! Bare metal end to end (SPEC §4): a real coordinator and agents, OpenIPMI `ipmi_sim` BMCs on
//! loopback. Add → running with the FRU serial; bad credentials and an unreachable BMC fail
//! with their reasons; every power action reaches the simulator's chassis; the power sync
//! sees changes made behind plinth's back; CSV import is all or nothing; servers follow their
//! agent offline; tenants see only their own; no password in any log, response or the store.

use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::{Tenant, tenant};
use plinth_e2e::{Region, RegionOptions, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The simulators' admin password: distinctive, so a leak is found by a plain search.
const SECRET: &str = "Zq7-sEcReT-91x";
const WAIT: Duration = Duration::from_secs(60);

async fn region() -> anyhow::Result<Region> {
    let opts = RegionOptions {
        extra_args: vec!["--baremetal-sync-interval".into(), "1s".into()],
        ..RegionOptions::default()
    };
    let r = Region::start_with(opts).await?;
    r.create_cluster("az1").await?;
    Ok(r)
}

fn add_body(name: &str, ip: &str, password: &str, tenant: Option<&str>) -> Value {
    let mut b = json!({
        "name": name, "ipmi_ip": ip, "ipmi_username": "admin", "ipmi_password": password,
        "rack_location": "R7-U12", "label": "db",
    });
    if let Some(t) = tenant {
        b["tenant_email"] = json!(t);
    }
    b
}

/// Every response body the test saw, to search for the password at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, v: &Value) -> Value {
        self.0.push(v.to_string());
        v.clone()
    }
}

async fn call(
    r: &Region,
    seen: &mut Seen,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let token = token.unwrap_or(&r.admin_token);
    let (status, v) = r.call(method, path, Some(token), body).await?;
    seen.keep(&v);
    Ok((status, v))
}

async fn server(r: &Region, id: &str) -> anyhow::Result<Value> {
    let (status, v) = r.get(&format!("/v1/baremetal/{id}")).await?;
    anyhow::ensure!(status == 200, "GET {id}: {status} {v}");
    Ok(v)
}

/// Waits until the server leaves `preparing`; returns it.
async fn settled(r: &Region, id: &str) -> anyhow::Result<Value> {
    wait_for(&format!("{id} prepared"), WAIT, || async {
        let v = server(r, id).await?;
        Ok((v["state"] != "preparing").then_some(v))
    })
    .await
}

/// No log file the test produced, no response it saw and no byte of the store holds `secret`.
fn assert_no_secret(r: &Region, seen: &Seen, secret: &str) -> anyhow::Result<()> {
    let mut checked = 0;
    let mut stack = vec![r.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".log") || name.contains(".db") {
                let bytes = std::fs::read(&path)?;
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                anyhow::ensure!(!found, "the password is in {}", path.display());
                checked += 1;
            }
        }
    }
    anyhow::ensure!(
        checked >= 2,
        "found only {checked} logs and stores to search"
    );
    for body in &seen.0 {
        anyhow::ensure!(
            !body.contains(secret),
            "the password is in a response: {body}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn add_prepare_power_sync_update_and_delete() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.81.1", "az1").await?;
    let a = tenant(&r, "a@example.com").await?;
    let b = tenant(&r, "b@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();

    let body = add_body("db-1", &sim.ip, SECRET, Some("a@example.com"));
    let (status, added) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        None,
        Some(body),
    )
    .await?;
    assert_eq!(status, 202, "{added}");
    assert_eq!(added["state"], "preparing");
    assert!(added.get("ipmi_password").is_none(), "{added}");
    let id = added["id"].as_str().unwrap_or_default().to_string();
    let ready = seen.keep(&settled(&r, &id).await?);
    assert_eq!(ready["state"], "running", "{ready}");
    assert_eq!(ready["sn"], "PRODUCT-SN-0001");
    assert_eq!(ready["model"], "SimServer 1000");
    assert_eq!(ready["manufacturer"], "Acme");
    assert_eq!(ready["power_state"], "off");
    assert_eq!(ready["tenant_email"], "a@example.com");
    assert_eq!(ready["console_state"], "inactive");
    let op = ready["operation_id"].as_str().unwrap_or_default();
    let (status, op) = r.get(&format!("/v1/operations/{op}")).await?;
    assert_eq!(
        (status, op["status"].as_str()),
        (200, Some("succeeded")),
        "{op}"
    );

    // The same BMC twice: refused.
    let again = add_body("db-1-again", &sim.ip, SECRET, Some("b@example.com"));
    let (status, err) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        None,
        Some(again),
    )
    .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("bmc_already_managed")),
        "{err}"
    );

    // Each action, what the simulator's chassis helper records, and the power after.
    let power_path = format!("/v1/baremetal/{id}/power");
    let cases = [
        (json!({"action": "on"}), vec!["power 1"], "on"),
        (
            json!({"action": "reboot", "hard": true}),
            vec!["reset 1"],
            "on",
        ),
        (json!({"action": "off"}), vec!["shutdown 1"], "off"),
        (json!({"action": "cycle"}), vec!["power 1"], "on"),
        (
            json!({"action": "reboot"}),
            vec!["shutdown 1", "power 1"],
            "on",
        ),
        (json!({"action": "force_off"}), vec!["power 0"], "off"),
    ];
    for (req, lines, power) in cases {
        let before = sim.actions().len();
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            &power_path,
            None,
            Some(req.clone()),
        )
        .await?;
        assert_eq!(status, 200, "{req}: {v}");
        assert_eq!(v["power_state"], power, "{req}: {v}");
        assert_eq!(sim.actions()[before..], lines, "{req}");
    }
    // A cycle of a running machine: off, then on again (the simulator's own delay).
    call(
        &r,
        &mut seen,
        Method::POST,
        &power_path,
        None,
        Some(json!({"action": "on"})),
    )
    .await?;
    let before = sim.actions().len();
    let (status, _) = call(
        &r,
        &mut seen,
        Method::POST,
        &power_path,
        None,
        Some(json!({"action": "cycle"})),
    )
    .await?;
    assert_eq!(status, 200);
    wait_for("the cycle to power on again", WAIT, || async {
        Ok((sim.actions()[before..] == ["power 0", "power 1"]).then_some(()))
    })
    .await?;

    // The cycle's power-on came after its answer (which read off): the sync sees it.
    wait_for("the sync to see the cycle's power on", WAIT, || async {
        let v = server(&r, &id).await?;
        Ok((v["power_state"] == "on").then_some(()))
    })
    .await?;
    // Power changed behind plinth's back: the sync sees it and records when.
    sim.ipmitool(&["chassis", "power", "off"])?;
    let synced = wait_for("the sync to see power off", WAIT, || async {
        let v = server(&r, &id).await?;
        Ok((v["power_state"] == "off").then_some(v))
    })
    .await?;
    let history = synced["power_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(history[0]["power_state"], "off", "{synced}");
    assert_eq!(history[0]["source"], "sync", "{synced}");
    assert!(synced["power_changed_at"].is_string());

    // Update: rack location and label only.
    let path = format!("/v1/baremetal/{id}");
    let (status, v) = call(
        &r,
        &mut seen,
        Method::PATCH,
        &path,
        None,
        Some(json!({"rack_location": "R9-U1", "label": ""})),
    )
    .await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["rack_location"].as_str(), v["label"].as_str()),
        (Some("R9-U1"), None)
    );
    let (status, v) = call(
        &r,
        &mut seen,
        Method::PATCH,
        &path,
        None,
        Some(json!({"name": "x"})),
    )
    .await?;
    assert_eq!(status, 400, "{v}");

    // List: fuzzy search over the seed's columns.
    for (q, n) in [
        ("product-sn", 1),
        ("r9-u", 1),
        ("simserver", 1),
        ("nothing-like-it", 0),
    ] {
        let (_, page) = call(
            &r,
            &mut seen,
            Method::GET,
            &format!("/v1/baremetal?q={q}"),
            None,
            None,
        )
        .await?;
        assert_eq!(page["total"], n, "q={q}: {page}");
    }

    // Delete never touches power; the BMC can then be added for another tenant.
    let before = sim.actions().len();
    let (status, _) = call(&r, &mut seen, Method::DELETE, &path, None, None).await?;
    assert_eq!(status, 204);
    let again = add_body("db-1-b", &sim.ip, SECRET, Some("b@example.com"));
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        Some(&b.token),
        Some(again),
    )
    .await?;
    assert_eq!(status, 202, "{v}");
    let readded = settled(&r, v["id"].as_str().unwrap_or_default()).await?;
    assert_eq!(readded["state"], "running", "{readded}");
    assert_eq!(readded["tenant_email"], "b@example.com");
    assert_eq!(
        sim.actions().len(),
        before,
        "no power action from delete or re-add"
    );
    let _ = a;
    assert_no_secret(&r, &seen, SECRET)
}

#[tokio::test]
async fn bad_credentials_and_unreachable_bmcs_fail_with_reasons() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.82.1", "az1").await?;
    tenant(&r, "a@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();
    let nobody = plinth_e2e::bmc::loopback_address();
    let wrong = "Wr0ng-pa55-77q";
    let cases = [
        (
            "wrong password",
            sim.ip.clone(),
            wrong,
            "password for user 'admin' is wrong",
        ),
        ("unreachable", nobody, SECRET, "did not answer"),
    ];
    for (label, ip, password, reason) in cases {
        let body = add_body(label, &ip, password, Some("a@example.com"));
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            "/v1/baremetal",
            None,
            Some(body),
        )
        .await?;
        assert_eq!(status, 202, "{label}: {v}");
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let failed = seen.keep(&settled(&r, &id).await?);
        assert_eq!(failed["state"], "failed", "{label}: {failed}");
        let got = failed["reason"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{label}: {got}");
        let op = failed["operation_id"].as_str().unwrap_or_default();
        let (_, op) = r.get(&format!("/v1/operations/{op}")).await?;
        assert_eq!(op["status"], "failed", "{label}: {op}");
        assert_eq!(op["error"].as_str(), Some(got), "{label}: {op}");
        // Only delete is allowed now.
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            &format!("/v1/baremetal/{id}/power"),
            None,
            Some(json!({"action": "on"})),
        )
        .await?;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("baremetal_not_running")),
            "{label}: {v}"
        );
        let (status, _) = call(
            &r,
            &mut seen,
            Method::DELETE,
            &format!("/v1/baremetal/{id}"),
            None,
            None,
        )
        .await?;
        assert_eq!(status, 204, "{label}");
        assert_no_secret(&r, &seen, password)?;
    }
    // Bad input is refused up front, naming the field.
    let cases = [
        (
            "ipmi_ip",
            add_body("x", "10.0.0.300", SECRET, Some("a@example.com")),
        ),
        ("tenant_email", add_body("x", "10.0.0.3", SECRET, None)),
        (
            "tenant_email",
            add_body("x", "10.0.0.3", SECRET, Some("nobody@example.com")),
        ),
        (
            "rack_location",
            json!({"name": "x", "ipmi_ip": "10.0.0.3", "ipmi_username": "admin",
            "ipmi_password": SECRET, "rack_location": "", "tenant_email": "a@example.com"}),
        ),
    ];
    for (field, body) in cases {
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            "/v1/baremetal",
            None,
            Some(body),
        )
        .await?;
        assert_eq!(status, 400, "{field}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{field}: {v}");
    }
    assert_no_secret(&r, &seen, SECRET)
}

fn csv(rows: &[String]) -> String {
    let mut text = "Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label\r\n".to_string();
    for row in rows {
        text.push_str(row);
        text.push_str("\r\n");
    }
    text
}

async fn import(
    r: &Region,
    token: &str,
    query: &str,
    body: String,
) -> anyhow::Result<(u16, Value)> {
    let resp = r
        .http
        .post(format!("{}/v1/baremetal/import{query}", r.url))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

#[tokio::test]
async fn csv_import_is_all_or_nothing() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.83.1", "az1").await?;
    let t = tenant(&r, "a@example.com").await?;
    let sims = [SimBmc::start(SECRET)?, SimBmc::start(SECRET)?];
    let mut seen = Seen::default();
    let good: Vec<String> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| format!("node-{i},{},admin,{SECRET},R1-U{i},\"rack, row {i}\"", s.ip))
        .collect();

    // One bad address, one address twice: refused with a per-row report; nothing imported.
    let mut rows = good.clone();
    rows.push(format!("bad,10.0.0.999,admin,{SECRET},R1-U9,"));
    rows.push(format!("twice,{},admin,{SECRET},R1-U8,", sims[0].ip));
    let (status, v) = import(
        &r,
        &r.admin_token,
        "?tenant_email=a@example.com",
        csv(&rows),
    )
    .await?;
    seen.keep(&v);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_csv")),
        "{v}"
    );
    let report = v["rows"].as_array().cloned().unwrap_or_default();
    let errors: Vec<(u64, usize)> = report
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap_or(0),
                row["errors"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(errors, [(2, 0), (3, 0), (4, 1), (5, 1)], "{v}");
    assert!(
        report[2]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("IPMIIP"),
        "{v}"
    );
    assert!(
        report[3]["errors"][0]
            .as_str()
            .unwrap_or("")
            .contains("repeats line 2"),
        "{v}"
    );
    let (_, page) = r.get("/v1/baremetal").await?;
    assert_eq!(page["total"], 0, "nothing was imported: {page}");

    // A header that is not exactly the one: refused.
    let wrong = "Name,IP,User,Password,Rack,Label\r\nx,10.0.0.1,a,b,c,d\r\n".to_string();
    let (status, v) = import(&r, &r.admin_token, "?tenant_email=a@example.com", wrong).await?;
    assert_eq!(status, 400, "{v}");

    // The good rows, by the tenant itself: all added and prepared.
    let (status, v) = import(&r, &t.token, "", csv(&good)).await?;
    seen.keep(&v);
    assert_eq!((status, v["imported"].as_u64()), (202, Some(2)), "{v}");
    for row in v["rows"].as_array().cloned().unwrap_or_default() {
        let ready = seen.keep(&settled(&r, row["id"].as_str().unwrap_or_default()).await?);
        assert_eq!(ready["state"], "running", "{ready}");
        assert_eq!(ready["sn"], "PRODUCT-SN-0001");
    }
    let (_, page) = r.get("/v1/baremetal?q=rack,%20row%201").await?;
    assert_eq!(page["total"], 1, "a quoted label with a comma: {page}");

    // The CLI: list, show, power, a refused import with its report, update, add, delete.
    let id = page["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (ok, list, err) = r.cli(&["baremetal", "list"])?;
    assert!(ok, "{err}");
    assert!(
        list.contains("node-0") && list.contains("node-1") && list.contains("PRODUCT-SN-0001"),
        "{list}"
    );
    let (ok, show, err) = r.cli(&["baremetal", "show", &id])?;
    assert!(
        ok && show.contains("SimServer 1000") && show.contains("power changes"),
        "{show}{err}"
    );
    let (ok, text, err) = r.cli(&["baremetal", "power", &id, "on"])?;
    assert!(ok && text.contains("power on"), "{text}{err}");
    let bad_file = r.dir.path().join("bad.csv");
    std::fs::write(&bad_file, csv(&[format!("n,not-an-ip,admin,{SECRET},R1,")]))?;
    let bad_path = bad_file.display().to_string();
    let (ok, text, err) = r.cli(&[
        "baremetal",
        "import",
        &bad_path,
        "--tenant-email",
        "a@example.com",
    ])?;
    assert!(
        !ok && text.contains("IPMIIP") && err.contains("nothing was imported"),
        "{text}{err}"
    );
    let (ok, text, err) = r.cli(&["baremetal", "update", &id, "--label", "cli-label"])?;
    assert!(ok && text.contains("cli-label"), "{text}{err}");
    let extra = SimBmc::start(SECRET)?;
    let out = std::process::Command::new(plinth_e2e::bin("plinth"))
        .args([
            "baremetal",
            "add",
            "--name",
            "cli-node",
            "--ipmi-ip",
            &extra.ip,
        ])
        .args([
            "--ipmi-username",
            "admin",
            "--rack-location",
            "R2",
            "--tenant-email",
            "a@example.com",
            "--wait",
        ])
        .env("PLINTH_URL", &r.url)
        .env("PLINTH_TOKEN", &r.admin_token)
        .env("PLINTH_CA", r.data_dir().join("ca.pem"))
        .env("PLINTH_IPMI_PASSWORD", SECRET)
        .env("HOME", r.dir.path())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("running") && text.contains("PRODUCT-SN-0001"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
    let (ok, text, err) = r.cli(&["baremetal", "delete", &id])?;
    assert!(ok && text.contains("deleted"), "{text}{err}");
    assert_no_secret(&r, &seen, SECRET)
}

#[tokio::test]
async fn tenants_see_and_operate_only_their_own() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.84.1", "az1").await?;
    let a: Tenant = tenant(&r, "a@example.com").await?;
    let b: Tenant = tenant(&r, "b@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();

    // A tenant adds for itself, and only for itself.
    let body = add_body("mine", &sim.ip, SECRET, None);
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        Some(&a.token),
        Some(body),
    )
    .await?;
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let other = add_body("theirs", "10.0.0.4", SECRET, Some("b@example.com"));
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        Some(&a.token),
        Some(other),
    )
    .await?;
    assert_eq!(status, 403, "{v}");
    assert_eq!(settled(&r, &id).await?["state"], "running");

    let path = format!("/v1/baremetal/{id}");
    let (_, mine) = call(
        &r,
        &mut seen,
        Method::GET,
        "/v1/baremetal",
        Some(&a.token),
        None,
    )
    .await?;
    assert_eq!(mine["total"], 1);
    let (_, theirs) = call(
        &r,
        &mut seen,
        Method::GET,
        "/v1/baremetal",
        Some(&b.token),
        None,
    )
    .await?;
    assert_eq!(theirs["total"], 0, "{theirs}");
    let attempts = [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"label": "x"}))),
        (
            Method::POST,
            format!("{path}/power"),
            Some(json!({"action": "on"})),
        ),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, p, body) in attempts {
        let (status, v) = call(&r, &mut seen, method.clone(), &p, Some(&b.token), body).await?;
        assert_eq!(status, 404, "{method} {p}: {v}");
    }
    let (_, batch) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal/batch-delete",
        Some(&b.token),
        Some(json!({"ids": [id]})),
    )
    .await?;
    assert_eq!(batch[0]["deleted"], false, "{batch}");
    // The owner operates it; the admin sees it.
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("{path}/power"),
        Some(&a.token),
        Some(json!({"action": "on"})),
    )
    .await?;
    assert_eq!(
        (status, v["power_state"].as_str()),
        (200, Some("on")),
        "{v}"
    );
    let (_, all) = r.get("/v1/baremetal").await?;
    assert_eq!(all["total"], 1);
    let (_, batch) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal/batch-delete",
        Some(&a.token),
        Some(json!({"ids": [id, "bm-000000000000"]})),
    )
    .await?;
    assert_eq!(
        (batch[0]["deleted"].as_bool(), batch[1]["deleted"].as_bool()),
        (Some(true), Some(false)),
        "{batch}"
    );
    assert_no_secret(&r, &seen, SECRET)
}

#[tokio::test]
async fn servers_spread_over_ipmi_agents_and_follow_them_offline() -> anyhow::Result<()> {
    let r = region().await?;
    let mut first = r.start_agent("127.0.85.1", "az1").await?;
    let second = r.start_agent("127.0.85.2", "az1").await?;
    let _no_ipmi = r
        .start_agent_with_flags("127.0.85.3", "az1", &["--ipmi", "false"])
        .await?;
    for a in [&first.host_id, &second.host_id] {
        r.wait_agent(a, "online").await?;
    }
    tenant(&r, "a@example.com").await?;
    let sims = [SimBmc::start(SECRET)?, SimBmc::start(SECRET)?];
    let mut seen = Seen::default();
    let mut ids = Vec::new();
    for (i, sim) in sims.iter().enumerate() {
        let body = add_body(&format!("n{i}"), &sim.ip, SECRET, Some("a@example.com"));
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            "/v1/baremetal",
            None,
            Some(body),
        )
        .await?;
        assert_eq!(status, 202, "{v}");
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    let mut agents = Vec::new();
    for id in &ids {
        let v = settled(&r, id).await?;
        assert_eq!(v["state"], "running", "{v}");
        agents.push(v["agent_host_id"].as_str().unwrap_or_default().to_string());
    }
    agents.sort();
    let mut want = vec![first.host_id.clone(), second.host_id.clone()];
    want.sort();
    assert_eq!(
        agents, want,
        "one server per IPMI agent, none on the agent without IPMI"
    );

    // The first agent dies: its server moves to the second and still answers.
    first.kill();
    for (i, id) in ids.iter().enumerate() {
        let moved = wait_for("the server on the second agent", WAIT, || async {
            let v = server(&r, id).await?;
            Ok((v["agent_host_id"] == second.host_id.as_str()).then_some(v))
        })
        .await?;
        assert_eq!(moved["state"], "running");
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            &format!("/v1/baremetal/{id}/power"),
            None,
            Some(json!({"action": "on"})),
        )
        .await?;
        assert_eq!(
            (status, v["power_state"].as_str()),
            (200, Some("on")),
            "server {i}: {v}"
        );
    }

    // The first agent comes back: one server moves back to it, evening the two out, and
    // answers there.
    first.run()?;
    r.wait_agent(&first.host_id, "online").await?;
    let back = wait_for("a server back on the first agent", WAIT, || async {
        for id in &ids {
            let v = server(&r, id).await?;
            if v["agent_host_id"] == first.host_id.as_str() {
                return Ok(Some(id.clone()));
            }
        }
        Ok(None)
    })
    .await?;
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("/v1/baremetal/{back}/power"),
        None,
        Some(json!({"action": "force_off"})),
    )
    .await?;
    assert_eq!(
        (status, v["power_state"].as_str()),
        (200, Some("off")),
        "{v}"
    );
    let mut agents = Vec::new();
    for id in &ids {
        agents.push(server(&r, id).await?["agent_host_id"].clone());
    }
    assert_ne!(
        agents[0], agents[1],
        "one server per agent again: {agents:?}"
    );
    assert_no_secret(&r, &seen, SECRET)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn console_socket(r: &Region, url: &str) -> anyhow::Result<Ws> {
    let mut tls = plinth_common::tls::client_config(&r.ca_pem, None)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(tls));
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector)).await?;
    Ok(ws)
}

/// Reads the console until its output holds `want`.
async fn read_until(ws: &mut Ws, want: &str) -> anyhow::Result<String> {
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&seen).contains(want) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| anyhow::anyhow!("no '{want}' in {:?}", String::from_utf8_lossy(&seen)))?;
        match msg {
            Some(Ok(m)) => seen.extend(m.into_data()),
            other => anyhow::bail!("console ended before '{want}': {other:?}"),
        }
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

#[tokio::test]
async fn serial_console_round_trips_over_a_one_time_websocket() -> anyhow::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let r = region().await?;
    let _agent = r.start_agent("127.0.86.1", "az1").await?;
    let a = tenant(&r, "a@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();
    let body = add_body("con", &sim.ip, SECRET, None);
    let (_, v) = call(
        &r,
        &mut seen,
        Method::POST,
        "/v1/baremetal",
        Some(&a.token),
        Some(body),
    )
    .await?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(settled(&r, &id).await?["state"], "running");

    let (status, ticket) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("/v1/baremetal/{id}/console/prepare"),
        Some(&a.token),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{ticket}");
    let url = ticket["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("wss://"), "{url}");
    assert_eq!(server(&r, &id).await?["console_state"], "active");

    let mut ws = console_socket(&r, &url).await?;
    read_until(&mut ws, "login:").await?;
    ws.send(Message::Binary(b"root\r".to_vec().into())).await?;
    read_until(&mut ws, "[echo:ROOT\r]").await?;
    assert!(
        console_socket(&r, &url).await.is_err(),
        "the URL works once"
    );

    // Release closes the viewer and deactivates SOL.
    let (status, v) = call(
        &r,
        &mut seen,
        Method::POST,
        &format!("/v1/baremetal/{id}/console/release"),
        Some(&a.token),
        None,
    )
    .await?;
    assert_eq!(
        (status, v["console_state"].as_str()),
        (200, Some("inactive")),
        "{v}"
    );
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the viewer was closed");

    // The CLI in a terminal (script(1) gives it one): log in, then Ctrl-] leaves and releases.
    // (The simulator's fake serial line sent its login prompt once; it ticks every second.)
    let cli = cli_console(&r, &id)?;
    cli.expect("tick").await?;
    cli.send(b"root\r")?;
    cli.expect("[echo:ROOT").await?;
    cli.send(&[0x1d])?;
    cli.finished().await?;
    assert_eq!(server(&r, &id).await?["console_state"], "inactive");
    assert_no_secret(&r, &seen, SECRET)
}

/// `plinth baremetal console ID` under script(1), its terminal output collected.
struct CliConsole {
    child: std::sync::Mutex<std::process::Child>,
    stdin: std::sync::Mutex<std::process::ChildStdin>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

fn cli_console(r: &Region, id: &str) -> anyhow::Result<CliConsole> {
    use std::process::{Command, Stdio};
    let plinth = plinth_e2e::bin("plinth");
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("{} baremetal console {id}", plinth.display()),
            "/dev/null",
        ])
        .env("PLINTH_URL", &r.url)
        .env("PLINTH_TOKEN", &r.admin_token)
        .env("PLINTH_CA", r.data_dir().join("ca.pem"))
        .env("HOME", r.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().map(|mut o| o.extend_from_slice(&buf[..n])).ok();
        }
    });
    Ok(CliConsole {
        child: std::sync::Mutex::new(child),
        stdin: std::sync::Mutex::new(stdin),
        output,
    })
}

impl CliConsole {
    async fn expect(&self, want: &str) -> anyhow::Result<()> {
        let out = || self.output.lock().map(|o| o.clone()).unwrap_or_default();
        wait_for(&format!("'{want}' on the CLI console"), WAIT, || async {
            Ok(String::from_utf8_lossy(&out()).contains(want).then_some(()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; it showed {:?}", String::from_utf8_lossy(&out())))
    }

    fn send(&self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        let mut stdin = self.stdin.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits for the CLI to exit by itself, successfully.
    async fn finished(&self) -> anyhow::Result<()> {
        let status = wait_for("the CLI console to exit", WAIT, || async {
            let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            Ok(child.try_wait()?)
        })
        .await?;
        anyhow::ensure!(status.success(), "the CLI console exited with {status}");
        Ok(())
    }
}

impl Drop for CliConsole {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Recorded Redfish answers of a two-socket server (one DIMM slot empty), served by Python's
/// http.server over TLS, behind basic auth with the BMC's credentials.
const REDFISH_SERVER: &str = r#"
import base64, http.server, json, ssl, sys
addr, cert, key, user, password = sys.argv[1:6]
R = "/redfish/v1"
cpu = lambda n: {"Id": n, "ProcessorType": "CPU", "Model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
    "TotalCores": 32, "MaxTDPWatts": 205, "ProcessorMemory": [
        {"MemoryType": "L1Cache", "CapacityMiB": 2.5}, {"MemoryType": "L2Cache", "CapacityMiB": 40},
        {"MemoryType": "L3Cache", "CapacityMiB": 48}]}
pages = {
    R + "/Systems": {"Members": [{"@odata.id": R + "/Systems/1"}]},
    R + "/Systems/1": {"Processors": {"@odata.id": R + "/Systems/1/Processors"},
        "Memory": {"@odata.id": R + "/Systems/1/Memory"},
        "PCIeDevices": [{"@odata.id": R + "/Chassis/1/PCIeDevices/NIC1"}]},
    R + "/Systems/1/Processors": {"Members": [{"@odata.id": R + "/Systems/1/Processors/CPU0"},
        {"@odata.id": R + "/Systems/1/Processors/CPU1"}]},
    R + "/Systems/1/Processors/CPU0": cpu("CPU0"),
    R + "/Systems/1/Processors/CPU1": cpu("CPU1"),
    R + "/Systems/1/Memory": {"Members": [{"@odata.id": R + "/Systems/1/Memory/A1"},
        {"@odata.id": R + "/Systems/1/Memory/A2"}]},
    R + "/Systems/1/Memory/A1": {"Manufacturer": "Samsung", "SerialNumber": "DIMM-SN-A1",
        "CapacityMiB": 32768, "OperatingSpeedMhz": 3200, "Status": {"State": "Enabled"}},
    R + "/Systems/1/Memory/A2": {"Status": {"State": "Absent"}},
    R + "/Chassis/1/PCIeDevices/NIC1": {"Name": "NIC1", "Manufacturer": "Mellanox", "Model": "ConnectX-6"},
}
want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401); self.end_headers(); return
        page = pages.get(self.path.rstrip("/"))
        body = json.dumps(page).encode() if page is not None else b"{}"
        self.send_response(200 if page is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((addr, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

#[tokio::test]
async fn inventory_comes_from_redfish_or_is_unknown() -> anyhow::Result<()> {
    use plinth_common::tls::{Ca, LeafSpec, Role};
    let r = region().await?;
    let with_redfish = SimBmc::start(SECRET)?;
    let ipmi_only = SimBmc::start(SECRET)?;
    // The BMC's certificate comes from a CA of its own, which the agent is given.
    let (ca, _) = Ca::generate("bmc-ca")?;
    let mut spec = LeafSpec::new("bmc", Role::Coordinator, Duration::from_secs(3600));
    spec.server = true;
    spec.ips = vec![with_redfish.ip.parse()?];
    let (cert, key) = ca.issue_with_new_key(&spec)?;
    let dir = r.dir.path();
    for (name, text) in [
        ("bmc.pem", &cert),
        ("bmc.key", &key),
        ("bmc-ca.pem", &ca.cert_pem().to_string()),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    std::fs::write(dir.join("redfish.py"), REDFISH_SERVER)?;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(dir.join("redfish.py"))
        .arg(&with_redfish.ip)
        .arg(dir.join("bmc.pem"))
        .arg(dir.join("bmc.key"))
        .args(["admin", SECRET]);
    let _redfish = plinth_e2e::process::Daemon::spawn(cmd, &dir.join("redfish.log"))?;
    let ca_file = dir.join("bmc-ca.pem").display().to_string();
    let _agent = r
        .start_agent_with_flags("127.0.87.1", "az1", &["--redfish-ca-file", &ca_file])
        .await?;
    tenant(&r, "a@example.com").await?;
    let mut seen = Seen::default();
    let mut ids = Vec::new();
    for (name, sim) in [("rf", &with_redfish), ("plain", &ipmi_only)] {
        let body = add_body(name, &sim.ip, SECRET, Some("a@example.com"));
        let (status, v) = call(
            &r,
            &mut seen,
            Method::POST,
            "/v1/baremetal",
            None,
            Some(body),
        )
        .await?;
        assert_eq!(status, 202, "{v}");
        ids.push(v["id"].as_str().unwrap_or_default().to_string());
    }
    let read = |id: String| {
        let r = &r;
        async move {
            wait_for("the inventory to be read", WAIT, || async {
                let v = server(r, &id).await?;
                Ok((v["inventory"]["note"]
                    .as_str()
                    .is_none_or(|n| !n.starts_with("not read yet")))
                .then_some(v))
            })
            .await
        }
    };
    let rf = seen.keep(&read(ids[0].clone()).await?);
    let inv = &rf["inventory"];
    assert_eq!(inv["source"], "redfish", "{rf}");
    assert_eq!(inv["cpus"].as_array().map(Vec::len), Some(2), "{inv}");
    let cpu = &inv["cpus"][0];
    assert_eq!(cpu["model"], "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
    assert_eq!(
        (cpu["cores"].as_u64(), cpu["rated_power_watts"].as_u64()),
        (Some(32), Some(205))
    );
    assert_eq!(
        (
            cpu["l1_cache_kb"].as_u64(),
            cpu["l2_cache_kb"].as_u64(),
            cpu["l3_cache_kb"].as_u64()
        ),
        (Some(2560), Some(40960), Some(49152))
    );
    let memory = inv["memory"].as_array().cloned().unwrap_or_default();
    assert_eq!(memory.len(), 1, "the empty slot is left out: {inv}");
    assert_eq!(memory[0]["vendor"], "Samsung");
    assert_eq!(memory[0]["serial"], "DIMM-SN-A1");
    assert_eq!(
        (
            memory[0]["capacity_gb"].as_f64(),
            memory[0]["speed_mhz"].as_u64()
        ),
        (Some(32.0), Some(3200))
    );
    assert_eq!(inv["pcie_devices"][0]["model"], "ConnectX-6", "{inv}");

    let plain = seen.keep(&read(ids[1].clone()).await?);
    assert_eq!(plain["state"], "running");
    assert_eq!(plain["inventory"]["source"], "unknown", "{plain}");
    assert!(
        plain["inventory"]["note"]
            .as_str()
            .unwrap_or("")
            .contains("no Redfish service"),
        "{plain}"
    );
    assert_no_secret(&r, &seen, SECRET)
}
