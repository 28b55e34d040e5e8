//! Several coordinators of one region on a real PostgreSQL (issue 20): `init --ha` and `join`
//! make them; one holds the job lease and runs the region's jobs, every one serves the API and
//! writes jobs for the holder; a holder killed mid-import has its import finished by another,
//! once; a holder paused past its lease stands down when it wakes; a stopped one hands over at
//! once; agents outlive the coordinator they report to, and every coordinator's host list and
//! change feed carry every coordinator's writes; with a shared image directory, an image one
//! coordinator imported is served by any; creates through two at once never over-commit.
//! tests/ha_drain.rs has the drain. Addresses: 127.0.0.141-149, 171-177, 181-183, 191-196.

use plinth_e2e::ha::{TAKEOVER_WITHIN, run, shared_images, start, start_with};
use plinth_e2e::{bin, servers, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn a_killed_holder_s_import_is_finished_by_another_once() -> anyhow::Result<()> {
    let mut ha = start(141, 3).await?;
    let all = [0, 1, 2];
    let holder = ha.holder(&all).await?;
    let api = (holder + 1) % 3;

    // A tenant and an import written through a coordinator that does not run jobs: the
    // holder hears of it and runs it.
    let tenant = ha.tenant(api).await?;
    let files = ha.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &ha.dir.path().join("http.log"))?;
    // About 6 MiB trickled: seconds to import, long enough to kill the holder midway.
    let sha = plinth_e2e::incompressible_qcow2(&files, "slow", 6)?;
    let url = format!("http://127.0.0.1:{}/slow/slow.qcow2", http.port);
    let image = ha.import(api, &tenant, "failover", &url, &sha).await?;
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let op = image["operation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for(
        "the holder's import to make progress",
        Duration::from_secs(30),
        || async {
            let (_, o) = ha
                .call(
                    api,
                    reqwest::Method::GET,
                    &format!("/v1/operations/{op}"),
                    None,
                )
                .await?;
            Ok((o["progress_bytes"].as_u64().unwrap_or(0) > 0).then_some(()))
        },
    )
    .await?;
    let started = |log: &str| {
        log.lines()
            .filter(|l| l.contains("Import started.") && l.contains(id.as_str()))
            .count()
    };
    assert_eq!(started(&ha.log(holder)), 1, "{}", ha.log(holder));
    assert_eq!(started(&ha.log(api)), 0, "the API coordinator ran nothing");

    // The holder dies, not to come back: another takes the lease and restarts the import.
    ha.members[holder].daemon.kill();
    let alive: Vec<usize> = all.iter().copied().filter(|&i| i != holder).collect();
    let next = ha.holder(&alive).await?;
    let image = wait_for(
        &format!("image {id} to settle"),
        Duration::from_secs(90),
        || async {
            let (_, image) = ha
                .call(api, reqwest::Method::GET, &format!("/v1/images/{id}"), None)
                .await?;
            Ok((image["status"] != "importing").then_some(image))
        },
    )
    .await
    .map_err(|e| e.context(ha.log(next)))?;
    assert_eq!(image["status"], "available", "{image}");
    assert_eq!(image["sha256"], sha.as_str());
    let (_, o) = ha
        .call(
            next,
            reqwest::Method::GET,
            &format!("/v1/operations/{op}"),
            None,
        )
        .await?;
    assert_eq!(o["status"], "succeeded", "{o}");
    let logs: Vec<String> = (0..3).map(|i| ha.log(i)).collect();
    let count = |text: &str| {
        logs.iter()
            .flat_map(|l| l.lines())
            .filter(|l| l.contains(text) && l.contains(id.as_str()))
            .count()
    };
    assert_eq!(count("Import started."), 2, "started, then restarted once");
    assert_eq!(started(&logs[next]), 1, "{}", logs[next]);
    assert_eq!(count("Image imported."), 1, "imported once");
    let other = alive.iter().copied().find(|&i| i != next).unwrap_or(next);
    assert_eq!(started(&logs[other]), 0, "{}", logs[other]);
    // One blob, in the new holder's store, and nothing half-written beside it.
    let files = |coordinator: usize, sub: &str| -> Vec<String> {
        let dir = ha.members[coordinator].data.join("images").join(sub);
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(files(next, "blobs").len(), 1, "{:?}", files(next, "blobs"));
    assert_eq!(files(next, "staging"), Vec::<String>::new());
    assert_eq!(files(other, "blobs"), Vec::<String>::new());
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}

#[tokio::test]
async fn a_paused_holder_stands_down_and_a_stopped_one_hands_over() -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut ha = start(146, 2).await?;
    let holder = ha.holder(&[0, 1]).await?;
    let other = 1 - holder;
    let pid = Pid::from_raw(ha.members[holder].daemon.pid().unwrap_or(0) as i32);

    // Paused past its lease: the other takes over while it sleeps.
    kill(pid, Signal::SIGSTOP)?;
    let taken = wait_for("the other to take the lease", TAKEOVER_WITHIN, || async {
        Ok((ha.holds(other).await == Some(true)).then_some(()))
    })
    .await;
    kill(pid, Signal::SIGCONT)?;
    taken?;
    // Awake, it finds its term over and stops its jobs itself.
    wait_for(
        "the paused holder to stand down",
        TAKEOVER_WITHIN,
        || async { Ok((ha.holds(holder).await == Some(false)).then_some(())) },
    )
    .await?;
    // The gauge drops first; the line comes once its jobs have stopped (a third of the TTL).
    wait_for(
        "the paused holder's jobs to stop",
        TAKEOVER_WITHIN,
        || async {
            Ok(ha
                .log(holder)
                .contains("Stopped running the region's jobs.")
                .then_some(()))
        },
    )
    .await
    .map_err(|e| e.context(ha.log(holder)))?;
    assert_eq!(ha.holder(&[0, 1]).await?, other);
    let name = ha.members[holder].name.clone();
    let (status, _) = ha
        .call(holder, reqwest::Method::GET, "/v1/hosts", None)
        .await?;
    assert_eq!(status, 200, "{name} still serves the API");

    // A graceful stop gives the lease up at once: the paused one takes it without waiting
    // for it to expire.
    let status = ha.members[other]
        .daemon
        .terminate(Duration::from_secs(20))?;
    assert!(status.success(), "exit status {status}");
    assert!(
        ha.log(other).contains("Gave the job lease up."),
        "{}",
        ha.log(other)
    );
    assert_eq!(ha.holder(&[holder]).await?, holder);
    ha.members[holder].daemon.stop();
    Ok(())
}

