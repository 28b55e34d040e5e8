//! Bare metal end to end (SPEC §4): a real coordinator and agents, OpenIPMI `ipmi_sim` BMCs on
//! loopback. Add → running with the FRU serial; bad credentials and an unreachable BMC fail
//! with their reasons; every power action reaches the simulator's chassis; the power sync
//! sees changes made behind plinth's back; CSV import is all or nothing; servers follow their
//! agent offline and agents are evened out when one comes back; tenants see only their own;
//! no password in any log, response or the store. The serial console is in
//! baremetal_console.rs, the Redfish inventory in baremetal_inventory.rs.

use plinth_e2e::baremetal::{
    SECRET, Seen, WAIT, add_body, assert_no_secret, call, power, region, server, settled,
};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::{Tenant, tenant};
use plinth_e2e::{Region, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
#[tokio::test]
async fn add_prepare_power_sync_update_and_delete() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.81.1", "az1").await?;
    let a = tenant(&r, "a@example.com").await?;
    let b = tenant(&r, "b@example.com").await?;
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();

    let body = add_body("db-1", &sim.ip, SECRET, Some("a@example.com"));
    let (status, added) = seen.post(&r, "/v1/baremetal", body).await?;
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
    let (status, err) = seen.post(&r, "/v1/baremetal", again).await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("bmc_already_managed")),
        "{err}"
    );
    // An admin is told which server manages it.
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("by bare-metal server {id}")),
        "{message} names {id}"
    );

    // Each action, what the simulator's chassis helper records, and the power after.
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
    // Each is an operation: 202 at once, then its steps (asked, sent to the BMC, the power
    // read after) and its end; the server shows the power the operation ended with.
    for (req, lines, want) in cases {
        let before = sim.actions().len();
        let (status, op) = power(&r, &mut seen, &id, req.clone(), None).await?;
        assert_eq!(
            (status, op["status"].as_str()),
            (202, Some("succeeded")),
            "{req}: {op}"
        );
        let steps: Vec<&str> = op["steps"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["message"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(steps.len(), 3, "{req}: {op}");
        assert!(
            steps[0].ends_with("asked") && steps[1].ends_with("sent to the BMC"),
            "{req}: {op}"
        );
        assert_eq!(steps[2], format!("power now {want}"), "{req}: {op}");
        assert!(
            op["finished_at"].is_string() && op["owner_tenant_id"] == ready["tenant_id"],
            "{op}"
        );
        assert_eq!(server(&r, &id).await?["power_state"], want, "{req}");
        assert_eq!(sim.actions()[before..], lines, "{req}");
    }
    // Every power action of the server is listed, newest first.
    let (status, listed) = r
        .get(&format!(
            "/v1/operations?kind=baremetal_power&resource={id}&limit=100"
        ))
        .await?;
    assert_eq!(
        (status, listed["total"].as_u64()),
        (200, Some(6)),
        "{listed}"
    );
    // A cycle of a running machine: off, then on again (the simulator's own delay).
    power(&r, &mut seen, &id, json!({"action": "on"}), None).await?;
    let before = sim.actions().len();
    let (status, _) = power(&r, &mut seen, &id, json!({"action": "cycle"}), None).await?;
    assert_eq!(status, 202);
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
    let (status, _) = seen.delete(&r, &path).await?;
    assert_eq!(status, 204);
    let again = add_body("db-1-b", &sim.ip, SECRET, Some("b@example.com"));
    let (status, v) = seen.post_as(&r, &b.token, "/v1/baremetal", again).await?;
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
        let (status, v) = seen.post(&r, "/v1/baremetal", body).await?;
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
        let (status, v) = seen
            .post(
                &r,
                &format!("/v1/baremetal/{id}/power"),
                json!({"action": "on"}),
            )
            .await?;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (409, Some("baremetal_not_running")),
            "{label}: {v}"
        );
        let (status, _) = seen.delete(&r, &format!("/v1/baremetal/{id}")).await?;
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
        let (status, v) = seen.post(&r, "/v1/baremetal", body).await?;
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
    // Power waits for its operation, printing the steps as they come; --no-wait prints the
    // operation's id, which `operations show` follows.
    let (ok, text, err) = r.cli(&["baremetal", "power", &id, "on"])?;
    assert!(ok && text.contains("power on"), "{text}{err}");
    assert!(
        err.contains("sent to the BMC") && err.contains("power now on"),
        "{err}"
    );
    let (ok, text, err) = r.cli(&["baremetal", "power", &id, "force_off", "--no-wait"])?;
    let op = text.trim().to_string();
    assert!(ok && op.starts_with("op-"), "{text}{err}");
    plinth_e2e::baremetal::operation_ended(&r, &op, None).await?;
    let (ok, text, err) = r.cli(&["operations", "show", &op])?;
    assert!(
        ok && text.contains("succeeded") && text.contains("power now off"),
        "{text}{err}"
    );
    let (ok, text, err) = r.cli(&[
        "operations",
        "list",
        "--kind",
        "baremetal_power",
        "--resource",
        &id,
    ])?;
    assert!(
        ok && text.contains(&op) && text.contains("2 of 2 operations"),
        "{text}{err}"
    );
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
    let (status, v) = seen.post_as(&r, &a.token, "/v1/baremetal", body).await?;
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let other = add_body("theirs", "10.0.0.4", SECRET, Some("b@example.com"));
    let (status, v) = seen.post_as(&r, &a.token, "/v1/baremetal", other).await?;
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
    let (_, batch) = seen
        .post_as(
            &r,
            &b.token,
            "/v1/baremetal/batch-delete",
            json!({"ids": [id]}),
        )
        .await?;
    assert_eq!(batch[0]["deleted"], false, "{batch}");
    // The owner operates it and follows its operation; the other tenant never sees that.
    let (status, op) = power(&r, &mut seen, &id, json!({"action": "on"}), Some(&a.token)).await?;
    assert_eq!(
        (status, op["status"].as_str()),
        (202, Some("succeeded")),
        "{op}"
    );
    assert_eq!(server(&r, &id).await?["power_state"], "on");
    let op_path = format!("/v1/operations/{}", op["id"].as_str().unwrap_or_default());
    let (status, v) = call(&r, &mut seen, Method::GET, &op_path, Some(&b.token), None).await?;
    assert_eq!(status, 404, "{v}");
    let (_, all) = r.get("/v1/baremetal").await?;
    assert_eq!(all["total"], 1);
    let (_, batch) = seen
        .post_as(
            &r,
            &a.token,
            "/v1/baremetal/batch-delete",
            json!({"ids": [id, "bm-000000000000"]}),
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
        let (status, v) = seen.post(&r, "/v1/baremetal", body).await?;
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
        let (status, op) = power(&r, &mut seen, id, json!({"action": "on"}), None).await?;
        assert_eq!(
            (status, op["status"].as_str()),
            (202, Some("succeeded")),
            "server {i}: {op}"
        );
        assert_eq!(server(&r, id).await?["power_state"], "on", "server {i}");
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
    let (status, op) = power(&r, &mut seen, &back, json!({"action": "force_off"}), None).await?;
    assert_eq!(
        (status, op["status"].as_str()),
        (202, Some("succeeded")),
        "{op}"
    );
    assert_eq!(server(&r, &back).await?["power_state"], "off");
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
