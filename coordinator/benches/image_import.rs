//! Benchmark: `POST /v1/images/import` of a 2 GiB qcow2 served by nginx on loopback, against
//! the same work done by hand: `curl -s URL | tee FILE | openssl dgst -sha256`. Goals (issue):
//! plinth's throughput >= 0.9x the hand pipeline's, and the coordinator's RSS flat (< 64 MB
//! growth).
//!
//! Run: `cargo bench -p plinth-coordinator --bench image_import`
//! Needs `nginx` (Debian: `nginx-light`), `qemu-img`, `curl`, `openssl` and `bash`.
//!
//! A 2 GiB file of pseudo-random bytes is converted to qcow2 (so the import's `qemu-img info`
//! check passes) in a temporary directory; nginx serves it with its own minimal config
//! (`sendfile on`) on 127.0.0.1. A data directory is initialised and a tenant seeded through
//! the store; the real `plinth-coordinator serve` runs as its own process. Each round runs the
//! hand pipeline, a plinth import (whose `sha256` is the hash the hand pipeline printed, so the
//! check is exercised) and, for reference (no goal), the hand pipeline followed by
//! `sync FILE`, which makes its output as durable as plinth's fsync'd blob. Two rounds by
//! default (`IMAGE_IMPORT_RUNS=N` for more); best and mean are reported, and the throughput goal
//! is judged best against best. The source stays in the page cache, so both sides read it from
//! memory. The plinth time runs from the POST to the operation reading `succeeded` (polled every
//! 100 ms), so it includes `qemu-img info`, the commit and the staging file's fsync.
//!
//! Every run starts after the previous output was removed and a pause of `SETTLE`: on a VM
//! whose balloon reports free pages to the host, memory freed a second or more ago is slow to
//! touch again, and 2 GB of new page cache then costs seconds; the pause puts every run, on
//! either side, in that same state rather than letting whichever run follows a deletion most
//! closely have warm pages. Per run, the CPU used (the pipeline's processes, or the coordinator)
//! and the CPU time the host stole from the VM are printed, to read noisy results by.
//!
//! The coordinator's VmRSS is sampled every 50 ms during each import. The program prints a
//! report and exits 0 whether or not the goals are met (it is a measurement, not a test).

use anyhow::{Context, bail, ensure};
use plinth_common::api::{Image, Operation, OperationStatus};
use plinth_common::ids::new_id;
use plinth_common::image::ImageStatus;
use plinth_coordinator::db::Store;
use plinth_coordinator::init;
use plinth_coordinator::paths::DataDir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Size of the raw content the qcow2 is made from (its virtual size).
const SOURCE_BYTES: u64 = 2 << 30;
/// Generator block size.
const BLOCK: usize = 8 << 20;
const RUNS: usize = 2;
const TARGET_SIZE_GB: u32 = 20;
const OP_POLL: Duration = Duration::from_millis(100);
const RSS_SAMPLE: Duration = Duration::from_millis(50);
const IMPORT_DEADLINE: Duration = Duration::from_secs(600);
const GOAL_RATIO: f64 = 0.9;
const GOAL_RSS_GROWTH_MB: f64 = 64.0;
const SOURCE_NAME: &str = "source.qcow2";
/// Pause between removing one run's output and starting the next run, so that every run, on
/// either side, starts from the same memory state (see the module comment).
const SETTLE: Duration = Duration::from_secs(3);

/// Decimal megabytes, as throughputs and RSS are reported.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    mb(bytes) / d.as_secs_f64()
}

