//! Opt-in (issue 20; not in `scripts/test.sh`): a highly available region on a PostgreSQL
//! that is itself highly available — Patroni in synchronous mode over etcd, HAProxy in front
//! (README, "A highly available region") — whose primary dies during a drain. Needs Debian's
//! `patroni`, `etcd-server`, `haproxy` and `python3-etcd`; run it with
//! `cargo test -p plinth-e2e --test ha_patroni -- --ignored`. etcd on 127.0.0.84, Patroni
//! nodes on .85-.86, HAProxy on .87, coordinators on .88-.89, libvirtd hosts on .91-.93.

use plinth_e2e::drain::ha_drain_survives;
use plinth_e2e::ha::{Ha, shared_images, start_on};
use plinth_e2e::patroni;
use std::path::Path;

/// The PostgreSQL primary (its Patroni and its postmaster) is killed once the drain's first
/// migration is under way; the synchronous standby is promoted, HAProxy sends the
/// coordinators' new connections to it, and the drain ends as if nothing happened: every
/// guest moved and running on exactly one host, each started migrating once, claims adding
/// up — no committed write was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "opt-in: needs patroni, etcd-server, haproxy and python3-etcd (see the file's comment)"]
async fn a_drain_survives_a_postgresql_failover() -> anyhow::Result<()> {
    if let Some(why) = patroni::missing() {
        anyhow::bail!("cannot run: {why}");
    }
    let mut cluster = patroni::start(84, 2).await?;
    cluster.create_database("region").await?;
    let shared = |dir: &Path| shared_images(dir, &["--migration-timeout", "45s"]);
    let mut ha = start_on(&cluster.database_url("region"), 87, 2, shared).await?;
    let primary = cluster.wait_primary(None).await?;
    let cluster_ref = &mut cluster;
    let kill_primary = |_: &mut Ha| cluster_ref.kill_node(primary);
    let ran = ha_drain_survives(&mut ha, 0, 91, &[0, 1], kill_primary).await;
    let promoted = cluster.wait_primary(Some(primary)).await;
    for m in &mut ha.members {
        m.daemon.stop();
    }
    let logs = cluster.logs();
    anyhow::ensure!(
        ran.map_err(|e| e.context(logs.clone()))?,
        "real libvirt is not allowed here"
    );
    anyhow::ensure!(promoted? != primary, "{logs}");
    Ok(())
}
