//! The API keeps its document's promises (issue 18 item 2): Schemathesis (pinned, in the venv
//! `scripts/install-deps.sh` makes) runs every operation of the document the coordinator serves
//! against a live region, once with the admin's token and once with a tenant's, and any
//! server error, undocumented status, wrong content type or body off its schema fails the test
//! with Schemathesis's report.
//!
//! The region has real things for the generated requests to reach: the agent's host (libvirt's
//! test driver, with a fixture sysfs of USB devices and GPUs), a tenant with an instance, an
//! uploaded and an imported image (from a local HTTP server), a signed download link, a
//! segment with an EIP, a bare-metal server on an `ipmi_sim` BMC, and for each run its own
//! spares to delete (an instance, an image, an image in the recycle bin, an EIP, a bare-metal
//! server, a token). Each operation's path parameters are fixed to those ids; the fields that
//! make the coordinator reach out (an import's `url`, a BMC's `ipmi_ip`) are fixed to those
//! local peers, so no request leaves 127.0.0.0/8. The tenant runs first, then the admin,
//! whose run may change what the tenant's saw (later requests meeting 404 or 409 is fine:
//! those are documented too).

use plinth_agent::devices::fixture::standard_host;
use plinth_e2e::baremetal::{SECRET, add_body, settled as bm_settled};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::{self as inst, MIB, Tenant};
use plinth_e2e::process::Daemon;
use plinth_e2e::{Agent, Region, RegionOptions, servers, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCHEMATHESIS: &str = "/opt/plinth-test/schemathesis/bin/schemathesis";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// Per operation and phase; with ~90 operations both runs together take about a minute.
/// `PLINTH_SCHEMATHESIS_MAX_EXAMPLES` and `PLINTH_SCHEMATHESIS_SEED` change them for a
/// longer or different search by hand.
const MAX_EXAMPLES: &str = "25";
const SEED: &str = "18";

fn setting(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}
/// One run's bound; a healthy run needs a fraction of it.
const RUN_DEADLINE: Duration = Duration::from_secs(600);
const SETTLE: Duration = Duration::from_secs(60);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// The real ids the generated requests use, and the local peers' addresses.
struct Fixture {
    host: String,
    tenant: Tenant,
    instance: String,
    /// An instance on another host (cluster az2), for USB assign: libvirt's test driver has
    /// no live attach (the agent's 500, a documented 503 `agent_call_failed`, as
    /// tests/devices.rs checks), so assign is driven to the host check here (but see
    /// `config`) and the attach itself is tested on a real libvirtd in tests/devices.rs.
    elsewhere: String,
    image: String,
    imported: String,
    operation: String,
    download: (String, String, String),
    segment: String,
    eip: String,
    baremetal: String,
    import_url: String,
    bmc_ip: String,
}

/// What one run's deletes (and restores) take, so that the other run still finds the
/// fixture's things.
struct Spares {
    /// A second host (no IPMI, so no bare metal is put on it) to delete, re-enroll and
    /// revoke the certificate of: the fixture's agent stays online for the rest.
    host: String,
    /// That host's agent's certificate and key, for the agent API (`/v1/agent/...`).
    agent_pem: String,
    instance: String,
    image: String,
    /// Images in the recycle bin: one to restore, one to destroy.
    binned: [String; 2],
    eip: String,
    baremetal: String,
    token: String,
}

/// The fixture host's devices (agent/src/devices/fixture.rs `standard_host`).
const GPU: &str = "0000:41:00.0";
const USB: &str = "1-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_keeps_the_documents_promises() -> anyhow::Result<()> {
    assert!(
        Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run scripts/install-deps.sh (it makes the venv)"
    );
    let opts = RegionOptions {
        extra_args: vec!["--baremetal-sync-interval".into(), "1s".into()],
        ..RegionOptions::default()
    };
    let mut r = Region::start_with(opts).await?;
    r.create_cluster("az1").await?;
    let sysfs = r.dir.path().join("sysfs");
    let devices = standard_host(&sysfs);
    let _kernel = devices.kernel();
    let sysfs_arg = vec!["--sysfs-root".to_string(), sysfs.to_string_lossy().into()];
    let mut agent = r
        .start_agent_with_args("127.0.91.1", "az1", "test:///default", sysfs_arg)
        .await?;
    r.wait_agent(&agent.host_id, "online").await?;
    let files = r.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &r.dir.path().join("http.log"))?;
    let mut bmcs = [
        SimBmc::start(SECRET)?,
        SimBmc::start(SECRET)?,
        SimBmc::start(SECRET)?,
    ];
    let mut f = fixture(&r, &agent.host_id, &files, http.port, &bmcs[0].ip).await?;
    let mut spare_agents = Vec::new();
    r.create_cluster("az2").await?;
    for ip in ["127.0.91.2", "127.0.91.3"] {
        let no_ipmi = vec!["--ipmi".to_string(), "false".to_string()];
        let agent = r
            .start_agent_with_args(ip, "az2", "test:///default", no_ipmi)
            .await?;
        r.wait_agent(&agent.host_id, "online").await?;
        spare_agents.push(agent);
    }
    f.elsewhere = instance_in(
        &r,
        &f.tenant,
        &f.image,
        "elsewhere",
        json!({"cluster_id": "az2"}),
    )
    .await?;
    let tenant_spares = spares(&r, &f, &spare_agents[0], &bmcs[1].ip, Some(&f.tenant.id)).await?;
    let admin_spares = spares(&r, &f, &spare_agents[1], &bmcs[2].ip, None).await?;

    let tenant_report = schemathesis(&r, &f, &tenant_spares, "tenant", &f.tenant.token).await?;
    let admin_report = schemathesis(&r, &f, &admin_spares, "admin", &r.admin_token).await?;
    let story = if tenant_report.0 && admin_report.0 {
        String::new()
    } else {
        story(&r, &f, &spare_agents).await
    };

    agent.stop();
    for spare in &mut spare_agents {
        spare.stop();
    }
    r.stop();
    for bmc in &mut bmcs {
        bmc.stop();
    }
    drop(http);
    let mut failed = String::new();
    for (who, (ok, report)) in [("tenant", tenant_report), ("admin", admin_report)] {
        if ok {
            println!("schemathesis as the {who}:\n{}", summary(&report));
        } else {
            failed.push_str(&format!(
                "schemathesis as the {who} found failures:\n{report}\n"
            ));
        }
    }
    assert!(failed.is_empty(), "{failed}{story}");
    Ok(())
}

