//! `plinth-coordinator dev`: a whole region on this machine, worth trying. It initialises the
//! data directory when empty, serves the coordinator, and starts N real `plinth-agent`
//! processes that enroll through the same token + CSR + mTLS path as production, each on its
//! own private libvirtd with QEMU (so a drain really live-migrates guests between them), K
//! simulated BMCs, and a demo made through the API. Ctrl-C stops every process it started,
//! by pid; a second start on the same data directory resumes the same region.

pub mod bmc;
mod hosts;
pub mod libvirtd;
pub mod postgres;
mod seed;

use crate::config::Config;
use crate::hosts::store::HostFilter;
use crate::paths::{DataDir, write_file};
use crate::{init, own_certs, serve, shutdown};
use anyhow::{Context, bail};
use bmc::Bmc;
use hosts::{DEV_CLUSTER, DevHost, Libvirt};
use plinth_common::api::AgentStatus;
use plinth_common::timefmt::now_ms;
use seed::{Api, Demo};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long agents still accept the server certificate that `dev` replaces when the listen
/// address changes (its own agent has not started yet).
const ROTATED_GRACE: Duration = Duration::from_secs(600);
/// The most hosts dev mode starts (their addresses are 127.0.10.1 up).
const MAX_HOSTS: usize = 50;
/// The most simulated BMCs (on 127.0.20.1 up).
const MAX_BMCS: usize = 20;
/// The simulated BMCs' admin password (dev mode only).
const BMC_PASSWORD: &str = "dev-bmc-pass";
/// How long every agent has to come online.
const ONLINE_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    #[arg(long, env = "PLINTH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The coordinator's address, any loopback address (127.0.0.0/8, [::1]) or one of this
    /// machine's; the server certificate is made to name it.
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: String,
    /// How many hosts [default: 3, each with its own private libvirtd and QEMU, when this
    /// runs as root with libvirtd and qemu-system-x86_64 installed; else 1 on libvirt's test
    /// driver].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=MAX_HOSTS as i64))]
    pub hosts: Option<u16>,
    /// Simulated BMCs (ipmi_sim on 127.0.20.x:623), added as the demo tenant's bare-metal
    /// servers [default: 2 when ipmi_sim is installed and this runs as root, else 0].
    #[arg(long, value_parser = clap::value_parser!(u16).range(0..=MAX_BMCS as i64))]
    pub with_bmc: Option<u16>,
    /// No demo: no tenant, image, instances, segments or servers are made.
    #[arg(long)]
    pub empty: bool,
    /// One libvirt URI for every agent instead of private daemons (e.g. test:///default).
    #[arg(long)]
    pub libvirt_uri: Option<String>,
    /// The plinth-agent binary [default: beside this one].
    #[arg(long, env = "PLINTH_AGENT_BIN")]
    pub agent_bin: Option<PathBuf>,
}

/// What this run starts, and why where a default was narrowed.
#[derive(Debug)]
struct Plan {
    libvirt: Libvirt,
    hosts: usize,
    bmcs: usize,
    notes: Vec<String>,
}

