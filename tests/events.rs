//! The change feed (`GET /v1/events`) against a real region: host lock/unlock in order with
//! increasing ids, resumption with `Last-Event-ID`, tenant scoping, `reload` for a client
//! older than the backlog, and creates, edits and removals as one event each.

use plinth_e2e::Region;
use plinth_e2e::instances as inst;
use plinth_e2e::sse::{Feed, SseEvent, backlog};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn state(ev: &SseEvent) -> &str {
    ev.data["data"]["state"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn host_changes_arrive_in_order_and_resume_exactly() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let a = region.start_agent("127.0.0.2", "alpha").await?;
    region.wait_agent(&a.host_id, "online").await?;
    let mut feed = Feed::open(
        &region.http,
        &region.url,
        "?type=host",
        &region.admin_token,
        None,
    )
    .await?;
    let path = |action: &str| format!("/v1/hosts/{}/{action}", a.host_id);
    for action in ["lock", "unlock"] {
        let (status, body) = region.post(&path(action), json!({})).await?;
        anyhow::ensure!(status == 200, "{action}: {body}");
    }
    let locked = feed.next_within(WAIT).await?;
    let unlocked = feed.next_within(WAIT).await?;
    assert_eq!((locked.event.as_str(), state(&locked)), ("host", "locked"));
    assert_eq!(
        (unlocked.event.as_str(), state(&unlocked)),
        ("host", "available")
    );
    assert_eq!(locked.data["resource_id"], a.host_id.as_str());
    let (first, second) = (locked.id.unwrap_or(0), unlocked.id.unwrap_or(0));
    assert!(first > 0 && second > first, "ids {first}, {second}");
    assert_eq!(locked.data["id"], json!(first));

    // Resuming after the lock gets exactly the unlock.
    let missed = Feed::open(
        &region.http,
        &region.url,
        "?type=host&follow=false",
        &region.admin_token,
        Some(first),
    )
    .await?
    .collect()
    .await?;
    assert_eq!(missed, vec![unlocked.clone()]);

    // The CLI prints the backlog, one line per change.
    let (ok, stdout, stderr) = region.cli(&["events", "--type", "host"])?;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("state=locked") && stdout.contains("state=available"),
        "{stdout}"
    );
    assert!(stdout.contains(&a.host_id), "{stdout}");

    // A tenant sees no host events, even asking for them.
    let tenant = inst::tenant(&region, "t@example.com").await?.token;
    let theirs = backlog(&region, &tenant).await?;
    assert!(theirs.iter().all(|e| e.event != "host"), "{theirs:?}");

    // An unknown type is a 400 naming the parameter.
    let (status, err) = region.get("/v1/events?type=host,bogus").await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_field")),
        "{err}"
    );

    // Older than the backlog: one reload, then the feed carries on.
    let store = plinth_coordinator::db::Store::open(&region.data_dir().join("plinth.db")).await?;
    store.prune_events(1, i64::MAX).await?;
    let mut stale = Feed::open(
        &region.http,
        &region.url,
        "?type=host",
        &region.admin_token,
        Some(first - 1),
    )
    .await?;
    let reload = stale.next_within(WAIT).await?;
    assert_eq!(reload.event, "reload");
    let (status, _) = region.post(&path("lock"), json!({})).await?;
    assert_eq!(status, 200);
    let next = stale.next_within(WAIT).await?;
    assert_eq!((next.event.as_str(), state(&next)), ("host", "locked"));
    assert!(next.id > reload.id);
    Ok(())
}

/// A tenant and a token for it: (tenant id, token secret).
/// A custom image of `tenant` with its content uploaded; returns its id.
async fn uploaded_image(region: &Region, tenant: &str, disk: &[u8]) -> anyhow::Result<String> {
    let body = json!({"name": format!("img-{tenant}"), "tenant_id": tenant, "os_type": "linux",
        "architecture": "x86_64", "platform": "centos", "version": "7.9", "target_size_gb": 20});
    let (status, image) = region.post("/v1/images", body).await?;
    anyhow::ensure!(status == 201, "{image}");
    let id = image["id"].as_str().unwrap_or_default().to_string();
    let resp = region
        .http
        .put(format!("{}/v1/images/{id}/content", region.url))
        .bearer_auth(&region.admin_token)
        .body(disk.to_vec())
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "upload: {}", resp.status());
    Ok(id)
}

#[tokio::test]
async fn tenants_see_their_own_events_only() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let inst::Tenant {
        id: a,
        token: token_a,
    } = inst::tenant(&region, "a@example.com").await?;
    let inst::Tenant {
        id: b,
        token: token_b,
    } = inst::tenant(&region, "b@example.com").await?;
    let path = region.dir.path().join("disk.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("1G")
        .status()?;
    anyhow::ensure!(ok.success(), "qemu-img create failed");
    let disk = std::fs::read(&path)?;
    let mut live_a = Feed::open(&region.http, &region.url, "?type=image", &token_a, None).await?;
    let image_a = uploaded_image(&region, &a, &disk).await?;
    let image_b = uploaded_image(&region, &b, &disk).await?;
    let first = live_a.next_within(WAIT).await?;
    assert_eq!(first.event, "image");
    assert_eq!(first.data["resource_id"], image_a.as_str());
    assert_eq!(first.data["tenant_id"], a.as_str());

    let of = |events: &[SseEvent], id: &str| {
        events
            .iter()
            .filter(|e| e.data["resource_id"] == id)
            .count()
    };
    let seen_a = backlog(&region, &token_a).await?;
    let seen_b = backlog(&region, &token_b).await?;
    let admin = backlog(&region, &region.admin_token).await?;
    assert!(
        of(&seen_a, &image_a) > 0 && of(&seen_a, &image_b) == 0,
        "{seen_a:?}"
    );
    assert!(
        of(&seen_b, &image_b) > 0 && of(&seen_b, &image_a) == 0,
        "{seen_b:?}"
    );
    assert!(of(&admin, &image_a) > 0 && of(&admin, &image_b) > 0);
    for seen in [&seen_a, &seen_b] {
        assert!(
            seen.iter().all(|e| e.data["tenant_id"] != Value::Null),
            "{seen:?}"
        );
    }
    let ids: Vec<i64> = admin.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    Ok(())
}

