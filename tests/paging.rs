//! One paging scheme for every list (issue 18): `limit` + the opaque `next_cursor`, walked a
//! page at a time through the API while items are added between pages. Nothing is shown twice
//! or skipped; `total` counts every match; a bad or foreign cursor, a limit of 0 and the old
//! parameters (page, per_page, offset) are refused by name.

use plinth_e2e::Region;
use serde_json::{Value, json};

/// Reads `path` (which has a `?`) `limit=2` at a time, running `between` once after the first
/// page; answers the items in order and the last page's total.
async fn walk<F, Fut>(region: &Region, path: &str, between: F) -> anyhow::Result<(Vec<Value>, u64)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut between = Some(between);
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&limit=2&cursor={c}"),
            None => format!("{path}&limit=2"),
        };
        let (status, page) = region.get(&page_path).await?;
        anyhow::ensure!(status == 200, "{page_path}: {status} {page}");
        let got = page["items"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(got.len() <= 2, "{page_path}: {page}");
        items.extend(got);
        if let Some(between) = between.take() {
            between().await?;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok((items, page["total"].as_u64().unwrap_or_default())),
        }
    }
}

fn field<'a>(items: &'a [Value], name: &str) -> Vec<&'a str> {
    items.iter().filter_map(|i| i[name].as_str()).collect()
}

fn refused(status: u16, body: &Value, name: &str) -> Result<(), String> {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    if status == 400 && body["error"]["code"] == "invalid_field" && message.contains(name) {
        Ok(())
    } else {
        Err(format!(
            "{status} {body}: not a 400 invalid_field naming {name}"
        ))
    }
}

#[tokio::test]
async fn hosts_page_by_cluster_and_id_through_enrollments() -> anyhow::Result<()> {
    let region = Region::start().await?;
    for cluster in ["a", "b", "c"] {
        region.create_cluster(cluster).await?;
    }
    let mut agents = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        agents.push(region.start_agent(ip, "b").await?);
    }
    let mut first: Vec<String> = agents.iter().map(|a| a.host_id.clone()).collect();
    first.sort();
    // Between pages: a host in cluster a (before the cursor, in b: never shown) and one in c
    // (after it: shown once, last).
    let mut late = Vec::new();
    let (r, added) = (&region, &mut late);
    let (items, total) = walk(&region, "/v1/hosts?", || async move {
        added.push(r.start_agent("127.0.0.5", "a").await?);
        added.push(r.start_agent("127.0.0.6", "c").await?);
        Ok(())
    })
    .await?;
    let ids: Vec<String> = field(&items, "id").into_iter().map(String::from).collect();
    let want: Vec<String> = first
        .iter()
        .cloned()
        .chain([late[1].host_id.clone()])
        .collect();
    assert_eq!(ids, want, "{items:?}");
    assert_eq!(total, 5);
    assert_eq!(field(&items, "cluster_id"), ["b", "b", "b", "c"]);

    // A filter with a cursor: the page holds the matches after it, the total all of them.
    let (_, page) = region.get("/v1/hosts?cluster=b&limit=1").await?;
    let next = page["next_cursor"].as_str().unwrap_or_default().to_string();
    let (_, rest) = region
        .get(&format!("/v1/hosts?cluster=b&limit=5&cursor={next}"))
        .await?;
    assert_eq!(
        field(rest["items"].as_array().map_or(&[][..], |v| v), "id"),
        first[1..]
    );
    assert_eq!(
        (rest["total"].as_u64(), rest["next_cursor"].is_null()),
        (Some(3), true)
    );

    // A cursor of another list, an altered one and a limit of 0 are refused by name.
    let (_, tenants) = region.get("/v1/tenants?limit=1").await?;
    // One character of the cursor changed: it no longer matches its check.
    let last = if next.ends_with('0') { "1" } else { "0" };
    let altered = format!("{}{last}", &next[..next.len() - 1]);
    for (path, name) in [
        (format!("/v1/hosts?cursor={next}x"), "cursor"),
        (format!("/v1/hosts?cursor={altered}"), "cursor"),
        ("/v1/hosts?limit=0".to_string(), "limit"),
        ("/v1/hosts?limit=1001".to_string(), "limit"),
    ] {
        let (status, body) = region.get(&path).await?;
        refused(status, &body, name).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    }
    if let Some(foreign) = tenants["next_cursor"].as_str() {
        let (status, body) = region.get(&format!("/v1/hosts?cursor={foreign}")).await?;
        refused(status, &body, "cursor").map_err(anyhow::Error::msg)?;
    }
    drop((agents, late));
    Ok(())
}