/// Runs `cmd` to completion; fails with its stderr unless it exits 0. Returns stdout.
fn run_checked(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `name` on PATH, or in the sbin directories a non-root PATH may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `bytes` of xorshift64 output: incompressible, not zero, about 1 GB/s to make.
fn write_random(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; BLOCK];
    let mut left = bytes;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(BLOCK as u64) as usize;
        file.write_all(&block[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    Ok(())
}

/// A qcow2 of `SOURCE_BYTES` of random content at `path`; returns its file size.
fn make_source(dir: &Path, path: &Path) -> anyhow::Result<u64> {
    let raw = dir.join("source.raw");
    write_random(&raw, SOURCE_BYTES)?;
    run_checked(
        Command::new("qemu-img")
            .args([
                "convert",
                "-f",
                "raw",
                "-O",
                "qcow2",
                "-o",
                "preallocation=off",
            ])
            .arg(&raw)
            .arg(path),
    )?;
    std::fs::remove_file(&raw).context("removing the raw source")?;
    let info = run_checked(
        Command::new("qemu-img")
            .args(["info", "--output=json", "-f", "qcow2"])
            .arg(path),
    )?;
    let info: serde_json::Value =
        serde_json::from_str(&info).context("qemu-img info printed no JSON")?;
    ensure!(
        info["format"] == "qcow2" && info["virtual-size"] == SOURCE_BYTES,
        "the source is not a {SOURCE_BYTES}-byte qcow2: {info}"
    );
    let size = std::fs::metadata(path)?.len();
    ensure!(
        size >= SOURCE_BYTES,
        "the qcow2 is {size} bytes, smaller than its {SOURCE_BYTES} bytes of random content"
    );
    Ok(size)
}

/// A child process stopped with SIGTERM by pid (also on drop, for error paths).
struct Proc {
    child: Child,
    stopped: bool,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if !self.exited() {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx in the foreground with its own config, serving `root` on 127.0.0.1.
async fn start_nginx(prefix: &Path, root: &Path, probe: &str) -> anyhow::Result<(Proc, String)> {
    let nginx = find_program("nginx")
        .context("nginx is not installed (Debian: apt-get install nginx-light)")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let temp = prefix.join("temp");
    std::fs::create_dir_all(&temp)?;
    let p = |name: &str| prefix.join(name).display().to_string();
    let t = |name: &str| temp.join(name).display().to_string();
    // Workers run as root when the master does: the temp directory is private to us.
    // /proc/self belongs to our effective uid.
    let euid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?);
    let user = if euid == 0 { "user root;" } else { "" };
    let conf = format!(
        "{user}
worker_processes 1;
error_log {error} warn;
pid {pid};
events {{ worker_connections 64; }}
http {{
    access_log {access};
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
",
        error = p("error.log"),
        pid = p("nginx.pid"),
        access = p("access.log"),
        body = t("body"),
        proxy = t("proxy"),
        fastcgi = t("fastcgi"),
        uwsgi = t("uwsgi"),
        scgi = t("scgi"),
        root = root.display(),
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = std::fs::File::create(prefix.join("stderr.log"))?;
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", nginx.display()))?;
    let mut proc = Proc {
        child,
        stopped: false,
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if proc.exited() {
            let said = std::fs::read_to_string(prefix.join("stderr.log")).unwrap_or_default()
                + &std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
            bail!("nginx exited at start: {}", said.trim());
        }
        if let Ok(resp) = http.head(format!("{base}/{probe}")).send().await
            && resp.status() == reqwest::StatusCode::OK
        {
            return Ok((proc, base));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nginx did not answer on {base} within 10 s");
}

/// The real `plinth-coordinator serve`, in its own process; returns it and its address.
async fn start_coordinator(data_dir: &Path) -> anyhow::Result<(Proc, String)> {
    let log = std::fs::File::create(data_dir.join("serve.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_plinth-coordinator"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("PLINTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting plinth-coordinator")?;
    let mut proc = Proc {
        child,
        stopped: false,
    };
    let addr_file = data_dir.join("coordinator.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(addr) = std::fs::read_to_string(&addr_file) {
            return Ok((proc, addr.trim().to_string()));
        }
        if proc.exited() {
            bail!(
                "plinth-coordinator exited at start: {}",
                std::fs::read_to_string(data_dir.join("serve.log"))
                    .unwrap_or_default()
                    .trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("plinth-coordinator did not start within 30 s");
}

/// A `VmRSS:`/`VmHWM:` line of /proc/PID/status, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| format!("/proc/{pid}/status has no {field}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{field} {line:?} is not a number of kB"))?;
    Ok(kib * 1024)
}

/// Samples VmRSS every `RSS_SAMPLE` on its own thread until stopped; yields the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                if let Ok(rss) = proc_status_bytes(pid, "VmRSS:") {
                    peak = peak.max(rss);
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(RSS_SAMPLE);
            }
        });
        RssSampler { stop, thread }
    }

    fn finish(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))
    }
}

/// `3m1.250s` (bash's `times`) in seconds.
fn bash_seconds(t: &str) -> Option<f64> {
    let (m, sec) = t.strip_suffix('s')?.split_once('m')?;
    Some(m.parse::<f64>().ok()? * 60.0 + sec.parse::<f64>().ok()?)
}

/// One hand run: wall time, the CPU its processes used (user + system) and the SHA-256.
struct HandRun {
    elapsed: Duration,
    cpu: f64,
    sha256: String,
}

/// `bash -c PIPELINE` with the URL and output file as $1 and $2, `pipefail` set; bash's
/// `times` afterwards gives the CPU its children used.
fn hand_run(pipeline: &str, url: &str, out: &Path) -> anyhow::Result<HandRun> {
    let script = format!("set -o pipefail; {pipeline}; s=$?; times >&2; exit $s");
    let started = Instant::now();
    let output = Command::new("bash")
        .args(["-c", &script, "bash", url])
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .context("running bash")?;
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "`{pipeline}` failed ({}): {}",
        output.status,
        stderr.trim()
    );
    // The last line of `times`: the children's user and system time.
    let cpu = stderr
        .lines()
        .last()
        .map(|l| l.split_whitespace().filter_map(bash_seconds).sum())
        .context("bash printed no `times`")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `SHA2-256(stdin)= <hex>` (OpenSSL 3) or `(stdin)= <hex>` (1.1).
    let sha256 = stdout
        .split_whitespace()
        .last()
        .context("openssl printed nothing")?
        .to_string();
    ensure!(
        sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
        "openssl printed {stdout:?}, not a SHA-256"
    );
    Ok(HandRun {
        elapsed,
        cpu,
        sha256,
    })
}

const HAND: &str = "curl -s --fail \"$1\" | tee \"$2\" | openssl dgst -sha256";
const HAND_SYNC: &str = "curl -s --fail \"$1\" | tee \"$2\" | openssl dgst -sha256 && sync \"$2\"";

/// User + system CPU seconds of a process (/proc/PID/stat, in USER_HZ = 100 ticks).
fn process_cpu(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14 and stime 15.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (utime, stime) = ticks(11)
        .zip(ticks(12))
        .with_context(|| format!("/proc/{pid}/stat has no utime/stime"))?;
    Ok((utime + stime) as f64 / 100.0)
}

/// CPU time stolen from this VM by its host so far, all CPUs, in seconds (/proc/stat).
fn steal_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            line.split_whitespace().nth(8)?.parse::<u64>().ok()
        })
        .map_or(0.0, |t| t as f64 / 100.0)
}

