//! The API keeps its document's promises (issue 18 item 2): Schemathesis (pinned, in the venv
//! `scripts/install-deps.sh` makes) runs every operation of the document the coordinator serves
//! against a live region, once with the admin's token and once with a tenant's, and any
//! server error, undocumented status, wrong content type or body off its schema fails the test
//! with Schemathesis's report.
//!
//! The region has real things for the generated requests to reach: the agent's host (libvirt's
//! test driver), a tenant with an instance, an uploaded and an imported image (from a local
//! HTTP server), a deleted image in the recycle bin, a signed download link, a segment with an
//! EIP, and a bare-metal server on an `ipmi_sim` BMC. Each operation's path parameters are
//! fixed to those ids; the fields that make the coordinator reach out (an import's `url`, a
//! BMC's `ipmi_ip`) are fixed to those local peers, so no request leaves 127.0.0.0/8.

use plinth_e2e::baremetal::{SECRET, add_body, settled as bm_settled};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::{self as inst, MIB, Tenant};
use plinth_e2e::process::Daemon;
use plinth_e2e::{Region, RegionOptions, servers, wait_for};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCHEMATHESIS: &str = "/opt/plinth-test/schemathesis/bin/schemathesis";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// Per operation and phase; with ~90 operations both runs together take about a minute.
const MAX_EXAMPLES: &str = "25";
const SEED: &str = "18";
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
    spare_instance: String,
    image: String,
    imported: String,
    operation: String,
    binned: String,
    download: (String, String, String),
    segment: String,
    eip: String,
    spare_eip: String,
    baremetal: String,
    spare_token: String,
    import_url: String,
    bmc_ip: String,
}

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
    let mut agent = r.start_agent("127.0.91.1", "az1").await?;
    r.wait_agent(&agent.host_id, "online").await?;
    let files = r.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &r.dir.path().join("http.log"))?;
    let sim = SimBmc::start(SECRET)?;
    let f = fixture(&r, &agent.host_id, &files, http.port, &sim.ip).await?;

    // The tenant first, while everything it may touch is still there; then the admin, whose
    // run deletes some of it (later requests then meet 404s, which are documented too).
    let tenant_report = schemathesis(&r, &f, "tenant", &f.tenant.token)?;
    let admin_report = schemathesis(&r, &f, "admin", &r.admin_token)?;

    agent.stop();
    r.stop();
    sim.stop();
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
    assert!(failed.is_empty(), "{failed}");
    Ok(())
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
    let mut vms = Vec::new();
    for name in ["vm", "spare"] {
        let (status, vm) =
            inst::create(r, &tenant.token, name, &id(&image), 64 * MIB, json!({})).await?;
        anyhow::ensure!(status == 202, "create instance: {status} {vm}");
        inst::expect_state(r, &id(&vm), "running", SETTLE).await?;
        vms.push(id(&vm));
    }

    let (imported, operation) = import(r, &tenant.id, files, http_port).await?;
    let binned = id(&inst::qcow2_image(r, &tenant.id, "binned", "64M").await?);
    let (status, gone) = r
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/images/{binned}"),
            Some(&r.admin_token),
            None,
        )
        .await?;
    anyhow::ensure!(status < 300, "delete image: {status} {gone}");
    let download = download_link(r, &id(&image)).await?;

    let (status, seg) = r
        .post(
            "/v1/segments",
            json!({"name": "public-v4", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1",
                "nic": "bond1", "vlan": 100, "route_policy": "default", "routes": []}),
        )
        .await?;
    anyhow::ensure!(status == 201, "create segment: {status} {seg}");
    let mut eips = Vec::new();
    for _ in 0..2 {
        let (status, eip) = r
            .call(
                reqwest::Method::POST,
                "/v1/eips",
                Some(&tenant.token),
                Some(json!({"segment_id": id(&seg)})),
            )
            .await?;
        anyhow::ensure!(status == 201, "allocate EIP: {status} {eip}");
        eips.push(id(&eip));
    }

    let (status, bm) = r
        .post(
            "/v1/baremetal",
            add_body("db-1", bmc_ip, SECRET, Some("a@example.com")),
        )
        .await?;
    anyhow::ensure!(status == 202, "add bare metal: {status} {bm}");
    let ready = bm_settled(r, &id(&bm)).await?;
    anyhow::ensure!(ready["state"] == "running", "bare metal: {ready}");

    let (status, spare) = r
        .post("/v1/tokens", json!({"role": "admin", "name": "spare"}))
        .await?;
    anyhow::ensure!(status == 201, "create token: {status} {spare}");

    Ok(Fixture {
        host: host.to_string(),
        tenant,
        instance: vms[0].clone(),
        spare_instance: vms[1].clone(),
        image: id(&image),
        imported,
        operation,
        binned,
        download,
        segment: id(&seg),
        eip: eips[0].clone(),
        spare_eip: eips[1].clone(),
        baremetal: id(&bm),
        spare_token: id(&spare),
        import_url: format!("http://127.0.0.1:{http_port}/files/served.qcow2"),
        bmc_ip: bmc_ip.to_string(),
    })
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