/// Agents report through a list of every coordinator: the one they use is killed, and they
/// go on through another, so no host goes offline. A lock made through one coordinator is in
/// the others' host lists (filtered by state: their in-memory index) and change feeds.
#[tokio::test]
async fn agents_outlive_their_coordinator_and_every_coordinator_sees_every_write()
-> anyhow::Result<()> {
    let mut ha = start(171, 3).await?;
    ha.cluster(0, "az1").await?;
    let urls: Vec<String> = ha.members.iter().map(|m| m.url.clone()).collect();
    let mut agents = Vec::new();
    for ip in ["127.0.0.176", "127.0.0.177"] {
        let args = vec!["--coordinator-urls".to_string(), urls.join(",")];
        agents.push(ha.agent_with(0, ip, "az1", args).await?);
    }
    let ids: Vec<String> = agents.iter().map(|a| a.host_id.clone()).collect();
    for at in 0..3 {
        for id in &ids {
            wait_for(
                &format!("{id} online at c{}", at + 1),
                Duration::from_secs(30),
                || async {
                    let (_, host) = ha
                        .call(at, reqwest::Method::GET, &format!("/v1/hosts/{id}"), None)
                        .await?;
                    Ok((host["agent"] == "online").then_some(()))
                },
            )
            .await?;
        }
    }

    // Locked through c1: in c2's and c3's lists of locked hosts, and in their feeds.
    let mut feeds = Vec::new();
    for at in [1, 2] {
        let feed = plinth_e2e::sse::Feed::open(
            &ha.http,
            &ha.members[at].url,
            "?type=host",
            &ha.admin_token,
            None,
        )
        .await?;
        feeds.push(feed);
    }
    let locked = &ids[0];
    let asked = std::time::Instant::now();
    let (status, body) = ha
        .call(
            0,
            reqwest::Method::POST,
            &format!("/v1/hosts/{locked}/lock"),
            Some(json!({})),
        )
        .await?;
    anyhow::ensure!(status == 200, "lock: {status} {body}");
    for at in [1, 2] {
        wait_for(
            &format!("the lock in c{}'s list", at + 1),
            Duration::from_secs(10),
            || async {
                let (_, list) = ha
                    .call(at, reqwest::Method::GET, "/v1/hosts?state=locked", None)
                    .await?;
                let listed: Vec<&str> = list["items"]
                    .as_array()
                    .map(|items| items.iter().filter_map(|h| h["id"].as_str()).collect())
                    .unwrap_or_default();
                Ok((listed == [locked.as_str()]).then_some(()))
            },
        )
        .await?;
        println!(
            "c{} lists the lock {} ms after it was asked of c1",
            at + 1,
            asked.elapsed().as_millis()
        );
    }
    for (feed, at) in feeds.iter_mut().zip([2, 3]) {
        let event = loop {
            let event = feed.next_within(Duration::from_secs(10)).await?;
            if event.data["data"]["state"] == "locked" {
                break event;
            }
        };
        assert_eq!(event.data["resource_id"], locked.as_str(), "c{at}'s feed");
    }

    // Every coordinator lists the three, alive, one of them running the jobs.
    let runner = ha.holder(&[0, 1, 2]).await?;
    let (status, list) = ha
        .call(2, reqwest::Method::GET, "/v1/coordinators", None)
        .await?;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["c1", "c2", "c3"], "{list}");
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|c| c["alive"] == true
                && c["runs_jobs"] == (c["name"] == ha.members[runner].name.as_str()))),
        "{list}"
    );
    assert_eq!(
        list["job_lease"]["holder"],
        ha.members[runner].name.as_str()
    );
    let cli = run(Command::new(bin("plinth"))
        .arg("coordinators")
        .env("PLINTH_URL", &ha.members[1].url)
        .env("PLINTH_TOKEN", &ha.admin_token)
        .env("PLINTH_CA", ha.members[0].data.join("ca.pem"))
        .env("HOME", ha.dir.path()))?;
    assert!(
        cli.contains("runs them") && cli.contains("job lease: term"),
        "{cli}"
    );

    // The coordinator both agents report to (the first of their list) is killed: they move
    // to the next, and no host goes offline.
    ha.members[0].daemon.kill();
    // Watched, every 100 ms, for 6 s: three times the agents' offline window.
    let watch = std::time::Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while watch.elapsed() < Duration::from_secs(6) {
        every.tick().await;
        for id in &ids {
            let (status, host) = ha
                .call(1, reqwest::Method::GET, &format!("/v1/hosts/{id}"), None)
                .await?;
            assert_eq!(status, 200, "{host}");
            assert_eq!(host["agent"], "online", "{id} after c1 died: {host}");
        }
    }
    for agent in &agents {
        let log = agent.log_text();
        assert!(
            log.contains("Reporting to this coordinator now."),
            "{}: {log}",
            agent.host_id
        );
    }
    let (_, audit) = ha
        .call(1, reqwest::Method::GET, "/v1/audit?limit=1000", None)
        .await?;
    let offline: Vec<&Value> = audit["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["action"] == "agent offline")
                .collect()
        })
        .unwrap_or_default();
    assert!(offline.is_empty(), "{offline:?}");
    let c1_dead = wait_for("c1 listed as dead", TAKEOVER_WITHIN, || async {
        let (_, list) = ha
            .call(1, reqwest::Method::GET, "/v1/coordinators", None)
            .await?;
        let dead = list["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|c| c["name"] == "c1" && c["alive"] == false)
        });
        Ok(dead.then_some(list))
    })
    .await?;
    assert_ne!(c1_dead["job_lease"]["holder"], "c1", "{c1_dead}");

    // And the survivors still see each other's writes.
    let (status, body) = ha
        .call(
            2,
            reqwest::Method::POST,
            &format!("/v1/hosts/{locked}/unlock"),
            Some(json!({})),
        )
        .await?;
    anyhow::ensure!(status == 200, "unlock: {status} {body}");
    wait_for(
        "the unlock in c2's list",
        Duration::from_secs(10),
        || async {
            let (_, list) = ha
                .call(1, reqwest::Method::GET, "/v1/hosts?state=available", None)
                .await?;
            Ok((list["total"] == 2).then_some(()))
        },
    )
    .await?;
    for agent in &mut agents {
        agent.stop();
    }
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}