/// The first event on `feed` that `wanted` accepts.
async fn until(feed: &mut Feed, wanted: impl Fn(&SseEvent) -> bool) -> anyhow::Result<SseEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = feed.next_within(left).await?;
        if wanted(&ev) {
            return Ok(ev);
        }
    }
}

/// A host's enrollment and removal, and an image's create and edit, through the API: each is
/// one event in the feed, with what changed.
#[tokio::test]
async fn creates_edits_and_removals_are_one_event_each() -> anyhow::Result<()> {
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    let tenant = inst::tenant(&region, "c@example.com").await?.id;
    let mut feed = Feed::open(&region.http, &region.url, "", &region.admin_token, None).await?;
    let mut agent = region.start_agent("127.0.0.3", "alpha").await?;
    let host = agent.host_id.clone();
    let of = |id: &str, marker: &'static str| {
        let id = id.to_string();
        move |e: &SseEvent| e.data["resource_id"] == id.as_str() && e.data["data"][marker] == true
    };
    let enrolled = until(&mut feed, of(&host, "created")).await?;
    assert_eq!(
        (enrolled.event.as_str(), state(&enrolled)),
        ("host", "available")
    );
    assert_eq!(enrolled.data["data"]["cluster_id"], "alpha");

    let body = json!({"name": "feed-img", "tenant_id": tenant, "os_type": "linux",
        "architecture": "x86_64", "platform": "centos", "version": "7.9", "target_size_gb": 20});
    let (status, image) = region.post("/v1/images", body).await?;
    anyhow::ensure!(status == 201, "{image}");
    let image = image["id"].as_str().unwrap_or_default().to_string();
    let created = until(&mut feed, of(&image, "created")).await?;
    assert_eq!(created.event, "image");
    assert_eq!(created.data["tenant_id"], tenant.as_str());
    let path = format!("/v1/images/{image}");
    let (status, body) = region
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&region.admin_token),
            Some(json!({"name": "renamed"})),
        )
        .await?;
    anyhow::ensure!(status == 200, "{body}");
    let image_id = image.clone();
    let edited = until(&mut feed, move |e| {
        e.data["resource_id"] == image_id.as_str() && e.data["data"]["name"] == "renamed"
    })
    .await?;
    assert_eq!(edited.data["data"], json!({"name": "renamed"}));

    agent.stop();
    let (status, body) = region
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/hosts/{host}"),
            Some(&region.admin_token),
            None,
        )
        .await?;
    anyhow::ensure!((200..300).contains(&status), "{body}");
    let removed = until(&mut feed, of(&host, "deleted")).await?;
    assert_eq!(removed.event, "host");

    // Exactly one of each in the whole backlog.
    let all = backlog(&region, &region.admin_token).await?;
    let count = |id: &str, marker: &str| {
        all.iter()
            .filter(|e| e.data["resource_id"] == id && e.data["data"][marker] == true)
            .count()
    };
    assert_eq!(count(&host, "created"), 1, "{all:?}");
    assert_eq!(count(&host, "deleted"), 1, "{all:?}");
    assert_eq!(count(&image, "created"), 1, "{all:?}");
    Ok(())
}

/// An instance's life in the feed of its tenant: created, its states, and its final delete as
/// one `{"deleted": true}` event, the last about it.
#[tokio::test]
async fn an_instances_final_delete_is_one_event() -> anyhow::Result<()> {
    use plinth_e2e::instances as inst;
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.4", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let tenant = inst::tenant(&region, "d@example.com").await?;
    let image = inst::qcow2_image(&region, &tenant.id, "blank", "64M").await?;
    let image = image["id"].as_str().unwrap_or_default().to_string();
    let mut feed = Feed::open(
        &region.http,
        &region.url,
        "?type=instance",
        &tenant.token,
        None,
    )
    .await?;
    let (status, created) = inst::create(
        &region,
        &tenant.token,
        "gone-1",
        &image,
        128 << 20,
        json!({}),
    )
    .await?;
    anyhow::ensure!(status == 202, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_string();
    inst::expect_state(&region, &id, "running", Duration::from_secs(60)).await?;
    inst::delete(&region, &id, Duration::from_secs(60)).await?;
    let wanted = id.clone();
    let deleted = until(&mut feed, move |e| {
        e.data["resource_id"] == wanted.as_str() && e.data["data"]["deleted"] == true
    })
    .await?;
    assert_eq!(deleted.data["tenant_id"], tenant.id.as_str(), "{deleted:?}");

    let all = Feed::open(
        &region.http,
        &region.url,
        "?type=instance&backlog=true&follow=false",
        &tenant.token,
        None,
    )
    .await?
    .collect()
    .await?;
    let about: Vec<&SseEvent> = all
        .iter()
        .filter(|e| e.data["resource_id"] == id.as_str())
        .collect();
    assert_eq!(
        about.first().map(|e| &e.data["data"]["created"]),
        Some(&json!(true))
    );
    let deletes = about
        .iter()
        .filter(|e| e.data["data"]["deleted"] == true)
        .count();
    assert_eq!(deletes, 1, "{about:?}");
    assert_eq!(
        about.last().map(|e| e.id),
        Some(deleted.id),
        "the delete is the last"
    );
    Ok(())
}