/// The config file: which real id each operation's path parameters take (a spare one for the
/// deletes, so the other operations still find theirs), and the local peers the coordinator
/// is sent to. Operations are matched by name (`METHOD /path`).
fn config(f: &Fixture) -> String {
    let mut out = String::new();
    let mut fixed = |name_regex: &str, params: &[(&str, &str)]| {
        let params: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k:?} = {v:?}"))
            .collect();
        out.push_str(&format!(
            "[[operations]]\ninclude-name-regex = {name_regex:?}\nparameters = {{ {} }}\n\n",
            params.join(", ")
        ));
    };
    let (download, expires, signature) = &f.download;
    fixed(r"^\S+ /v1/hosts/\{id\}", &[("path.id", &f.host)]);
    fixed(
        r"^(?!DELETE )\S+ /v1/instances/\{id\}",
        &[("path.id", &f.instance)],
    );
    fixed(
        r"^DELETE /v1/instances/\{id\}$",
        &[("path.id", &f.spare_instance)],
    );
    fixed(r"^\S+ /v1/images/\{id\}$", &[("path.id", &f.imported)]);
    fixed(r"^\S+ /v1/images/\{id\}/", &[("path.id", &f.image)]);
    fixed(r"^POST /v1/images/import$", &[("body.url", &f.import_url)]);
    fixed(r"^\S+ /v1/recycle-bin/\{id\}", &[("path.id", &f.binned)]);
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
    fixed(r"^DELETE /v1/eips/\{id\}$", &[("path.id", &f.spare_eip)]);
    fixed(r"^\S+ /v1/baremetal/\{id\}", &[("path.id", &f.baremetal)]);
    fixed(r"^POST /v1/baremetal$", &[("body.ipmi_ip", &f.bmc_ip)]);
    fixed(r"^\S+ /v1/tenants/\{id\}", &[("path.id", &f.tenant.id)]);
    fixed(
        r"^DELETE /v1/tokens/\{id\}$",
        &[("path.id", &f.spare_token)],
    );
    out
}

/// Runs Schemathesis with `token` against the region; (no failures, its report).
fn schemathesis(r: &Region, f: &Fixture, who: &str, token: &str) -> anyhow::Result<(bool, String)> {
    let dir = r.dir.path().join(format!("schemathesis-{who}"));
    std::fs::create_dir_all(&dir)?;
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, config(f))?;
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
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
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

/// The report's summary section, for the test's output.
fn summary(report: &str) -> &str {
    report
        .find("SUMMARY")
        .and_then(|at| report[..at].rfind('\n').map(|nl| &report[nl + 1..]))
        .unwrap_or(report)
}
