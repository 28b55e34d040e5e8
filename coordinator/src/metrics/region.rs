//! The region's series, read from the store at each scrape: operations by kind and outcome
//! with their durations, drains and migrations in flight and how they ended, import bytes,
//! agents and hosts per cluster, bare-metal power sync, certificate expiry. The store is the
//! truth (it survives restarts and is the same for every coordinator), so these are counts
//! of its rows, not counters kept in memory. Portable SQL only (SQLite and PostgreSQL).

use crate::db::Store;
use crate::state::AppState;
use plinth_common::serve::stats::family;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::fmt;

const HOST_STATES: [&str; 4] = ["available", "locked", "entering_maintenance", "maintenance"];

/// Upper bounds (seconds) of the operation-duration histogram.
const DURATION_BUCKETS: [f64; 9] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0];

type Labels = Vec<(&'static str, String)>;

/// One ended operation bucket row: count, total milliseconds, and per-bucket counts.
#[derive(Debug, Default, Clone)]
struct Ended {
    count: u64,
    ms: i64,
    le: [u64; DURATION_BUCKETS.len()],
}

/// Everything one scrape reports about the region.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (kind, outcome) of ended operations.
    ended: BTreeMap<(String, &'static str), Ended>,
    running: BTreeMap<String, (u64, f64)>,
    import_bytes: u64,
    drains_running: u64,
    drain_oldest_s: f64,
    left_behind: u64,
    migrations_running: u64,
    migration_oldest_s: f64,
    migrations_ended: BTreeMap<&'static str, u64>,
    migration_timeout_s: f64,
    /// cluster -> (online, offline)
    agents: BTreeMap<String, (u64, u64)>,
    /// (cluster, state) -> hosts
    hosts: BTreeMap<(String, String), u64>,
    baremetal_running: u64,
    bmc_unreachable: u64,
    power_sync_lag_s: f64,
    /// certificate -> expiry (unix seconds)
    cert_expiry: Vec<(&'static str, f64)>,
}

fn age_s(now_ms: i64, since_ms: Option<i64>) -> f64 {
    since_ms.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
}

fn bucket_columns() -> String {
    DURATION_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, le)| {
            format!(
                ", SUM(CASE WHEN finished_at - created_at <= {} THEN 1 ELSE 0 END) AS le{i}",
                (*le * 1000.0) as i64
            )
        })
        .collect()
}

async fn operations(store: &Store, now: i64, s: &mut Snapshot) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SELECT kind, status, COUNT(*) AS n, \
            CAST(COALESCE(SUM(finished_at - created_at), 0) AS BIGINT) AS ms, \
            MIN(created_at) AS oldest, \
            CAST(COALESCE(SUM(progress_bytes), 0) AS BIGINT) AS bytes{} \
         FROM operations GROUP BY kind, status",
        bucket_columns()
    );
    // Every kind has a series (at 0) before its first operation.
    for kind in plinth_common::api::operation_kinds::ALL {
        for outcome in ["succeeded", "failed"] {
            s.ended
                .insert((kind.to_string(), outcome), Ended::default());
        }
        s.running.insert(kind.to_string(), (0, 0.0));
    }
    for row in crate::db::query(&sql).fetch_all(store.pool()).await? {
        let kind: String = row.try_get("kind")?;
        let status: String = row.try_get("status")?;
        let n = row.try_get::<i64, _>("n")?.max(0) as u64;
        if kind == plinth_common::api::operation_kinds::IMAGE_IMPORT {
            s.import_bytes += row.try_get::<i64, _>("bytes")?.max(0) as u64;
        }
        let outcome = match status.as_str() {
            "running" => {
                let oldest = row.try_get::<Option<i64>, _>("oldest")?;
                s.running.insert(kind, (n, age_s(now, oldest)));
                continue;
            }
            "succeeded" => "succeeded",
            _ => "failed",
        };
        let e = s.ended.entry((kind, outcome)).or_default();
        e.count += n;
        e.ms += row.try_get::<i64, _>("ms")?;
        for (i, le) in e.le.iter_mut().enumerate() {
            *le += row
                .try_get::<Option<i64>, _>(format!("le{i}").as_str())?
                .unwrap_or(0)
                .max(0) as u64;
        }
    }
    Ok(())
}

