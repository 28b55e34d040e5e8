//! The operations kit against real Prometheus tools: the alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`, one test per alert); the Grafana dashboard's host
//! row is the product's own PromQL for the seed's 14 metrics; and every PromQL expression of the
//! dashboard and of the rules returns data from a real Prometheus that scraped a real agent and
//! a real coordinator (no typo'd metric name survives). The coordinator's `/metrics` passes
//! `promtool check metrics`, carries no ids as labels, and is served over TLS to scrapers
//! with a certificate when configured so.

use plinth_common::metrics::HostSeries;
use plinth_e2e::prometheus::{PROMTOOL, Prometheus, free_port, promtool_check};
use plinth_e2e::{Region, RegionOptions, wait_for};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const COORDINATOR_METRICS_IP: &str = "127.0.0.120";
const AGENT_IP: &str = "127.0.0.121";
const PROM_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 122);

fn docs(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(path)
}

fn promtool(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(docs("prometheus"))
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "promtool {args:?}: {said}");
    Ok(said)
}

/// `(alert, expr)` of every rule in a rules file as this repository writes them: `expr:` on
/// one line, or a folded (`>`) block of more-indented lines.
fn rule_expressions(yaml: &str) -> anyhow::Result<Vec<(String, String)>> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut alert = String::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            alert = name.trim().to_string();
        }
        let Some(value) = t.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        let expr = match value {
            ">" | ">-" => {
                let indent = line.len() - t.len();
                lines[i + 1..]
                    .iter()
                    .take_while(|l| l.len() - l.trim_start().len() > indent)
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "|" | "|-" => anyhow::bail!("{alert}: write expr as one line or a folded (>) block"),
            v => v.to_string(),
        };
        anyhow::ensure!(!alert.is_empty() && !expr.is_empty(), "expr without alert");
        out.push((alert.clone(), expr));
    }
    Ok(out)
}

/// Every `expr` of a dashboard's panels: (panel title, expr).
fn dashboard_expressions(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let title = panel["title"].as_str().unwrap_or_default().to_string();
                out.push((title, expr.to_string()));
            }
        }
    }
    out
}

/// `expr` with every comparison outside label matchers turned into its `bool` form, so it
/// returns a 0/1 series whenever its operands have data: a healthy region fires no alert,
/// and an alert's expression must still be shown to name real series.
fn with_bool_comparisons(expr: &str) -> String {
    let mut out = String::new();
    let (mut braces, mut quoted) = (0i32, false);
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        match c {
            '"' if i == 0 || chars[i - 1] != '\\' => quoted = !quoted,
            '{' if !quoted => braces += 1,
            '}' if !quoted => braces -= 1,
            '>' | '<' | '=' | '!' if !quoted && braces == 0 => {
                let two = chars.get(i + 1) == Some(&'=');
                if two {
                    out.push('=');
                    i += 1;
                }
                if c != '=' || two {
                    out.push_str(" bool");
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// A dashboard expression with Grafana's variables as Prometheus takes them.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$host", ".*")
}

#[test]
fn alert_rules_pass_promtool_and_each_has_a_unit_test() -> anyhow::Result<()> {
    let said = promtool(&["check", "rules", "plinth-rules.yml"])?;
    assert!(said.contains("SUCCESS"), "{said}");
    let said = promtool(&["test", "rules", "plinth-rules.test.yml"])?;
    assert!(said.contains("SUCCESS"), "{said}");
    let rules = std::fs::read_to_string(docs("prometheus/plinth-rules.yml"))?;
    let tests = std::fs::read_to_string(docs("prometheus/plinth-rules.test.yml"))?;
    let alerts = rule_expressions(&rules)?;
    assert_eq!(alerts.len(), 9, "{alerts:?}");
    for (alert, _) in &alerts {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - "
            )),
            "{alert} has no unit test that expects it to fire"
        );
    }
    Ok(())
}

#[test]
fn the_dashboard_host_row_is_the_products_promql() -> anyhow::Result<()> {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(docs("grafana/plinth.json"))?)?;
    let panels = dash["panels"].as_array().expect("panels");
    let host_row = panels
        .iter()
        .position(|p| p["type"] == "row" && p["title"] == "Host ($host)")
        .expect("a host row");
    let in_row: Vec<&Value> = panels[host_row + 1..]
        .iter()
        .take_while(|p| p["type"] != "row")
        .collect();
    assert_eq!(in_row.len(), 14, "the seed's 14 host metrics");
    for (panel, series) in in_row.iter().zip(HostSeries::ALL) {
        assert_eq!(panel["title"], series.title(), "{series}");
        assert_eq!(
            panel["targets"][0]["expr"],
            series.promql("instance=~\"$host\"", "$__rate_interval"),
            "{series}"
        );
    }
    Ok(())
}