fn plan(args: &DevArgs) -> anyhow::Result<Plan> {
    let mut notes = Vec::new();
    let libvirt = match (&args.libvirt_uri, libvirtd::unavailable()) {
        (Some(uri), _) => Libvirt::Uri(uri.clone()),
        (None, None) => Libvirt::Private,
        (None, Some(why)) => {
            notes.push(format!(
                "Hosts run on libvirt's test driver (no real guests, no live migration): {why}."
            ));
            Libvirt::Uri("test:///default".into())
        }
    };
    let hosts = match (args.hosts, &libvirt) {
        (Some(n), _) => usize::from(n),
        (None, Libvirt::Private) => 3,
        (None, Libvirt::Uri(_)) => 1,
    };
    let bmcs = match (args.with_bmc, bmc::unavailable()) {
        (Some(0), _) => 0,
        (Some(_), Some(why)) => bail!("--with-bmc: {why}"),
        (Some(k), None) => usize::from(k),
        (None, None) => 2,
        (None, Some(why)) => {
            notes.push(format!("No simulated BMCs: {why}."));
            0
        }
    };
    Ok(Plan {
        libvirt,
        hosts,
        bmcs,
        notes,
    })
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = args.listen.parse().context("--listen")?;
    let plan = plan(&args)?;
    let dir = DataDir::new(&args.data_dir);
    if !dir.is_initialised() {
        init::init(&dir, &[listen.ip().to_string()], &args.listen, None).await?;
        println!("Initialised a new region in {}.", dir.root().display());
    } else if !own_certs::server_cert_names(&dir, listen.ip())? {
        // A region made for another address: its agents would refuse this one.
        let database = crate::db::Database::Sqlite(dir.database());
        let done =
            own_certs::rotate(&dir, &database, ROTATED_GRACE, &[listen.ip().to_string()]).await?;
        tracing::info!(
            listen = %listen,
            serial = %done.server_serial,
            "Re-issued the server certificate to name the listen address."
        );
    }
    let root = dir.root().canonicalize()?;
    // Written again once this run's region is up; an earlier run's would name a stale token.
    let _ = std::fs::remove_file(root.join("dev.env"));
    let config = Config {
        store: crate::config::StoreSettings {
            database: crate::db::Database::Sqlite(DataDir::new(&root).database()),
            coordinator_name: None,
            job_lease_ttl: crate::jobs::lease::DEFAULT_TTL,
            images_dir: DataDir::new(&root).images(),
            images_dir_shared: false,
        },
        data_dir: root.clone(),
        listen,
        agent_cert_ttl: Duration::from_secs(30 * 86_400),
        renewed_cert_grace: crate::config::DEFAULT_RENEWED_CERT_GRACE,
        import_ca_file: None,
        overcommit: Default::default(),
        policy: Default::default(),
        drains: Default::default(),
        prometheus: None,
        baremetal: Default::default(),
        max_token_ttl: Duration::from_secs(365 * 86_400),
        sessions: Default::default(),
        shutdown_timeout: crate::config::DEFAULT_SHUTDOWN_TIMEOUT,
        limits: plinth_common::serve::Limits::with_max_connections(
            crate::config::DEFAULT_MAX_CONNECTIONS,
        ),
        metrics_listen: None,
        metrics_tls: None,
        metrics_limits: plinth_common::serve::Limits::with_max_connections(
            crate::config::DEFAULT_METRICS_MAX_CONNECTIONS,
        ),
    };
    let running = serve::start(&config).await?;
    let st = running.state.clone();
    // The agents dial, and are dialled at, a real address: loopback for a wildcard listen.
    let near = match running.addr.ip() {
        ip if !ip.is_unspecified() => ip,
        IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(_) => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    };
    st.store
        .create_cluster(DEV_CLUSTER, "created by plinth-coordinator dev")
        .await?;
    let admin_token = init::create_admin_token(&st.store, "dev", "dev").await?;
    let url = format!("https://{}", SocketAddr::new(near, running.addr.port()));
    let agent_bin = match &args.agent_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("plinth-agent"),
    };
    for note in &plan.notes {
        println!("{note}");
    }

    let site = hosts::Region {
        state: &st,
        url: &url,
        agent_bin: &agent_bin,
        root: &root,
        near,
    };
    let api = Api::new(
        &url,
        &std::fs::read_to_string(root.join("ca.pem"))?,
        &admin_token,
    )?;
    let mut region = Running::default();
    // `None`: interrupted while starting.
    let up = tokio::select! {
        up = region.start(&plan, args.empty, &site, &api) => Some(up),
        _ = shutdown::signalled() => None,
    };
    let outcome = match up {
        // Whatever happens here, the region's processes are stopped below.
        Some(Ok(demo)) => match write_env(&root, &url, &admin_token, demo.as_ref()) {
            Ok(()) => {
                print_up(&root, &url, &plan, &region, demo.as_ref(), &api).await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
                tokio::select! {
                    _ = shutdown::signalled() => Ok(()),
                    name = region.an_agent_exited() => {
                        tracing::error!(host = %name, "An agent exited.");
                        Ok(())
                    }
                }
            }
            Err(e) => Err(e),
        },
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    region.stop().await;
    tracing::info!(deadline = ?config.shutdown_timeout, "Shutting down.");
    running.shutdown(config.shutdown_timeout).await;
    tracing::info!("Shut down.");
    outcome
}

/// Every process this run started (stopped by pid, in reverse, on the way out).
#[derive(Default)]
struct Running {
    hosts: Vec<DevHost>,
    bmcs: Vec<Bmc>,
}

impl Running {
    /// Starts the hosts and BMCs, waits for every agent, and makes the demo the first time
    /// (unless `empty`); the demo once up.
    async fn start(
        &mut self,
        plan: &Plan,
        empty: bool,
        site: &hosts::Region<'_>,
        api: &Api,
    ) -> anyhow::Result<Option<Demo>> {
        let root = site.root;
        // Private daemons run real guests: the demo segments get a NIC they can bridge, made
        // before the agents start so that their first facts already name it.
        let nic = match plan.libvirt {
            Libvirt::Private if !empty => seed::dev_uplink()?,
            _ => seed::DEMO_NIC,
        };
        for n in 1..=plan.hosts {
            let host = site.start_host(n, plan.hosts, &plan.libvirt).await?;
            self.hosts.push(host);
        }
        for k in 1..=plan.bmcs {
            let ip = Ipv4Addr::new(127, 0, 20, k as u8).to_string();
            let dir = root.join("bmcs").join(format!("bmc{k}"));
            let bmc =
                tokio::task::spawn_blocking(move || Bmc::start(&dir, &ip, BMC_PASSWORD)).await??;
            self.bmcs.push(bmc);
        }
        tokio::select! {
            online = wait_for_hosts(site.state, plan.hosts) => online?,
            name = self.an_agent_exited() => bail!("the agent of {name} exited early"),
        }
        let demo_file = root.join("demo.json");
        if empty {
            return Ok(None);
        }
        if let Ok(text) = std::fs::read_to_string(&demo_file) {
            return Ok(Some(serde_json::from_str(&text)?));
        }
        println!("Making the demo (a tenant, an image, two instances, segments, servers)...");
        let demo = seed::seed(api, &root.join("demo"), &self.bmcs, nic).await?;
        write_file(&demo_file, serde_json::to_string(&demo)?.as_bytes(), 0o600)?;
        Ok(Some(demo))
    }

