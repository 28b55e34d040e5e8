//! Benchmark: the change feed's latency and completeness. A real coordinator with one host,
//! 100 SSE subscribers (`GET /v1/events?type=host`, each on its own connection), then 1,000
//! host locks/unlocks through the API, one after another. For every event at every
//! subscriber: the time from the event's commit (its `at`) to its delivery; p50/p99/max, and
//! how many events were lost or arrived out of order. Goal: p99 ≤ 100 ms, none lost or
//! reordered.
//!
//! Run: `cargo build --release --bins && cargo bench -p plinth-e2e --bench events`, or against
//! the debug binaries: `cargo build --bins && cargo test -p plinth-e2e --bench events`. The
//! report's first line names the coordinator binary that ran. Prints a report; exits 0.

use plinth_e2e::Region;
use plinth_e2e::sse::Feed;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SUBSCRIBERS: usize = 100;
const CHANGES: usize = 1000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let agent = region.start_agent("127.0.0.2", "alpha").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    println!(
        "coordinator: {}",
        plinth_e2e::bin("plinth-coordinator").display()
    );

    let mut subscribers = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(plinth_common::tls::client_config(&region.ca_pem, None)?)
            .build()?;
        let mut feed =
            Feed::open(&http, &region.url, "?type=host", &region.admin_token, None).await?;
        subscribers.push(tokio::spawn(async move {
            let _keep = http;
            // (delivery latency ms, id, state) per event, until CHANGES arrived or 60 s of quiet.
            let mut got = Vec::with_capacity(CHANGES);
            while got.len() < CHANGES {
                match feed.next_within(Duration::from_secs(60)).await {
                    Ok(ev) => {
                        let at = ev.data["at"].as_i64().unwrap_or(0);
                        // Only the state changes count: a change of the agent's presence
                        // (online/offline) is a host event too, but not one of the locks.
                        let Some(state) = ev.data["data"]["state"].as_str() else {
                            continue;
                        };
                        got.push((now_ms() - at, ev.id.unwrap_or(-1), state.to_string()));
                    }
                    Err(_) => break,
                }
            }
            got
        }));
    }

    let started = std::time::Instant::now();
    let mut api = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let action = if i % 2 == 0 { "lock" } else { "unlock" };
        let t = std::time::Instant::now();
        let (status, body) = region
            .post(&format!("/v1/hosts/{}/{action}", agent.host_id), json!({}))
            .await?;
        anyhow::ensure!(status == 200, "{action}: {status} {body}");
        api.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let elapsed = started.elapsed();

    let mut latencies = Vec::new();
    let (mut lost, mut reordered, mut wrong_state) = (0usize, 0usize, 0usize);
    for s in subscribers {
        let got = s.await?;
        lost += CHANGES.saturating_sub(got.len());
        for w in got.windows(2) {
            if w[1].1 <= w[0].1 {
                reordered += 1;
            }
        }
        for (i, (lat, _, state)) in got.iter().enumerate() {
            let want = if i % 2 == 0 { "locked" } else { "available" };
            if state != want {
                wrong_state += 1;
            }
            latencies.push(*lat);
        }
    }
    latencies.sort();
    api.sort_by(f64::total_cmp);
    println!(
        "{CHANGES} host changes in {:.1} s ({:.0}/s); API answer p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        CHANGES as f64 / elapsed.as_secs_f64(),
        api[api.len() / 2],
        api[(api.len() - 1) * 99 / 100],
    );
    println!(
        "{SUBSCRIBERS} subscribers, {} deliveries: commit to delivery p50 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
    );
    println!("lost {lost}, reordered {reordered}, out-of-sequence states {wrong_state}");
    Ok(())
}
