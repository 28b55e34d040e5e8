//! The web console in a real browser against a real region: Debian's Chromium driven by
//! playwright-core (coordinator/console/tests/*.mjs), a coordinator and agents started here;
//! plus the console's JavaScript type-checked against docs/openapi.json. npm installs what
//! these need (scripts/install-deps.sh: `npm ci` in coordinator/console).
//!
//! Each screen's workflows are one test (a module here) on a region of its own, set up with
//! what that screen needs; the browser scripts get the region through `BrowserEnv`.
//! To iterate on the console without rebuilding, set `PLINTH_CONSOLE_DIR` to
//! coordinator/console: the coordinators started here serve its files from disk.

mod admin;
mod baremetal;
mod host_detail;
mod images;
mod instances;
mod maintenance;
mod network;
mod palette;

use plinth_e2e::{Region, wait_for};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Long enough for a slow, shared machine; a browser test that takes longer is stuck.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/console")
}

fn node_modules() -> anyhow::Result<PathBuf> {
    let dir = console_dir().join("node_modules");
    anyhow::ensure!(
        dir.join("playwright-core").is_dir(),
        "{} lacks the console's test packages: run scripts/install-deps.sh (npm ci)",
        dir.display()
    );
    Ok(dir)
}

/// Where the browser tests leave their screenshots (kept after the run, to look at).
fn shots_dir() -> PathBuf {
    std::env::var_os("PLINTH_CONSOLE_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("plinth-console-shots"))
}

/// How many `node` scripts (most drive a Chromium) run at once across the tests of this
/// binary. Twelve browsers at once on a 2-core machine time out on page loads; three at a
/// time finish sooner than all at once.
static NODE_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(3);

/// Runs `node <args>` in the console's folder with `env`, to its end or the deadline (then
/// it is killed); fails with its output unless it exits 0. Waits for one of the
/// [`NODE_SLOTS`] first.
async fn node(args: &[&str], env: &[(String, String)]) -> anyhow::Result<String> {
    let _slot = NODE_SLOTS.acquire().await?;
    let mut cmd = Command::new("node");
    cmd.args(args)
        .current_dir(console_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(SCRIPT_DEADLINE, cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("node {args:?} did not end within {SCRIPT_DEADLINE:?}"))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        out.status.success(),
        "node {args:?} failed ({}):\n{text}",
        out.status
    );
    Ok(text)
}

/// What a browser script is told about its region (tests/lib.mjs reads it): the console's
/// URL, the admin token, and whatever the screen's test adds (`set`).
pub struct BrowserEnv {
    vars: Vec<(String, String)>,
    _ca: tempfile::TempDir,
}

impl BrowserEnv {
    pub fn new(region: &Region) -> anyhow::Result<BrowserEnv> {
        node_modules()?;
        let ca = tempfile::tempdir()?;
        let pem = ca.path().join("region-ca.pem");
        std::fs::write(&pem, &region.ca_pem)?;
        let mut env = BrowserEnv {
            vars: Vec::new(),
            _ca: ca,
        };
        env.set("CONSOLE_URL", &region.url);
        env.set("CONSOLE_ADMIN_TOKEN", &region.admin_token);
        env.set("CONSOLE_OUT", shots_dir().display().to_string());
        // Node's own fetch (the tests' API checks) trusts the region's CA.
        env.set("NODE_EXTRA_CA_CERTS", pem.display().to_string());
        Ok(env)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut BrowserEnv {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_string(), value.into()));
        self
    }

    /// Runs each script in turn (they share the region; each leaves it as the next expects).
    pub async fn run(&self, scripts: &[&str]) -> anyhow::Result<()> {
        for script in scripts {
            let out = node(&[script], &self.vars).await?;
            println!("{script}: {}", out.trim());
        }
        Ok(())
    }
}