/// Where the fixture's hosts and its instance elsewhere stand after the runs, and what the
/// audit log says was done to them: for a failure's reader.
async fn story(r: &Region, f: &Fixture, spares: &[Agent]) -> String {
    let mut out = format!(
        "\nfixture host {}, spare hosts {:?}, instance elsewhere {}\n",
        f.host,
        spares.iter().map(|a| &a.host_id).collect::<Vec<_>>(),
        f.elsewhere
    );
    for path in [
        format!("/v1/instances/{}", f.elsewhere),
        "/v1/hosts".to_string(),
        "/v1/audit?limit=1000".to_string(),
    ] {
        match r.get(&path).await {
            Ok((status, v)) => out.push_str(&format!("GET {path}: {status} {v}\n")),
            Err(err) => out.push_str(&format!("GET {path}: {err:#}\n")),
        }
    }
    out
}

async fn fixture(
    r: &Region,
    host: &str,
    files: &Path,
    http_port: u16,
    bmc_ip: &str,
) -> anyhow::Result<Fixture> {
    let tenant = inst::tenant(r, "a@example.com").await?;
    let image = inst::qcow2_image(r, &tenant.id, "blank", "64M").await?;
    let instance = instance(r, &tenant, &id(&image), "vm").await?;
    let (imported, operation) = import(r, &tenant.id, files, http_port).await?;
    let download = download_link(r, &id(&image)).await?;
    let (status, seg) = r
        .post(
            "/v1/segments",
            json!({"name": "public-v4", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1",
                "nic": "bond1", "vlan": 100, "route_policy": "default", "routes": []}),
        )
        .await?;
    anyhow::ensure!(status == 201, "create segment: {status} {seg}");
    let mut f = Fixture {
        host: host.to_string(),
        instance,
        elsewhere: String::new(),
        image: id(&image),
        imported,
        operation,
        download,
        segment: id(&seg),
        eip: String::new(),
        baremetal: String::new(),
        import_url: format!("http://127.0.0.1:{http_port}/files/served.qcow2"),
        bmc_ip: bmc_ip.to_string(),
        tenant,
    };
    f.eip = eip(r, &f).await?;
    f.baremetal = baremetal(r, bmc_ip, "db-1").await?;
    Ok(f)
}