/// One import through the API; returns POST -> succeeded, the peak RSS seen and the image.
struct Imported {
    elapsed: Duration,
    peak_rss: u64,
    image: Image,
}

struct Api {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl Api {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let body = resp.bytes().await?;
        ensure!(
            status == reqwest::StatusCode::OK,
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: unexpected body"))
    }

    async fn import(
        &self,
        req: &serde_json::Value,
        pid: u32,
        size: u64,
        sha256: &str,
    ) -> anyhow::Result<Imported> {
        let sampler = RssSampler::start(pid);
        let started = Instant::now();
        let outcome = self.import_inner(req, started).await;
        let peak_rss = sampler.finish()?;
        let (elapsed, image) = outcome?;
        ensure!(
            image.status == ImageStatus::Available,
            "image {} is {}, not available",
            image.id,
            image.status
        );
        ensure!(
            image.size_bytes == Some(size),
            "image {} has size {:?}, the source {size}",
            image.id,
            image.size_bytes
        );
        ensure!(
            image.sha256.as_deref() == Some(sha256),
            "image {} has SHA-256 {:?}, the hand pipeline {sha256}",
            image.id,
            image.sha256
        );
        Ok(Imported {
            elapsed,
            peak_rss,
            image,
        })
    }

    async fn import_inner(
        &self,
        req: &serde_json::Value,
        started: Instant,
    ) -> anyhow::Result<(Duration, Image)> {
        let resp = self
            .http
            .post(format!("{}/v1/images/import", self.base))
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .json(req)
            .send()
            .await
            .context("POST /v1/images/import")?;
        let status = resp.status();
        let body = resp.bytes().await?;
        ensure!(
            status == reqwest::StatusCode::ACCEPTED,
            "POST /v1/images/import answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let image: Image = serde_json::from_slice(&body).context("import: unexpected body")?;
        let op_id = image
            .operation_id
            .clone()
            .context("the import answer names no operation")?;
        loop {
            let op: Operation = self.get(&format!("/v1/operations/{op_id}")).await?;
            match op.status {
                OperationStatus::Succeeded => break,
                OperationStatus::Failed => bail!(
                    "import operation {op_id} failed: {}",
                    op.error.as_deref().unwrap_or("(no reason)")
                ),
                OperationStatus::Running => {}
            }
            ensure!(
                started.elapsed() < IMPORT_DEADLINE,
                "import operation {op_id} still running after {} s ({} bytes)",
                IMPORT_DEADLINE.as_secs(),
                op.progress_bytes
            );
            tokio::time::sleep(OP_POLL).await;
        }
        let elapsed = started.elapsed();
        let image: Image = self.get(&format!("/v1/images/{}", image.id)).await?;
        Ok((elapsed, image))
    }
}

/// Removes every committed blob (the coordinator does not read them during the benchmark);
/// returns how long `qemu-img info` took on the first one, by hand.
fn clear_blobs(blobs: &Path) -> anyhow::Result<Option<Duration>> {
    let mut info_time = None;
    for entry in std::fs::read_dir(blobs).with_context(|| format!("listing {}", blobs.display()))? {
        let path = entry?.path();
        if info_time.is_none() {
            let started = Instant::now();
            run_checked(
                Command::new("qemu-img")
                    .args(["info", "--output=json"])
                    .arg(&path),
            )?;
            info_time = Some(started.elapsed());
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(info_time)
}

fn best_and_mean(times: &[Duration], bytes: u64) -> (f64, f64) {
    let best = times.iter().min().map_or(f64::NAN, |d| mb_per_s(bytes, *d));
    let total: Duration = times.iter().sum();
    let mean = mb_per_s(bytes, total / times.len().max(1) as u32);
    (best, mean)
}

fn times(ds: &[Duration]) -> String {
    ds.iter()
        .map(|d| format!("{:.2} s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plinth_common::tls::install_crypto_provider();
    for tool in ["qemu-img", "curl", "openssl", "bash", "tee", "sync"] {
        find_program(tool).with_context(|| format!("{tool} is not installed"))?;
    }

    let tmp = tempfile::tempdir()?;
    let www = tmp.path().join("www");
    std::fs::create_dir(&www)?;
    let source = www.join(SOURCE_NAME);
    let made = Instant::now();
    let size = make_source(tmp.path(), &source)?;
    println!(
        "image_import: POST /v1/images/import from nginx on loopback vs `curl | tee | openssl dgst -sha256`"
    );
    println!(
        "source: qcow2, {size} bytes ({:.1} MB; virtual size {SOURCE_BYTES}, random content), made in {:.1} s",
        mb(size),
        made.elapsed().as_secs_f64()
    );

    let nginx_prefix = tmp.path().join("nginx");
    std::fs::create_dir(&nginx_prefix)?;
    let (mut nginx, base) = start_nginx(&nginx_prefix, &www, SOURCE_NAME).await?;
    let url = format!("{base}/{SOURCE_NAME}");
    println!("server: nginx (sendfile on, 1 worker), {url}");

    let data_dir = tmp.path().join("data");
    let dir = DataDir::new(&data_dir);
    let initialised = init::init(&dir, &[], "127.0.0.1:0", None)
        .await
        .context("init")?;
    let ca_pem = std::fs::read_to_string(dir.ca_cert()).context("reading ca.pem")?;
    let tenant_id = new_id("tenant");
    {
        let store = Store::open(&dir.database())
            .await
            .context("opening the store")?;
        store
            .create_tenant(&tenant_id, "bench@example.com", "bench")
            .await?
            .context("the tenant already exists")?;
    }
    let (mut coordinator, addr) = start_coordinator(&data_dir).await?;
    let pid = coordinator.pid();
    let api = Api {
        http: reqwest::Client::builder()
            .use_preconfigured_tls(plinth_common::tls::client_config(&ca_pem, None)?)
            .timeout(Duration::from_secs(30))
            .build()?,
        base: format!("https://{addr}"),
        auth: format!("Bearer {}", initialised.admin_token),
    };
    let blobs = dir.images().join("blobs");
    let hand_out = tmp.path().join("hand.out");
    let runs = std::env::var("IMAGE_IMPORT_RUNS")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|r| *r > 0)
        .unwrap_or(RUNS);
    println!(
        "{runs} rounds of: hand pipeline, plinth import, hand pipeline && sync FILE; \
         {} s pause before each run (outputs removed first)",
        SETTLE.as_secs()
    );
    println!();

    let mut hand_times = Vec::new();
    let mut sync_times = Vec::new();
    let mut plinth_times = Vec::new();
    let mut info_times = Vec::new();
    let mut expected_sha: Option<String> = None;
    let mut baseline_rss = 0;
    let mut peak_rss = 0;
    let mut run_peaks = Vec::new();
    let steal_started = steal_seconds();
    let bench_started = Instant::now();
    for run in 1..=runs {
        tokio::time::sleep(SETTLE).await;
        let steal = steal_seconds();
        let hand = hand_run(HAND, &url, &hand_out)?;
        let steal = steal_seconds() - steal;
        let written = std::fs::metadata(&hand_out)?.len();
        std::fs::remove_file(&hand_out)?;
        ensure!(
            written == size,
            "the hand pipeline wrote {written} of {size} bytes"
        );
        let sha = expected_sha
            .get_or_insert_with(|| hand.sha256.clone())
            .clone();
        ensure!(sha == hand.sha256, "the hand pipeline's hash changed");
        hand_times.push(hand.elapsed);
        println!(
            "run {run}: hand pipeline       {:6.2} s {:7.1} MB/s  cpu {:5.2} s, steal {:4.2} s",
            hand.elapsed.as_secs_f64(),
            mb_per_s(size, hand.elapsed),
            hand.cpu,
            steal
        );

        if run == 1 {
            // Settled after start-up; the API has answered (TLS, auth, store) at least once.
            let _: Option<serde_json::Value> = api.get("/v1/images").await.ok();
            tokio::time::sleep(Duration::from_millis(500)).await;
            baseline_rss = proc_status_bytes(pid, "VmRSS:")?;
        }
        tokio::time::sleep(SETTLE).await;
        // `url` beside the declaration's fields: the body `ImportImage` (or a `NewImage`
        // with `url`) serialises to.
        let req = serde_json::json!({
            "url": url,
            "name": format!("bench-import-{run}"),
            "tenant_id": tenant_id,
            "type": "image",
            "os_type": "linux",
            "architecture": "x86_64",
            "platform": "centos",
            "version": "7.9",
            "target_size_gb": TARGET_SIZE_GB,
            "sha256": sha,
            "visibility": "private",
        });
        let (cpu, steal) = (process_cpu(pid)?, steal_seconds());
        let imported = api.import(&req, pid, size, &sha).await?;
        let (cpu, steal) = (process_cpu(pid)? - cpu, steal_seconds() - steal);
        if let Some(t) = clear_blobs(&blobs)? {
            info_times.push(t);
        }
        plinth_times.push(imported.elapsed);
        peak_rss = peak_rss.max(imported.peak_rss);
        run_peaks.push(imported.peak_rss);
        println!(
            "run {run}: plinth import       {:6.2} s {:7.1} MB/s  cpu {:5.2} s, steal {:4.2} s  \
             (coordinator; image {}, peak RSS {:.1} MB)",
            imported.elapsed.as_secs_f64(),
            mb_per_s(size, imported.elapsed),
            cpu,
            steal,
            imported.image.id,
            mb(imported.peak_rss)
        );

        tokio::time::sleep(SETTLE).await;
        let steal = steal_seconds();
        let synced = hand_run(HAND_SYNC, &url, &hand_out)?;
        let steal = steal_seconds() - steal;
        std::fs::remove_file(&hand_out)?;
        ensure!(sha == synced.sha256, "the hand pipeline's hash changed");
        sync_times.push(synced.elapsed);
        println!(
            "run {run}: hand && sync FILE   {:6.2} s {:7.1} MB/s  cpu {:5.2} s, steal {:4.2} s  \
             (reference: fsync'd like plinth)",
            synced.elapsed.as_secs_f64(),
            mb_per_s(size, synced.elapsed),
            synced.cpu,
            steal
        );
    }
    let hwm = proc_status_bytes(pid, "VmHWM:")?;
    let steal = steal_seconds() - steal_started;
    let wall = bench_started.elapsed().as_secs_f64();
    coordinator.stop();
    nginx.stop();
    drop(tmp);

    let (hand_best, hand_mean) = best_and_mean(&hand_times, size);
    let (sync_best, sync_mean) = best_and_mean(&sync_times, size);
    let (plinth_best, plinth_mean) = best_and_mean(&plinth_times, size);
    let ratio_best = plinth_best / hand_best;
    let ratio_mean = plinth_mean / hand_mean;
    let growth = peak_rss.saturating_sub(baseline_rss);
    println!();
    println!("file size: {size} bytes ({:.1} MB)", mb(size));
    println!(
        "hand pipeline (curl -s URL | tee FILE | openssl dgst -sha256): \
         best {hand_best:.1} MB/s, mean {hand_mean:.1} MB/s  [{}]",
        times(&hand_times)
    );
    println!(
        "plinth import (POST -> operation succeeded; includes the fsync, qemu-img info and \
         the commit): best {plinth_best:.1} MB/s, mean {plinth_mean:.1} MB/s  [{}]",
        times(&plinth_times)
    );
    println!(
        "reference, hand pipeline && sync FILE: best {sync_best:.1} MB/s, \
         mean {sync_mean:.1} MB/s  [{}]",
        times(&sync_times)
    );
    if !info_times.is_empty() {
        println!(
            "  (qemu-img info on the committed blob, by hand: {})",
            times(&info_times)
        );
    }
    println!("ratio plinth/hand: best/best {ratio_best:.2}x, mean/mean {ratio_mean:.2}x");
    println!(
        "ratio plinth/(hand && sync): best/best {:.2}x, mean/mean {:.2}x",
        plinth_best / sync_best,
        plinth_mean / sync_mean
    );
    println!(
        "coordinator RSS: baseline {:.1} MB, peak {:.1} MB (per run: {}), growth {:.1} MB; \
         VmHWM at end {:.1} MB",
        mb(baseline_rss),
        mb(peak_rss),
        run_peaks
            .iter()
            .map(|b| format!("{:.1} MB", mb(*b)))
            .collect::<Vec<_>>()
            .join(", "),
        mb(growth),
        mb(hwm)
    );
    println!(
        "CPU stolen by the host while the runs went on: {steal:.1} s of {:.1} CPU-s ({:.0}%)",
        wall * cpus() as f64,
        100.0 * steal / (wall * cpus() as f64)
    );
    println!();
    let met = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!(
        "goal throughput >= {GOAL_RATIO}x: {} (best/best {ratio_best:.2}x)",
        met(ratio_best >= GOAL_RATIO)
    );
    println!(
        "goal RSS growth < {GOAL_RSS_GROWTH_MB:.0} MB: {} ({:.1} MB)",
        met(mb(growth) < GOAL_RSS_GROWTH_MB),
        mb(growth)
    );
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
