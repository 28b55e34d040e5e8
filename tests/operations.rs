//! Operations end to end: `GET /v1/operations` and `GET /v1/operations/{id}` against a real
//! coordinator and agent. Bare-metal preparations of two tenants and an admin's drain make
//! the operations; the list filters by kind, status, resource and tenant, pages by cursor
//! (each operation once, in order), refuses bad filters by name, and a tenant sees only its
//! own — never another tenant's or the admin's, by list or by id.

use plinth_e2e::Region;
use plinth_e2e::baremetal::{SECRET, add_body, operation_ended};
use plinth_e2e::instances::tenant;
use reqwest::Method;
use serde_json::{Value, json};

async fn get(r: &Region, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
    r.call(Method::GET, path, Some(token), None).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every page of `path` (which has its filters and `limit`), following `next_cursor`.
async fn all_pages(r: &Region, path: &str, token: &str) -> anyhow::Result<(Vec<String>, usize)> {
    let (mut seen, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (status, page) = get(r, &url, token).await?;
        anyhow::ensure!(status == 200, "{url}: {status} {page}");
        seen.extend(ids(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return Ok((seen, pages)),
        }
    }
}

#[tokio::test]
async fn lists_filter_page_and_keep_each_tenant_to_its_own() -> anyhow::Result<()> {
    let r = Region::start().await?;
    r.create_cluster("az1").await?;
    let agent = r.start_agent("127.0.92.1", "az1").await?;
    r.wait_agent(&agent.host_id, "online").await?;
    let a = tenant(&r, "a@example.com").await?;
    let b = tenant(&r, "b@example.com").await?;

    // Three preparations of tenant A (added by A itself), one of B (added by the admin for
    // B). The BMCs do not answer: each preparation ends failed, which is as good an
    // operation as any.
    let mut servers = Vec::new();
    for (i, token, email) in [
        (1, &a.token, None),
        (2, &a.token, None),
        (3, &a.token, None),
        (4, &r.admin_token, Some("b@example.com")),
    ] {
        let body = add_body(
            &format!("n{i}"),
            &format!("127.0.92.{}", 100 + i),
            SECRET,
            email,
        );
        let (status, v) = r
            .call(Method::POST, "/v1/baremetal", Some(token), Some(body))
            .await?;
        anyhow::ensure!(status == 202, "add: {status} {v}");
        servers.push((
            v["id"].as_str().unwrap_or_default().to_string(),
            v["operation_id"].as_str().unwrap_or_default().to_string(),
        ));
    }
    // The admin's own: a drain of the empty host.
    for action in ["lock", "maintenance/enter"] {
        let path = format!("/v1/hosts/{}/{action}", agent.host_id);
        let (status, v) = r.post(&path, json!({})).await?;
        anyhow::ensure!(status == 200 || status == 202, "{action}: {status} {v}");
    }
    let (_, drains) = r
        .get(&format!(
            "/v1/operations?kind=host_drain&resource={}",
            agent.host_id
        ))
        .await?;
    assert_eq!(drains["total"], 1, "{drains}");
    let drain = drains["items"][0].clone();
    assert_eq!(
        drain["owner_tenant_id"],
        Value::Null,
        "an admin's own: {drain}"
    );
    let drain_id = drain["id"].as_str().unwrap_or_default().to_string();
    let ended = operation_ended(&r, &drain_id, None).await?;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    let steps = ended["steps"].as_array().cloned().unwrap_or_default();
    assert!(
        steps.last().and_then(|s| s["message"].as_str())
            == Some("drain ended: every instance left the host"),
        "{ended}"
    );

    // The admin sees all five, newest first; the filters narrow them.
    let (status, all) = r.get("/v1/operations").await?;
    assert_eq!((status, all["total"].as_u64()), (200, Some(5)), "{all}");
    assert_eq!(ids(&all)[0], drain_id, "newest first: {all}");
    assert!(
        all["items"][0].get("steps").is_none(),
        "lists carry no steps: {all}"
    );
    let (server_1, op_1) = servers[0].clone();
    let cases = [
        ("kind", "kind=baremetal_prepare".to_string(), 4),
        ("tenant", format!("tenant={}", a.id), 3),
        (
            "tenant and kind",
            format!("tenant={}&kind=host_drain", a.id),
            0,
        ),
        ("resource", format!("resource={server_1}"), 1),
        ("status", "status=succeeded".to_string(), 1),
    ];
    for (label, query, want) in cases {
        let (status, page) = r.get(&format!("/v1/operations?{query}")).await?;
        assert_eq!(
            (status, page["total"].as_u64()),
            (200, Some(want)),
            "{label}: {page}"
        );
        assert_eq!(ids(&page).len() as u64, want, "{label}: {page}");
    }
    let (_, by_resource) = r
        .get(&format!("/v1/operations?resource={server_1}"))
        .await?;
    assert_eq!(ids(&by_resource), std::slice::from_ref(&op_1));

    // Pages of two: each operation once, in the order of the whole list.
    let (paged, pages) = all_pages(&r, "/v1/operations?limit=2", &r.admin_token).await?;
    assert_eq!((paged, pages), (ids(&all), 3));

    // Bad filters are refused naming the field.
    for (query, field) in [
        ("kind=image_explode", "kind"),
        ("status=sleeping", "status"),
        ("tenant=someone", "tenant"),
        ("resource=a%2Fb", "resource"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (status, v) = r.get(&format!("/v1/operations?{query}")).await?;
        assert_eq!(status, 400, "{query}: {v}");
        let said = v["error"]["message"].as_str().unwrap_or_default();
        assert!(said.contains(field), "{query}: {v}");
    }

    // Tenant A: its three only, however it asks; another's, or the admin's, is not found.
    let (status, mine) = get(&r, "/v1/operations", &a.token).await?;
    assert_eq!((status, mine["total"].as_u64()), (200, Some(3)), "{mine}");
    let owners: Vec<&str> = mine["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|o| o["owner_tenant_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(owners, [a.id.as_str(); 3], "{mine}");
    let (paged, pages) = all_pages(&r, "/v1/operations?limit=2", &a.token).await?;
    assert_eq!((paged, pages), (ids(&mine), 2));
    let (status, none) = get(&r, "/v1/operations?kind=host_drain", &a.token).await?;
    assert_eq!((status, none["total"].as_u64()), (200, Some(0)), "{none}");
    let (status, v) = get(&r, &format!("/v1/operations?tenant={}", b.id), &a.token).await?;
    assert_eq!(status, 403, "{v}");
    let b_op = servers[3].1.clone();
    for other in [&b_op, &drain_id] {
        let (status, v) = get(&r, &format!("/v1/operations/{other}"), &a.token).await?;
        assert_eq!(status, 404, "{other}: {v}");
    }
    let (status, own) = get(&r, &format!("/v1/operations/{op_1}"), &a.token).await?;
    assert_eq!(
        (status, own["kind"].as_str()),
        (200, Some("baremetal_prepare")),
        "{own}"
    );
    assert!(
        own["steps"].as_array().is_some_and(|s| !s.is_empty()),
        "{own}"
    );
    // Tenant B sees its one.
    let (_, theirs) = get(&r, "/v1/operations", &b.token).await?;
    assert_eq!(ids(&theirs), std::slice::from_ref(&b_op), "{theirs}");

    // The CLI lists with the same filters and shows one with its steps.
    let (ok, text, err) = r.cli(&["operations", "list", "--kind", "host_drain"])?;
    assert!(
        ok && text.contains(&drain_id) && text.contains("1 of 1 operations"),
        "{text}{err}"
    );
    let (ok, text, err) = r.cli(&["operations", "show", &drain_id])?;
    assert!(
        ok && text.contains("steps:") && text.contains("drain ended"),
        "{text}{err}"
    );
    let (ok, _, err) = r.cli(&["operations", "list", "--status", "sleeping"])?;
    assert!(!ok && err.contains("status"), "{err}");

    Ok(())
}