async fn maintenance(store: &Store, now: i64, s: &mut Snapshot) -> Result<(), sqlx::Error> {
    let row = crate::db::query(
        "SELECT COUNT(*) AS n, MIN(started_at) AS oldest FROM drains WHERE ended_at IS NULL",
    )
    .fetch_one(store.pool())
    .await?;
    s.drains_running = row.try_get::<i64, _>("n")?.max(0) as u64;
    s.drain_oldest_s = age_s(now, row.try_get("oldest")?);
    // Left behind: every instance of an ended drain that neither moved nor was released.
    let row = crate::db::query(
        "SELECT COUNT(*) AS n FROM moves m JOIN drains d ON d.operation_id = m.operation_id \
         WHERE d.ended_at IS NOT NULL AND m.status <> $1 AND m.status <> $2",
    )
    .bind("moved")
    .bind("released")
    .fetch_one(store.pool())
    .await?;
    s.left_behind = row.try_get::<i64, _>("n")?.max(0) as u64;
    let row = crate::db::query(
        "SELECT COUNT(*) AS n, MIN(started_at) AS oldest FROM moves WHERE status = $1",
    )
    .bind("migrating")
    .fetch_one(store.pool())
    .await?;
    s.migrations_running = row.try_get::<i64, _>("n")?.max(0) as u64;
    s.migration_oldest_s = age_s(now, row.try_get("oldest")?);
    s.migrations_ended = BTreeMap::from([("moved", 0), ("not_moved", 0)]);
    let rows = crate::db::query(
        "SELECT status, COUNT(*) AS n FROM moves \
         WHERE action = $1 AND ended_at IS NOT NULL GROUP BY status",
    )
    .bind("migrate")
    .fetch_all(store.pool())
    .await?;
    for row in rows {
        let status: String = row.try_get("status")?;
        let key = if status == "moved" {
            "moved"
        } else {
            "not_moved"
        };
        *s.migrations_ended.entry(key).or_default() += row.try_get::<i64, _>("n")?.max(0) as u64;
    }
    Ok(())
}

async fn hosts(store: &Store, now: i64, s: &mut Snapshot) -> Result<(), sqlx::Error> {
    let rows = crate::db::query(
        "SELECT c.id AS cluster, h.state AS state, \
            SUM(CASE WHEN h.offline_after > $1 THEN 1 ELSE 0 END) AS online, \
            COUNT(h.id) AS n \
         FROM clusters c LEFT JOIN hosts h ON h.cluster_id = c.id GROUP BY c.id, h.state",
    )
    .bind(now)
    .fetch_all(store.pool())
    .await?;
    for row in rows {
        let cluster: String = row.try_get("cluster")?;
        for state in HOST_STATES {
            s.hosts
                .entry((cluster.clone(), state.to_string()))
                .or_default();
        }
        let agents = s.agents.entry(cluster.clone()).or_default();
        let Some(state) = row.try_get::<Option<String>, _>("state")? else {
            continue;
        };
        let n = row.try_get::<i64, _>("n")?.max(0) as u64;
        let online = row.try_get::<Option<i64>, _>("online")?.unwrap_or(0).max(0) as u64;
        agents.0 += online;
        agents.1 += n.saturating_sub(online);
        *s.hosts.entry((cluster, state)).or_default() += n;
    }
    Ok(())
}

async fn baremetal(store: &Store, now: i64, s: &mut Snapshot) -> Result<(), sqlx::Error> {
    let row = crate::db::query(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN power_state = $2 THEN 1 ELSE 0 END) AS unknown, \
            MIN(COALESCE(power_checked_at, created_at)) AS oldest \
         FROM baremetal WHERE state = $1",
    )
    .bind("running")
    .bind("unknown")
    .fetch_one(store.pool())
    .await?;
    s.baremetal_running = row.try_get::<i64, _>("n")?.max(0) as u64;
    s.bmc_unreachable = row
        .try_get::<Option<i64>, _>("unknown")?
        .unwrap_or(0)
        .max(0) as u64;
    s.power_sync_lag_s = age_s(now, row.try_get("oldest")?);
    Ok(())
}