#[tokio::test]
async fn former_arrays_page_too_and_old_parameters_are_refused() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let tenant = |email: &'static str| {
        let region = &region;
        async move {
            let (status, body) = region
                .post("/v1/tenants", json!({"email": email, "name": "T"}))
                .await?;
            anyhow::ensure!(status == 201, "{email}: {status} {body}");
            Ok(())
        }
    };
    for email in [
        "b@example.com",
        "d@example.com",
        "f@example.com",
        "h@example.com",
    ] {
        tenant(email).await?;
    }
    let (items, total) = walk(&region, "/v1/tenants?", || async move {
        tenant("a@example.com").await?;
        tenant("e@example.com").await
    })
    .await?;
    assert_eq!(
        field(&items, "email"),
        [
            "b@example.com",
            "d@example.com",
            "e@example.com",
            "f@example.com",
            "h@example.com"
        ]
    );
    assert_eq!(total, 6);

    // The audit log, newest first: entries written while it is read are newer than the
    // cursor, so the walk goes on with the older ones, each once.
    let (_, all) = region.get("/v1/audit?limit=1000").await?;
    let before = all["total"].as_u64().unwrap_or_default();
    assert!(before >= 6, "{all}");
    let (items, total) = walk(&region, "/v1/audit?", || tenant("z@example.com")).await?;
    assert_eq!((items.len() as u64, total), (before, before + 1));
    let (_, again) = region
        .get(&format!("/v1/audit?limit={}", before + 1))
        .await?;
    let newest_first = again["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        items[..],
        newest_first[1..],
        "the walk is the log as it was, in order"
    );

    // Every list answers a page object; a tenants cursor means nothing to the audit log.
    let (_, page) = region.get("/v1/tenants?limit=1").await?;
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_string();
    let (status, body) = region.get(&format!("/v1/audit?cursor={cursor}")).await?;
    refused(status, &body, "cursor").map_err(anyhow::Error::msg)?;
    for path in [
        "/v1/clusters",
        "/v1/segments",
        "/v1/tokens",
        "/v1/recycle-bin",
        "/v1/images",
        "/v1/instances",
        "/v1/baremetal",
        "/v1/eips",
    ] {
        let (status, page) = region.get(&format!("{path}?limit=1")).await?;
        assert_eq!(status, 200, "{path}: {page}");
        assert!(
            page["items"].is_array() && page["total"].is_u64(),
            "{path}: {page}"
        );
        let (status, body) = region.get(&format!("{path}?limit=0")).await?;
        refused(status, &body, "limit").map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let (status, body) = region.get(&format!("{path}?cursor=c1.zz")).await?;
        refused(status, &body, "cursor").map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    }
    for (path, name) in [
        ("/v1/hosts?page=2", "page"),
        ("/v1/hosts?per_page=10", "per_page"),
        ("/v1/images?page=1", "page"),
        ("/v1/images?per_page=10", "per_page"),
        ("/v1/instances?offset=10", "offset"),
        ("/v1/eips?offset=10", "offset"),
        ("/v1/baremetal?offset=10", "offset"),
        ("/v1/tenants?page=1", "page"),
        ("/v1/audit?offset=5", "offset"),
    ] {
        let (status, body) = region.get(path).await?;
        refused(status, &body, name).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    }
    Ok(())
}