/// One run's spares; `tenant`: a token of the tenant's own (else an admin's) to delete.
async fn spares(
    r: &Region,
    f: &Fixture,
    host: &Agent,
    bmc_ip: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Spares> {
    let n = if tenant.is_some() { 1 } else { 2 };
    let image = inst::qcow2_image(r, &f.tenant.id, &format!("spare-{n}"), "64M").await?;
    let binned = [
        binned(r, f, &format!("restored-{n}")).await?,
        binned(r, f, &format!("destroyed-{n}")).await?,
    ];
    let token = match tenant {
        Some(t) => json!({"role": "tenant", "tenant_id": t, "name": "spare"}),
        None => json!({"role": "admin", "name": "spare"}),
    };
    let (status, token) = r.post("/v1/tokens", token).await?;
    anyhow::ensure!(status == 201, "create token: {status} {token}");
    Ok(Spares {
        host: host.host_id.clone(),
        agent_pem: host.dir.join("agent.pem").to_string_lossy().into_owned(),
        instance: instance(r, &f.tenant, &f.image, &format!("spare-{n}")).await?,
        image: id(&image),
        binned,
        eip: eip(r, f).await?,
        baremetal: baremetal(r, bmc_ip, &format!("spare-{n}")).await?,
        token: id(&token),
    })
}

/// An image of the tenant's, deleted: in the recycle bin.
async fn binned(r: &Region, f: &Fixture, name: &str) -> anyhow::Result<String> {
    let image = id(&inst::qcow2_image(r, &f.tenant.id, name, "64M").await?);
    let (status, gone) = r
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/images/{image}"),
            Some(&r.admin_token),
            None,
        )
        .await?;
    anyhow::ensure!(status < 300, "delete image: {status} {gone}");
    Ok(image)
}

/// A running instance of the tenant's.
async fn instance(r: &Region, tenant: &Tenant, image: &str, name: &str) -> anyhow::Result<String> {
    instance_in(r, tenant, image, name, json!({})).await
}

/// [`instance`] with more fields (`cluster_id`, say).
async fn instance_in(
    r: &Region,
    tenant: &Tenant,
    image: &str,
    name: &str,
    extra: Value,
) -> anyhow::Result<String> {
    let (status, vm) = inst::create(r, &tenant.token, name, image, 64 * MIB, extra).await?;
    anyhow::ensure!(status == 202, "create instance: {status} {vm}");
    inst::expect_state(r, &id(&vm), "running", SETTLE).await?;
    Ok(id(&vm))
}

/// An address the tenant allocates from the fixture's segment.
async fn eip(r: &Region, f: &Fixture) -> anyhow::Result<String> {
    let (status, eip) = r
        .call(
            reqwest::Method::POST,
            "/v1/eips",
            Some(&f.tenant.token),
            Some(json!({"segment_id": f.segment})),
        )
        .await?;
    anyhow::ensure!(status == 201, "allocate EIP: {status} {eip}");
    Ok(id(&eip))
}

/// A bare-metal server of the tenant's on the BMC at `ip`, once prepared.
async fn baremetal(r: &Region, ip: &str, name: &str) -> anyhow::Result<String> {
    let body = add_body(name, ip, SECRET, Some("a@example.com"));
    let (status, bm) = r.post("/v1/baremetal", body).await?;
    anyhow::ensure!(status == 202, "add bare metal: {status} {bm}");
    let ready = bm_settled(r, &id(&bm)).await?;
    anyhow::ensure!(ready["state"] == "running", "bare metal: {ready}");
    Ok(id(&bm))
}

/// Imports `served.qcow2` from the local HTTP server: (image id, operation id), once done.
async fn import(
    r: &Region,
    tenant: &str,
    files: &Path,
    port: u16,
) -> anyhow::Result<(String, String)> {
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(files.join("served.qcow2"))
        .arg("64M")
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img create failed");
    let body = json!({"url": format!("http://127.0.0.1:{port}/files/served.qcow2"),
        "name": "served", "tenant_id": tenant, "os_type": "linux", "architecture": "x86_64",
        "platform": "centos", "version": "7.9", "target_size_gb": 20});
    let (status, image) = r.post("/v1/images/import", body).await?;
    anyhow::ensure!(status == 202, "import: {status} {image}");
    let image_id = id(&image);
    let done = wait_for("the import", SETTLE, || async {
        let (_, v) = r.get(&format!("/v1/images/{image_id}")).await?;
        Ok((v["status"] != "importing" && v["status"] != "pending").then_some(v))
    })
    .await?;
    anyhow::ensure!(done["status"] == "available", "import: {done}");
    let op = done["operation_id"]
        .as_str()
        .or(image["operation_id"].as_str())
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(!op.is_empty(), "no operation id in {image}");
    Ok((image_id, op))
}