async fn certificates(st: &AppState, now: i64, s: &mut Snapshot) -> Result<(), sqlx::Error> {
    if let Ok((_, not_after)) = plinth_common::tls::cert_not_after(st.ca.cert_pem()) {
        s.cert_expiry
            .push(("ca", not_after.unix_timestamp() as f64));
    }
    let rows = crate::db::query(
        "SELECT kind, MIN(expires_at) AS soonest FROM certificates \
         WHERE revoked_at IS NULL AND expires_at > $1 GROUP BY kind",
    )
    .bind(now)
    .fetch_all(st.store.pool())
    .await?;
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let name = match kind.as_str() {
            "coordinator-server" => "coordinator",
            "agent" => "agent_soonest",
            _ => continue,
        };
        let at: Option<i64> = row.try_get("soonest")?;
        if let Some(ms) = at {
            s.cert_expiry.push((name, ms as f64 / 1000.0));
        }
    }
    Ok(())
}

impl Snapshot {
    /// Reads the region from the store now.
    pub async fn read(st: &AppState) -> Result<Snapshot, sqlx::Error> {
        let now = plinth_common::timefmt::now_ms();
        crate::metrics::store_transaction("metrics_snapshot", async {
            let mut s = Snapshot::of_store(&st.store, now).await?;
            s.migration_timeout_s = st.settings.drains.migration_timeout.as_secs_f64();
            certificates(st, now, &mut s).await?;
            Ok(s)
        })
        .await
    }

    /// What the store's rows say at `now` (certificates and settings apart).
    async fn of_store(store: &Store, now: i64) -> Result<Snapshot, sqlx::Error> {
        let mut s = Snapshot::default();
        operations(store, now, &mut s).await?;
        maintenance(store, now, &mut s).await?;
        hosts(store, now, &mut s).await?;
        baremetal(store, now, &mut s).await?;
        Ok(s)
    }
}