/// Coordinators sharing one image directory (`--images-dir`, as an NFS mount would be): an
/// image imported by the holder is served by any coordinator through a link another made,
/// and its one blob is in the shared directory, none in the data directories.
#[tokio::test]
async fn with_a_shared_image_directory_any_coordinator_serves_any_image() -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    let shared = |dir: &Path| shared_images(dir, &[]);
    let mut ha = start_with(181, 2, shared).await?;
    let holder = ha.holder(&[0, 1]).await?;
    let api = 1 - holder;
    let tenant = ha.tenant(api).await?;
    let files = ha.dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = servers::http(&files, &ha.dir.path().join("http.log"))?;
    let sha = plinth_e2e::incompressible_qcow2(&files, "small", 1)?;
    let url = format!("http://127.0.0.1:{}/files/small.qcow2", http.port);
    let image = ha.import(api, &tenant, "shared", &url, &sha).await?;
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let image = wait_for("the import", TAKEOVER_WITHIN, || async {
        let (_, v) = ha
            .call(api, reqwest::Method::GET, &format!("/v1/images/{id}"), None)
            .await?;
        Ok((v["status"] != "importing" && v["status"] != "pending").then_some(v))
    })
    .await
    .map_err(|e| e.context(ha.log(holder)))?;
    assert_eq!(image["status"], "available", "{image}");

    // A link made by the coordinator that did not import, fetched from each.
    let (status, link) = ha
        .call(
            api,
            reqwest::Method::POST,
            &format!("/v1/images/{id}/download-link"),
            Some(json!({})),
        )
        .await?;
    anyhow::ensure!(status == 200 || status == 201, "link: {status} {link}");
    let url = reqwest::Url::parse(link["url"].as_str().unwrap_or_default())?;
    let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    for at in [holder, api] {
        let resp = ha
            .http
            .get(format!("{}{path}", ha.members[at].url))
            .send()
            .await?;
        assert_eq!(resp.status(), 200, "download from c{}", at + 1);
        let body = resp.bytes().await?;
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            sha,
            "c{}'s bytes",
            at + 1
        );
    }
    let count = |dir: PathBuf| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let images = ha.dir.path().join("shared-images");
    assert_eq!(count(images.join("blobs")), 1);
    assert_eq!(count(images.join("staging")), 0);
    for m in &ha.members {
        assert_eq!(count(m.data.join("images").join("blobs")), 0, "{}", m.name);
    }
    drop(http);
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}