/// A signed download link's (download id, expires, signature).
async fn download_link(r: &Region, image: &str) -> anyhow::Result<(String, String, String)> {
    let (status, link) = r
        .post(&format!("/v1/images/{image}/download-link"), json!({}))
        .await?;
    anyhow::ensure!(
        status == 200 || status == 201,
        "download link: {status} {link}"
    );
    let url = reqwest::Url::parse(link["url"].as_str().unwrap_or_default())?;
    let download = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_string();
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((download, query("expires"), query("signature")))
}

/// The config file: which real id each operation's path parameters take (the run's spares
/// for the deletes), and the local peers the coordinator is sent to. Operations are matched
/// by name (`METHOD /path`).
fn config(f: &Fixture, spare: &Spares, session: &str) -> String {
    let out = std::cell::RefCell::new(String::new());
    // The operations named by `name_regex` take `params`, and the settings in `more`.
    let fixed_and = |name_regex: &str, params: &[(&str, &str)], more: &str| {
        let params: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k:?} = {v:?}"))
            .collect();
        out.borrow_mut().push_str(&format!(
            "[[operations]]\ninclude-name-regex = {name_regex:?}\nparameters = {{ {} }}\n{more}\n",
            params.join(", ")
        ));
    };
    let fixed = |name_regex: &str, params: &[(&str, &str)]| fixed_and(name_regex, params, "");
    let (download, expires, signature) = &f.download;
    fixed(
        r"^(?!DELETE )\S+ /v1/hosts/\{id\}$",
        &[("path.id", &f.host)],
    );
    fixed(
        r"^(DELETE /v1/hosts/\{id\}|POST /v1/hosts/\{id\}/(reenroll|certificates/revoke))$",
        &[("path.id", &spare.host)],
    );
    fixed(
        r"^\S+ /v1/hosts/\{id\}/gpus/\{address\}/",
        &[("path.id", &f.host), ("path.address", GPU)],
    );
    fixed(
        r"^POST /v1/hosts/\{id\}/usb/\{device\}/release$",
        &[("path.id", &f.host), ("path.device", USB)],
    );
    // USB assign to an instance on another host (see `Fixture::elsewhere`). Schemathesis also
    // threads instance ids it learnt from other answers into this body, in every phase, and
    // an instance on this host reaches the agent, whose test driver cannot attach: the
    // documented 503 `agent_call_failed`. So 5xx is not a finding here (status and schema
    // conformance are still checked); the attach itself is tested on a real libvirtd in
    // tests/devices.rs.
    fixed_and(
        r"^POST /v1/hosts/\{id\}/usb/\{device\}/assign$",
        &[
            ("path.id", &f.host),
            ("path.device", USB),
            ("body.instance_id", &f.elsewhere),
        ],
        "phases.stateful.enabled = false\nchecks.not_a_server_error.enabled = false\n",
    );
    fixed(
        r"^\S+ /v1/hosts/\{id\}/(?!gpus/\{|usb/\{|reenroll$|certificates/revoke$)",
        &[("path.id", &f.host)],
    );
    fixed(
        r"^(?!DELETE )\S+ /v1/instances/\{id\}",
        &[("path.id", &f.instance)],
    );
    fixed(
        r"^DELETE /v1/instances/\{id\}$",
        &[("path.id", &spare.instance)],
    );
    fixed(
        r"^(?!DELETE )\S+ /v1/images/\{id\}$",
        &[("path.id", &f.imported)],
    );
    fixed(r"^DELETE /v1/images/\{id\}$", &[("path.id", &spare.image)]);
    fixed(r"^\S+ /v1/images/\{id\}/", &[("path.id", &f.image)]);
    fixed(r"^POST /v1/images/import$", &[("body.url", &f.import_url)]);
    fixed(
        r"^POST /v1/recycle-bin/\{id\}/restore$",
        &[("path.id", &spare.binned[0])],
    );
    fixed(
        r"^DELETE /v1/recycle-bin/\{id\}$",
        &[("path.id", &spare.binned[1])],
    );
    fixed(
        r"^GET /v1/image-downloads/\{id\}$",
        &[
            ("path.id", download),
            ("query.expires", expires),
            ("query.signature", signature),
        ],
    );
    fixed(r"^GET /v1/operations/\{id\}$", &[("path.id", &f.operation)]);
    fixed(r"^\S+ /v1/segments/\{id\}", &[("path.id", &f.segment)]);
    fixed(r"^(?!DELETE )\S+ /v1/eips/\{id\}", &[("path.id", &f.eip)]);
    fixed(r"^DELETE /v1/eips/\{id\}$", &[("path.id", &spare.eip)]);
    fixed(
        r"^(?!DELETE )\S+ /v1/baremetal/\{id\}",
        &[("path.id", &f.baremetal)],
    );
    fixed(
        r"^DELETE /v1/baremetal/\{id\}$",
        &[("path.id", &spare.baremetal)],
    );
    fixed(r"^POST /v1/baremetal$", &[("body.ipmi_ip", &f.bmc_ip)]);
    fixed(r"^\S+ /v1/tenants/\{id\}", &[("path.id", &f.tenant.id)]);
    fixed(r"^DELETE /v1/tokens/\{id\}$", &[("path.id", &spare.token)]);
    // The browser session's own endpoints with a session of the run's caller.
    out.borrow_mut().push_str(&format!(
        "[[operations]]\ninclude-name-regex = \"^(GET|DELETE) /v1/session$\"\n\
         headers = {{ Cookie = {:?}, X-Plinth-Session = \"1\" }}\n\n",
        format!("plinth_session={session}")
    ));
    // The agent API as the spare host's agent (its client certificate), for its own host.
    out.borrow_mut().push_str(&format!(
        "[[operations]]\ninclude-path-regex = \"^/v1/agent/\"\nrequest-cert = {:?}\n\n",
        spare.agent_pem
    ));
    fixed(
        r"^POST /v1/agent/hosts/\{id\}/",
        &[("path.id", &spare.host)],
    );
    fixed(r"^\S+ /v1/agent/images/\{id\}/", &[("path.id", &f.image)]);
    out.into_inner()
}