fn one<M: EncodeMetric>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    m: M,
) -> fmt::Result {
    // Without a label set: no `{}` after the name.
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge(v: f64) -> ConstGauge<f64> {
    ConstGauge::new(v)
}

impl Snapshot {
    fn encode_operations(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let by = |kind: &str, outcome: &str| {
            vec![("kind", kind.to_string()), ("outcome", outcome.to_string())]
        };
        family(
            enc,
            "plinth_coordinator_operations",
            "Ended operations by kind and outcome (succeeded or failed).",
            self.ended
                .iter()
                .map(|((k, o), e)| (by(k, o), ConstCounter::new(e.count)))
                .collect(),
        )?;
        let hist = self
            .ended
            .iter()
            .map(|((k, o), e)| (by(k, o), e.clone()))
            .collect();
        encode_histograms(
            enc,
            "plinth_coordinator_operation_duration_seconds",
            "Durations of ended operations by kind and outcome, start to end.",
            hist,
        )?;
        family(
            enc,
            "plinth_coordinator_operations_in_flight",
            "Operations running now by kind (drains are host_drain, migrations instance_migrate).",
            self.running
                .iter()
                .map(|(k, (n, _))| (vec![("kind", k.clone())], ConstGauge::new(*n as i64)))
                .collect(),
        )?;
        family(
            enc,
            "plinth_coordinator_operation_oldest_running_seconds",
            "Age of the oldest running operation of each kind (0 when none runs).",
            self.running
                .iter()
                .map(|(k, (_, age))| (vec![("kind", k.clone())], gauge(*age)))
                .collect(),
        )?;
        one(
            enc,
            "plinth_coordinator_image_import_bytes",
            "Bytes image imports have fetched, all imports together.",
            ConstCounter::new(self.import_bytes),
        )
    }

    fn encode_maintenance(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        one(
            enc,
            "plinth_coordinator_drains_in_flight",
            "Host drains running now.",
            ConstGauge::new(self.drains_running as i64),
        )?;
        one(
            enc,
            "plinth_coordinator_drain_oldest_seconds",
            "How long the oldest running drain (a host entering maintenance) has run; 0 when none.",
            gauge(self.drain_oldest_s),
        )?;
        one(
            enc,
            "plinth_coordinator_drain_instances_left_behind",
            "Instances that ended drains neither moved nor released, all drains together.",
            ConstCounter::new(self.left_behind),
        )?;
        one(
            enc,
            "plinth_coordinator_migrations_in_flight",
            "Live migrations running now.",
            ConstGauge::new(self.migrations_running as i64),
        )?;
        one(
            enc,
            "plinth_coordinator_migration_oldest_seconds",
            "How long the oldest running live migration has run; 0 when none.",
            gauge(self.migration_oldest_s),
        )?;
        one(
            enc,
            "plinth_coordinator_migration_timeout_seconds",
            "The configured live-migration timeout (migration_timeout).",
            gauge(self.migration_timeout_s),
        )?;
        family(
            enc,
            "plinth_coordinator_migrations",
            "Ended live migrations by outcome (moved or not_moved).",
            self.migrations_ended
                .iter()
                .map(|(o, n)| (vec![("outcome", o.to_string())], ConstCounter::new(*n)))
                .collect(),
        )
    }

    fn encode_hosts(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut agents = Vec::new();
        for (cluster, (online, offline)) in &self.agents {
            for (state, n) in [("online", online), ("offline", offline)] {
                agents.push((
                    vec![("cluster", cluster.clone()), ("state", state.to_string())],
                    ConstGauge::new(*n as i64),
                ));
            }
        }
        family(
            enc,
            "plinth_coordinator_agents",
            "Enrolled agents per cluster, online (heartbeating) or offline.",
            agents,
        )?;
        family(
            enc,
            "plinth_coordinator_hosts",
            "Hosts per cluster and state.",
            self.hosts
                .iter()
                .map(|((c, st), n)| {
                    (
                        vec![("cluster", c.clone()), ("state", st.clone())],
                        ConstGauge::new(*n as i64),
                    )
                })
                .collect(),
        )?;
        one(
            enc,
            "plinth_coordinator_baremetal_servers",
            "Bare-metal servers in the running state.",
            ConstGauge::new(self.baremetal_running as i64),
        )?;
        one(
            enc,
            "plinth_coordinator_bmc_unreachable",
            "Running bare-metal servers whose BMC did not answer the last power poll.",
            ConstGauge::new(self.bmc_unreachable as i64),
        )?;
        one(
            enc,
            "plinth_coordinator_baremetal_power_sync_lag_seconds",
            "Time since the least recently polled running server's power was read; 0 when none.",
            gauge(self.power_sync_lag_s),
        )?;
        family(
            enc,
            "plinth_coordinator_certificate_expiry_timestamp_seconds",
            "When each certificate expires (unix time): the CA, the coordinator's, the soonest agent's.",
            self.cert_expiry
                .iter()
                .map(|(c, at)| (vec![("certificate", c.to_string())], gauge(*at)))
                .collect(),
        )
    }
}

/// Histograms from the store's counts: `le[i]` operations took at most `DURATION_BUCKETS[i]`
/// (cumulative, as SQL counts them), `count` in all, `ms` in total.
fn encode_histograms(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: Vec<(Labels, Ended)>,
) -> fmt::Result {
    use prometheus_client::metrics::MetricType;
    if samples.is_empty() {
        return Ok(());
    }
    let mut metric = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, e) in samples {
        // The encoder adds the buckets up itself: give it each bucket's own count.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .zip(e.le)
            .map(|(le, upto)| {
                let upto = upto.max(below);
                let own = upto - below;
                below = upto;
                (*le, own)
            })
            .collect();
        buckets.push((f64::MAX, e.count.saturating_sub(below)));
        metric
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                e.ms as f64 / 1000.0,
                e.count,
                &buckets,
                None,
            )?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        self.encode_operations(&mut enc)?;
        self.encode_maintenance(&mut enc)?;
        self.encode_hosts(&mut enc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    const NOW: i64 = 1_000_000_000;

    async fn exec(store: &Store, sql: &str) {
        crate::db::query(sql)
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    crate::db::store_test! {
    /// A region with two hosts (one online, one entering maintenance), imports that ended
    /// both ways, a drain running with a migration in flight, and an ended drain that moved
    /// one instance and left one: the snapshot counts each, and the exposition shows it.
    async fn counts_the_rows_of_operations_drains_migrations_and_hosts(store, _dir) {
        crate::db::test_hosts(&store, 2, 8, 1 << 30)
            .await
            .expect("hosts");
        for sql in [
            &format!(
                "UPDATE hosts SET offline_after = {} WHERE id = 'host-1'",
                NOW + 9000
            ),
            "UPDATE hosts SET state = 'entering_maintenance' WHERE id = 'host-2'",
            &format!(
                "INSERT INTO operations (id, kind, target_id, status, progress_bytes, created_at, \
                    updated_at, finished_at) VALUES \
                 ('op-i1', 'image_import', 'img-1', 'succeeded', 500, 0, 2000, 2000), \
                 ('op-i2', 'image_import', 'img-2', 'failed', 20, 0, 400000, 400000), \
                 ('op-d1', 'host_drain', 'host-2', 'running', 0, {a}, {a}, NULL), \
                 ('op-d2', 'host_drain', 'host-1', 'succeeded', 0, 0, 10, 10)",
                a = NOW - 5000
            ),
            &format!(
                "INSERT INTO drains (operation_id, host_id, parallelism, started_at, ended_at) \
                 VALUES ('op-d1', 'host-2', 1, {}, NULL), ('op-d2', 'host-1', 1, 0, 10)",
                NOW - 5000
            ),
            &format!(
                "INSERT INTO moves (operation_id, instance_id, instance_name, action, status, \
                    source_host, started_at, ended_at) VALUES \
                 ('op-d2', 'inst-a', 'a', 'migrate', 'moved', 'host-1', 1, 5), \
                 ('op-d2', 'inst-b', 'b', 'migrate', 'stayed', 'host-1', 1, 6), \
                 ('op-d1', 'inst-c', 'c', 'migrate', 'migrating', 'host-2', {}, NULL)",
                NOW - 3000
            ),
        ] {
            exec(&store, sql).await;
        }
        let s = Snapshot::of_store(&store, NOW).await.expect("snapshot");
        assert_eq!((s.drains_running, s.drain_oldest_s), (1, 5.0));
        assert_eq!(s.left_behind, 1, "inst-b stayed on its drained host");
        assert_eq!((s.migrations_running, s.migration_oldest_s), (1, 3.0));
        assert_eq!(
            s.migrations_ended,
            BTreeMap::from([("moved", 1), ("not_moved", 1)])
        );
        assert_eq!(s.agents["az1"], (1, 1));
        assert_eq!(s.hosts[&("az1".into(), "entering_maintenance".into())], 1);
        assert_eq!(s.hosts[&("az1".into(), "locked".into())], 0);
        assert_eq!(s.import_bytes, 520);
        assert_eq!(s.running["host_drain"], (1, 5.0));
        assert_eq!(
            s.running["instance_migrate"],
            (0, 0.0),
            "every kind has a series"
        );

        let mut registry = Registry::default();
        registry.register_collector(Box::new(s));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "plinth_coordinator_operations_total{kind=\"image_import\",outcome=\"failed\"} 1",
            "plinth_coordinator_operation_duration_seconds_bucket{le=\"1.0\",kind=\"image_import\",outcome=\"succeeded\"} 0",
            "plinth_coordinator_operation_duration_seconds_bucket{le=\"5.0\",kind=\"image_import\",outcome=\"succeeded\"} 1",
            "plinth_coordinator_operation_duration_seconds_bucket{le=\"300.0\",kind=\"image_import\",outcome=\"failed\"} 0",
            "plinth_coordinator_operation_duration_seconds_bucket{le=\"900.0\",kind=\"image_import\",outcome=\"failed\"} 1",
            "plinth_coordinator_operation_duration_seconds_bucket{le=\"+Inf\",kind=\"image_import\",outcome=\"failed\"} 1",
            "plinth_coordinator_operation_duration_seconds_sum{kind=\"image_import\",outcome=\"failed\"} 400.0",
            "plinth_coordinator_drain_instances_left_behind_total 1",
            "plinth_coordinator_agents{cluster=\"az1\",state=\"offline\"} 1",
            "plinth_coordinator_bmc_unreachable 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
    }
}