/// Creates sent at once through two coordinators, more than the hosts hold: the hosts are
/// filled exactly to their memory and never past it, and each host's claims add up to the
/// instances placed on it.
#[tokio::test]
async fn concurrent_creates_through_two_coordinators_never_over_commit() -> anyhow::Result<()> {
    const MEMORY: u64 = 512 << 20;
    let shared = |dir: &Path| shared_images(dir, &[]);
    let mut ha = start_with(191, 2, shared).await?;
    ha.cluster(0, "az1").await?;
    let mut agents = Vec::new();
    for ip in ["127.0.0.195", "127.0.0.196"] {
        agents.push(ha.agent(0, ip, "az1").await?);
    }
    let tenant = ha.tenant(0).await?;
    let image = ha.blank_image(0, &tenant["id"]).await?;
    let mut hosts = Vec::new();
    for agent in &agents {
        let host = wait_for("the host online", Duration::from_secs(30), || async {
            let (_, host) = ha
                .call(
                    1,
                    reqwest::Method::GET,
                    &format!("/v1/hosts/{}", agent.host_id),
                    None,
                )
                .await?;
            Ok((host["agent"] == "online").then_some(host))
        })
        .await?;
        hosts.push(host);
    }
    let room: u64 = hosts
        .iter()
        .map(|h| h["total_memory_bytes"].as_u64().unwrap_or(0) / MEMORY)
        .sum();
    anyhow::ensure!(room > 0, "hosts without memory: {hosts:?}");

    // Half again as many creates as fit, alternating between the two coordinators, at once.
    let asked = room * 3 / 2;
    let creates = (0..asked).map(|n| {
        let body = json!({"name": format!("vm-{n}"), "image_id": image, "vcpus": 1,
            "memory_bytes": MEMORY, "admin_password": "Passw0rd!x", "tenant_id": tenant["id"]});
        ha.call(
            (n % 2) as usize,
            reqwest::Method::POST,
            "/v1/instances",
            Some(body),
        )
    });
    let answers = futures_util::future::join_all(creates).await;
    let mut accepted = Vec::new();
    for answer in answers {
        let (status, body) = answer?;
        match status {
            202 => accepted.push(body["id"].as_str().unwrap_or_default().to_string()),
            s if (400..600).contains(&s) && body["error"]["code"].is_string() => {}
            s => anyhow::bail!("create: {s} {body}"),
        }
    }
    assert_eq!(accepted.len() as u64, room, "exactly what fits is placed");
    for id in &accepted {
        let inst = wait_for("the instance to settle", TAKEOVER_WITHIN, || async {
            let (_, v) = ha
                .call(
                    1,
                    reqwest::Method::GET,
                    &format!("/v1/instances/{id}"),
                    None,
                )
                .await?;
            Ok((v["state"] == "running" || v["state"] == "error").then_some(v))
        })
        .await?;
        assert_eq!(inst["state"], "running", "{inst}");
    }
    let (_, list) = ha
        .call(0, reqwest::Method::GET, "/v1/instances?limit=500", None)
        .await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for agent in &agents {
        let (_, host) = ha
            .call(
                0,
                reqwest::Method::GET,
                &format!("/v1/hosts/{}", agent.host_id),
                None,
            )
            .await?;
        let placed: u64 = items
            .iter()
            .filter(|i| i["host_id"] == agent.host_id.as_str())
            .map(|i| i["memory_bytes"].as_u64().unwrap_or(0))
            .sum();
        let total = host["total_memory_bytes"].as_u64().unwrap_or(0);
        assert!(placed <= total, "{placed} placed on {total}: {host}");
        assert_eq!(host["allocated_memory_bytes"], json!(placed), "{host}");
    }
    for agent in &mut agents {
        agent.stop();
    }
    for m in &mut ha.members {
        m.daemon.stop();
    }
    Ok(())
}