#[tokio::test]
async fn console_workflows_in_a_real_browser() -> anyhow::Result<()> {
    node_modules()?;
    let mut region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let agent = region.start_agent("127.0.0.2", "alpha").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    // A second host in another cluster, for the facets (the tests act on the first).
    region.create_cluster("beta").await?;
    let other = region.start_agent("127.0.0.3", "beta").await?;
    region.wait_agent(&other.host_id, "online").await?;
    let tenant = plinth_e2e::instances::tenant(&region, "console@example.com").await?;
    let (tenant_id, tenant_token) = (tenant.id, tenant.token);
    let mut env = BrowserEnv::new(&region)?;
    env.set("CONSOLE_TENANT_TOKEN", tenant_token)
        .set("CONSOLE_TENANT_ID", tenant_id)
        .set("CONSOLE_HOST_ID", &agent.host_id);
    env.run(&["tests/session.mjs", "tests/hosts.mjs", "tests/i18n.mjs"])
        .await?;

    // The live indicator across a coordinator restart: the script says when its page is live.
    let mark = tempfile::tempdir()?;
    env.set("CONSOLE_MARK", mark.path().display().to_string());
    let script = tokio::spawn(async move { env.run(&["tests/live.mjs"]).await });
    wait_for("the page to be live", SCRIPT_DEADLINE, || async {
        Ok(mark.path().join("live").exists().then_some(()))
    })
    .await?;
    region.stop();
    region.restart().await?;
    script.await??;
    Ok(())
}

#[tokio::test]
async fn console_modules_pass_their_unit_tests() -> anyhow::Result<()> {
    node_modules()?;
    node(&["tests/units.mjs"], &[]).await?;
    Ok(())
}

#[tokio::test]
async fn console_javascript_type_checks_against_the_api_document() -> anyhow::Result<()> {
    let modules = node_modules()?;
    let cli = |rel: &str| modules.join(rel).display().to_string();
    node(
        &[
            &cli("openapi-typescript/bin/cli.js"),
            "../../docs/openapi.json",
            "-o",
            "types/api.d.ts",
        ],
        &[],
    )
    .await?;
    node(&[&cli("typescript/bin/tsc"), "-p", "tsconfig.json"], &[]).await?;
    Ok(())
}

/// The console's files over HTTP: `/` revalidated, assets under the build's path cached for
/// a year, brotli or gzip as the client asks, the CSP on every answer, another build's path
/// not found; the API beside it unchanged.
#[tokio::test]
async fn console_files_are_served_cached_compressed_and_under_the_csp() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let get = |path: String, accept: &'static str| {
        let req = region
            .http
            .get(format!("{}{path}", region.url))
            .header(reqwest::header::ACCEPT_ENCODING, accept);
        async move { anyhow::Ok(req.send().await?) }
    };
    let header = |resp: &reqwest::Response, name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let index = get("/".into(), "identity").await?;
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert!(header(&index, "content-type").starts_with("text/html"));
    let csp = header(&index, "content-security-policy");
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part:?}");
    }
    assert_eq!(header(&index, "x-content-type-options"), "nosniff");
    let html = index.text().await?;
    let main = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with("/app/main.js"))
        .expect("index.html loads app/main.js from the build's path")
        .to_string();

    for (accept, want) in [("br, gzip", "br"), ("gzip", "gzip"), ("identity", "")] {
        let resp = get(main.clone(), accept).await?;
        assert_eq!(resp.status(), 200, "{main} with {accept}");
        assert_eq!(
            header(&resp, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            header(&resp, "content-encoding"),
            want,
            "Accept-Encoding: {accept}"
        );
        assert!(header(&resp, "content-type").starts_with("text/javascript"));
        assert!(!header(&resp, "content-security-policy").is_empty());
        let body = resp.bytes().await?;
        if want.is_empty() {
            assert!(String::from_utf8_lossy(&body).contains("render"));
        }
    }
    let stale = main.replacen("/assets/", "/assets/0", 1);
    let resp = get(stale, "identity").await?;
    assert_eq!(resp.status(), 404, "another build's path is not served");
    let (status, _) = region.get("/v1/no-such-route").await?;
    assert_eq!(status, 404, "the API's own fallback is untouched");
    Ok(())
}