/// A browser session (`POST /v1/session`) for `token`: the cookie's value.
async fn login(r: &Region, token: &str) -> anyhow::Result<String> {
    let resp = r
        .http
        .post(format!("{}/v1/session", r.url))
        .json(&json!({ "token": token }))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 201, "login: {}", resp.status());
    let set_cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let cookie = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("plinth_session="))
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(!cookie.is_empty(), "no session cookie in {set_cookie:?}");
    Ok(cookie)
}

/// Runs Schemathesis with `token` against the region; (no failures, its report).
async fn schemathesis(
    r: &Region,
    f: &Fixture,
    spares: &Spares,
    who: &str,
    token: &str,
) -> anyhow::Result<(bool, String)> {
    let dir = r.dir.path().join(format!("schemathesis-{who}"));
    std::fs::create_dir_all(&dir)?;
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, config(f, spares, &login(r, token).await?))?;
    let ca = r.data_dir().join("ca.pem");
    let log = dir.join("report.txt");
    let mut cmd = Command::new(SCHEMATHESIS);
    cmd.current_dir(&dir)
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", r.url))
        .arg("--tls-verify")
        .arg(&ca)
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .arg("--max-examples")
        .arg(setting("PLINTH_SCHEMATHESIS_MAX_EXAMPLES", MAX_EXAMPLES))
        .arg("--seed")
        .arg(setting("PLINTH_SCHEMATHESIS_SEED", SEED))
        .args([
            "--continue-on-failure",
            "--no-color",
            "--generation-database",
            "none",
        ])
        .args(["--request-timeout", "30"])
        // The change feed is an SSE stream that never ends: a request to it cannot complete.
        .args(["--exclude-path", "/v1/events"])
        .env("NO_COLOR", "1");
    let mut daemon = Daemon::spawn(cmd, &log)?;
    let status = daemon.wait(RUN_DEADLINE)?;
    let report = std::fs::read_to_string(&log)?;
    Ok((status.success(), report))
}

/// The report's warnings (operations the run could not get far into) and summary, for the
/// test's output.
fn summary(report: &str) -> &str {
    report
        .find("= WARNINGS =")
        .or_else(|| report.find("= SUMMARY ="))
        .and_then(|at| report[..at].rfind('\n').map(|nl| &report[nl + 1..]))
        .unwrap_or(report)
}