    /// The name of the first host whose agent exits (pending while every agent runs).
    async fn an_agent_exited(&mut self) -> String {
        if self.hosts.is_empty() {
            return std::future::pending().await;
        }
        let waits = self.hosts.iter_mut().map(|h| {
            Box::pin(async move {
                let _ = h.agent.wait().await;
                h.name.clone()
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    async fn stop(&mut self) {
        while let Some(host) = self.hosts.pop() {
            host.stop().await;
        }
        while let Some(mut bmc) = self.bmcs.pop() {
            let _ = tokio::task::spawn_blocking(move || bmc.stop()).await;
        }
    }
}

/// The CLI's environment (and the demo tenant's token), for `source`.
fn write_env(root: &Path, url: &str, admin_token: &str, demo: Option<&Demo>) -> anyhow::Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut env = format!(
        "export PLINTH_URL={url}\nexport PLINTH_TOKEN={admin_token}\nexport PLINTH_CA={}\nexport PATH={}:$PATH\n",
        root.join("ca.pem").display(),
        bin_dir.display()
    );
    if let Some(demo) = demo {
        env.push_str(&format!(
            "# The demo tenant's token: PLINTH_TOKEN=$PLINTH_DEMO_TOKEN plinth instances list\nexport PLINTH_DEMO_TOKEN={}\n",
            demo.tenant_token
        ));
    }
    write_file(&root.join("dev.env"), env.as_bytes(), 0o600)?;
    Ok(())
}

/// The lines a newcomer needs: where the console is, how to use the CLI, what to try.
async fn print_up(
    root: &Path,
    url: &str,
    plan: &Plan,
    region: &Running,
    demo: Option<&Demo>,
    api: &Api,
) {
    let env = root.join("dev.env");
    let kind = match plan.libvirt {
        Libvirt::Private => "each on its own libvirtd with QEMU".to_string(),
        Libvirt::Uri(ref uri) => format!("on {uri}"),
    };
    println!(
        "\nplinth dev region is up: coordinator {url}, {} host(s) {kind}, {} simulated BMC(s).",
        region.hosts.len(),
        region.bmcs.len()
    );
    for host in &region.hosts {
        println!("  host {} at {}", host.name, host.address);
    }
    println!(
        "The web console: {url}/ (the browser will warn about the region's own CA: trust {} or accept it); sign in with the token PLINTH_TOKEN in {}.",
        root.join("ca.pem").display(),
        env.display()
    );
    println!("The CLI, in another terminal:\n  source {}", env.display());
    let tries = match demo {
        Some(demo) => things_to_try(api, demo).await,
        None => vec!["plinth hosts list".to_string()],
    };
    println!("Then try:");
    for t in tries {
        println!("  {t}");
    }
    println!("Ctrl-C stops the region.\n");
}

/// Three commands worth trying on the demo: the drain plan and the maintenance of the host
/// its instances run on, and a bare-metal server's serial console.
async fn things_to_try(api: &Api, demo: &Demo) -> Vec<String> {
    let mut out = vec!["plinth instances list".to_string()];
    let host = match demo.instances.first() {
        Some(first) => api.host_of(first).await,
        None => Err(anyhow::anyhow!("no demo instance")),
    };
    if let Ok(host) = host {
        out = vec![
            format!("plinth hosts maintenance plan {host}"),
            format!("plinth hosts lock {host} && plinth hosts maintenance enter {host} --wait"),
        ];
    }
    match demo.baremetal.first() {
        Some(bm) => out.push(format!("plinth baremetal console {bm}")),
        None => out.push("plinth images list".into()),
    }
    out
}

async fn wait_for_hosts(st: &crate::state::AppState, count: usize) -> anyhow::Result<()> {
    let filter = HostFilter {
        agent: Some(AgentStatus::Online),
        limit: 1,
        ..HostFilter::default()
    };
    let deadline = tokio::time::Instant::now() + ONLINE_DEADLINE;
    loop {
        let (_, total) = st.store.list_hosts(&filter, now_ms()).await?;
        if total as usize >= count {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{total} of {count} agents came online within {ONLINE_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
