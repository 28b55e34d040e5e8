//! A PostgreSQL cluster that fails over by itself, for the opt-in Patroni test (issue 20):
//! one etcd, Patroni nodes in synchronous mode (each runs its own PostgreSQL), and HAProxy
//! in TCP mode in front, sending connections to whichever node Patroni's REST API says is
//! the primary — the set-up README's "A highly available region" describes. Needs Debian's
//! `patroni`, `etcd-server` and `haproxy` packages (with `python3-etcd`). etcd, HAProxy and
//! each Patroni are stopped by their pids when the cluster is dropped; a node's PostgreSQL is
//! stopped by its Patroni, or by its postmaster's pid once its Patroni was killed.

use crate::process::Daemon;
use crate::wait_for;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a new primary may take: Patroni's leader key lives `ttl` (10 s) after its holder
/// dies, then the synchronous standby promotes itself.
pub const FAILOVER_WITHIN: Duration = Duration::from_secs(60);

/// The programs the cluster needs, or what is missing.
pub fn missing() -> Option<String> {
    let lacking: Vec<&str> = ["patroni", "etcd", "haproxy"]
        .into_iter()
        .filter(|p| which(p).is_none())
        .collect();
    if !lacking.is_empty() {
        return Some(format!(
            "{} not installed (apt-get install patroni etcd-server haproxy python3-etcd)",
            lacking.join(", ")
        ));
    }
    plinth_coordinator::dev::postgres::unavailable()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

pub struct Node {
    pub name: String,
    pub ip: String,
    data: PathBuf,
    patroni: Daemon,
    /// Killed by the test: its postmaster's pid (in its data directory) is stale.
    killed: bool,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    etcd: Daemon,
    haproxy: Daemon,
    pub nodes: Vec<Node>,
    /// Where clients connect: HAProxy's address.
    pub front: String,
}

/// etcd on 127.0.0.`base`, `n` Patroni nodes on the addresses after it (PostgreSQL on 5432,
/// the REST API on 8008), HAProxy on the one after those; returns once a primary answers
/// through HAProxy and every other node streams from it.
pub async fn start(base: u8, n: u8) -> anyhow::Result<Cluster> {
    let dir = tempfile::Builder::new()
        .prefix("plinth-patroni-")
        .tempdir()?;
    let user = plinth_coordinator::dev::postgres::server_user()?;
    let owned = |path: &Path| -> anyhow::Result<()> {
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    };
    owned(dir.path())?;
    let as_server = |cmd: &mut Command| {
        if let Some((uid, gid)) = user {
            cmd.uid(uid).gid(gid);
        }
    };
    let ip = |i: u8| format!("127.0.0.{}", base + i);
    let etcd_url = |port: u16| format!("http://{}:{port}", ip(0));
    let mut cmd = Command::new("etcd");
    cmd.args(["--name", "e1", "--data-dir"])
        .arg(dir.path().join("etcd"))
        .args(["--listen-client-urls", &etcd_url(2379)])
        .args(["--advertise-client-urls", &etcd_url(2379)])
        .args(["--listen-peer-urls", &etcd_url(2380)])
        .args(["--initial-advertise-peer-urls", &etcd_url(2380)])
        .args(["--initial-cluster", &format!("e1={}", etcd_url(2380))]);
    as_server(&mut cmd);
    let etcd = Daemon::spawn(cmd, &dir.path().join("etcd.log"))?;
    let bin = plinth_coordinator::dev::postgres::bin_dir()?;
    let mut nodes = Vec::new();
    for i in 1..=n {
        let name = format!("pg{i}");
        let data = dir.path().join(&name);
        let sockets = dir.path().join(format!("{name}-sockets"));
        std::fs::create_dir(&sockets)?;
        owned(&sockets)?;
        let config = dir.path().join(format!("{name}.yml"));
        std::fs::write(
            &config,
            node_config(&name, &ip(i), &ip(0), &data, &sockets, &bin, dir.path()),
        )?;
        owned(&config)?;
        let mut cmd = Command::new("patroni");
        cmd.arg(&config);
        as_server(&mut cmd);
        let patroni = Daemon::spawn(cmd, &dir.path().join(format!("{name}.log")))?;
        nodes.push(Node {
            name,
            ip: ip(i),
            data,
            patroni,
            killed: false,
        });
    }
    let front = ip(n + 1);
    let haproxy_config = dir.path().join("haproxy.cfg");
    std::fs::write(&haproxy_config, haproxy_config_text(&front, &nodes))?;
    let mut cmd = Command::new("haproxy");
    cmd.arg("-f").arg(&haproxy_config).arg("-db");
    let haproxy = Daemon::spawn(cmd, &dir.path().join("haproxy.log"))?;
    let cluster = Cluster {
        dir,
        etcd,
        haproxy,
        nodes,
        front,
    };
    let primary = cluster.wait_primary(None).await?;
    cluster.wait_streaming(&primary).await?;
    Ok(cluster)
}

fn node_config(
    name: &str,
    ip: &str,
    etcd: &str,
    data: &Path,
    sockets: &Path,
    bin: &Path,
    dir: &Path,
) -> String {
    // Synchronous mode: a commit is on the standby before it is acknowledged, so a failover
    // loses nothing. fsync is off as in the other tests' servers: a killed process loses
    // nothing the kernel holds, and these tests kill processes, not machines.
    format!(
        "scope: plinth\n\
         name: {name}\n\
         restapi:\n  listen: {ip}:8008\n  connect_address: {ip}:8008\n\
         etcd3:\n  hosts: {etcd}:2379\n\
         bootstrap:\n  dcs:\n    ttl: 10\n    loop_wait: 1\n    retry_timeout: 4\n\
         \x20   maximum_lag_on_failover: 1048576\n    synchronous_mode: true\n\
         \x20   postgresql:\n      use_pg_rewind: false\n      parameters:\n\
         \x20       fsync: 'off'\n        full_page_writes: 'off'\n        max_connections: 300\n\
         \x20 initdb:\n    - encoding: UTF8\n    - auth: trust\n\
         \x20 pg_hba:\n    - local all all trust\n    - host all all 127.0.0.0/8 trust\n\
         \x20   - host replication replicator 127.0.0.0/8 trust\n\
         postgresql:\n  listen: {ip}:5432\n  connect_address: {ip}:5432\n\
         \x20 data_dir: {data}\n  bin_dir: {bin}\n  pgpass: {pgpass}\n\
         \x20 authentication:\n    superuser:\n      username: postgres\n      password: plinth\n\
         \x20   replication:\n      username: replicator\n      password: plinth\n\
         \x20 parameters:\n    unix_socket_directories: '{sockets}'\n",
        data = data.display(),
        bin = bin.display(),
        sockets = sockets.display(),
        pgpass = dir.join(format!("{name}.pgpass")).display(),
    )
}

/// HAProxy in TCP mode: only the node whose `/primary` answers 200 gets connections; the
/// sessions to a node marked down are cut, so clients reconnect to the new primary.
fn haproxy_config_text(front: &str, nodes: &[Node]) -> String {
    let mut text = format!(
        "global\n    maxconn 1000\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30m\n\
         \x20   timeout server 30m\n    timeout check 1s\n\
         listen primary\n    bind {front}:5432\n    option httpchk GET /primary\n\
         \x20   http-check expect status 200\n\
         \x20   default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n"
    );
    for node in nodes {
        text.push_str(&format!(
            "    server {} {}:5432 check port 8008\n",
            node.name, node.ip
        ));
    }
    text
}

impl Cluster {
    /// The region's database URL, through HAProxy.
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres:plinth@{}:5432/{database}", self.front)
    }

    /// Makes database `name` on the primary.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.database_url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// The index of the node whose `/primary` answers 200, when one does.
    async fn primary_now(&self) -> Option<usize> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        for (i, node) in self.nodes.iter().enumerate() {
            let url = format!("http://{}:8008/primary", node.ip);
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits for a primary other than `not` (any, when `None`) that takes a write through
    /// HAProxy; returns its index.
    pub async fn wait_primary(&self, not: Option<usize>) -> anyhow::Result<usize> {
        let url = self.database_url("postgres");
        wait_for(
            "a PostgreSQL primary through HAProxy",
            FAILOVER_WITHIN,
            || {
                let url = url.clone();
                async move {
                    let Some(i) = self.primary_now().await else {
                        return Ok(None);
                    };
                    if Some(i) == not {
                        return Ok(None);
                    }
                    use sqlx::Connection;
                    let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
                        return Ok(None);
                    };
                    let writable: Result<bool, _> =
                        sqlx::query_scalar("SELECT NOT pg_is_in_recovery()")
                            .fetch_one(&mut conn)
                            .await;
                    Ok((writable.ok() == Some(true)).then_some(i))
                }
            },
        )
        .await
        .map_err(|e| e.context(self.logs()))
    }

    /// Waits until `primary` has its synchronous standby, streaming (when it has another node).
    async fn wait_streaming(&self, primary: &usize) -> anyhow::Result<()> {
        let want = i64::from(self.nodes.len() > 1);
        let url = self.database_url("postgres");
        wait_for("the standbys to stream", FAILOVER_WITHIN, || {
            let url = url.clone();
            async move {
                use sqlx::Connection;
                let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
                    return Ok(None);
                };
                let sync: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_replication \
                     WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')",
                )
                .fetch_one(&mut conn)
                .await?;
                Ok((sync >= want).then_some(()))
            }
        })
        .await
        .map_err(|e| e.context(format!("primary {primary}: {}", self.logs())))
    }

    /// Kills node `i` as a machine dies: its Patroni and its PostgreSQL, SIGKILL.
    pub fn kill_node(&mut self, i: usize) -> anyhow::Result<()> {
        let postmaster = self.postmaster(i);
        self.nodes[i].patroni.kill();
        self.nodes[i].killed = true;
        if let Some(pid) = postmaster {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        Ok(())
    }

    /// The pid of node `i`'s postmaster, from its data directory.
    fn postmaster(&self, i: usize) -> Option<i32> {
        let text = std::fs::read_to_string(self.nodes[i].data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Every process's log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in self
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(["haproxy", "etcd"])
        {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name}.log (last lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.haproxy.stop();
        for i in 0..self.nodes.len() {
            // Patroni stops its PostgreSQL on SIGTERM; a node whose Patroni is gone (or
            // would not stop) has its postmaster stopped by pid.
            let postmaster = self.postmaster(i).filter(|_| !self.nodes[i].killed);
            self.nodes[i].patroni.stop();
            if let Some(pid) = postmaster
                && kill(Pid::from_raw(pid), None).is_ok()
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
            }
        }
        self.etcd.stop();
    }
}