#[test]
fn comparisons_become_bool_outside_label_matchers() {
    for (case, expr, want) in [
        ("threshold", "a > 0", "a > bool 0"),
        (
            "matcher kept",
            "a{s!=\"x\",t=~\"y\"} >= 2",
            "a{s!=\"x\",t=~\"y\"} >= bool 2",
        ),
        ("equality", "up == 0", "up == bool 0"),
        ("quoted brace", "a{s=\"}>\"} < b", "a{s=\"}>\"} < bool b"),
    ] {
        assert_eq!(with_bool_comparisons(expr), want, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_expression_returns_data() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        extra_args: vec![
            "--metrics-listen".into(),
            format!("{COORDINATOR_METRICS_IP}:0"),
        ],
        ..RegionOptions::default()
    })
    .await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent(AGENT_IP, "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let agent_target = agent
        .metrics_base()
        .await?
        .trim_start_matches("http://")
        .to_string();
    let coordinator_target = std::fs::read_to_string(region.data_dir().join("metrics.addr"))?
        .trim()
        .to_string();

    // The coordinator's exposition: clean for promtool, no ids among its label values.
    let http = reqwest::Client::new();
    let text = http
        .get(format!("http://{coordinator_target}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let problems = promtool_check(&text)?;
    assert!(problems.is_empty(), "promtool check metrics: {problems:?}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for id in [&agent.host_id, "host-", "inst-", "op-", "ten-", "img-"] {
            assert!(
                !line.contains(&format!("\"{id}")),
                "an id as a label: {line}"
            );
        }
    }
    for want in [
        "plinth_coordinator_job_lease_held 1",
        "plinth_coordinator_agents{cluster=\"az1\",state=\"online\"} 1",
        "plinth_coordinator_http_request_duration_seconds_count{route=\"/v1/clusters\",method=\"POST\",code=\"201\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "{want} missing in\n{text}\ncoordinator log:\n{}",
            region.coordinator_log()
        );
    }

    let prom_port = free_port(PROM_IP)?;
    let prom = Prometheus::start(
        PROM_IP,
        prom_port,
        &[agent_target.clone(), coordinator_target.clone()],
    )
    .await?;

    let dash: Value = serde_json::from_str(&std::fs::read_to_string(docs("grafana/plinth.json"))?)?;
    let rules = std::fs::read_to_string(docs("prometheus/plinth-rules.yml"))?;
    let mut all: Vec<(String, String)> = dashboard_expressions(&dash)
        .into_iter()
        .map(|(t, e)| (format!("dashboard: {t}"), grafana_to_promql(&e)))
        .collect();
    all.extend(
        rule_expressions(&rules)?
            .into_iter()
            .map(|(a, e)| (format!("alert {a}"), with_bool_comparisons(&e))),
    );
    assert!(all.len() > 40, "{} expressions", all.len());
    // Rates need two scrapes in their window: each expression gets a deadline to show data.
    for (what, expr) in &all {
        let got = wait_for(
            &format!("{what} to return data: {expr}"),
            Duration::from_secs(45),
            || async {
                let result = prom.query(expr).await?;
                Ok((!result.is_empty()).then_some(result))
            },
        )
        .await?;
        assert!(!got.is_empty(), "{what}");
    }
    drop(prom);
    drop(agent);
    Ok(())
}

/// `/metrics` over TLS with client certificates: a scraper with a certificate from the
/// configured CA is served the coordinator's series, one without is refused.
#[tokio::test]
async fn the_coordinator_serves_metrics_over_tls_to_certified_scrapers() -> anyhow::Result<()> {
    use plinth_common::tls::{Ca, LeafSpec, Role, client_config};
    plinth_common::tls::install_crypto_provider();
    let files = tempfile::tempdir()?;
    let (ca, _) = Ca::generate("metrics test")?;
    let leaf = |server: bool| -> anyhow::Result<(String, String)> {
        let mut spec = LeafSpec::new("metrics", Role::Coordinator, Duration::from_secs(3600));
        spec.ips = vec![COORDINATOR_METRICS_IP.parse()?];
        spec.server = server;
        spec.client = !server;
        Ok(ca.issue_with_new_key(&spec)?)
    };
    let (cert, key) = leaf(true)?;
    let write = |name: &str, text: &str| -> anyhow::Result<String> {
        let p = files.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p.display().to_string())
    };
    let region = Region::start_with(RegionOptions {
        extra_args: vec![
            "--metrics-listen".into(),
            format!("{COORDINATOR_METRICS_IP}:0"),
            "--metrics-tls-cert".into(),
            write("cert.pem", &cert)?,
            "--metrics-tls-key".into(),
            write("key.pem", &key)?,
            "--metrics-tls-client-ca".into(),
            write("ca.pem", ca.cert_pem())?,
        ],
        ..RegionOptions::default()
    })
    .await?;
    let addr = wait_for(
        "the coordinator's /metrics",
        Duration::from_secs(30),
        || async {
            Ok(
                std::fs::read_to_string(region.data_dir().join("metrics.addr"))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            )
        },
    )
    .await?;
    let url = format!("https://{addr}/metrics");
    let (client_cert, client_key) = leaf(false)?;
    let with_cert = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(
            ca.cert_pem(),
            Some((&client_cert, &client_key)),
        )?)
        .build()?;
    let body = with_cert
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    assert!(
        body.contains("\nplinth_coordinator_job_lease_held 1\n"),
        "{body}"
    );
    let without = reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca.cert_pem(), None)?)
        .build()?;
    assert!(
        without.get(&url).send().await.is_err(),
        "no client certificate, no metrics"
    );
    Ok(())
}
