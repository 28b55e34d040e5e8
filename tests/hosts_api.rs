//! The hosts API: search and filters, lock/unlock with 409 on illegal transitions, and who may
//! do what (admins, tenants, no token).

use plinth_e2e::{Agent, Region};
use reqwest::Method;
use serde_json::{Value, json};

/// A region with two hosts in two clusters, both online.
async fn two_hosts() -> anyhow::Result<(Region, Agent, Agent)> {
    let region = Region::start().await?;
    region.create_cluster("alpha").await?;
    region.create_cluster("beta").await?;
    let a = region.start_agent("127.0.0.2", "alpha").await?;
    let b = region.start_agent("127.0.0.3", "beta").await?;
    region.wait_agent(&a.host_id, "online").await?;
    region.wait_agent(&b.host_id, "online").await?;
    Ok((region, a, b))
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|h| h["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test]
async fn search_and_filters() -> anyhow::Result<()> {
    let (region, a, b) = two_hosts().await?;
    let mut both = vec![a.host_id.clone(), b.host_id.clone()];
    both.sort();
    let cpu = region.host(&a.host_id).await?["cpu_model"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id_fragment = a.host_id[5..11].to_uppercase();
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        ("no filter", "/v1/hosts".into(), both.clone()),
        (
            "ip substring",
            "/v1/hosts?q=0.0.3".into(),
            vec![b.host_id.clone()],
        ),
        (
            "cluster, case-insensitive",
            "/v1/hosts?q=ALPH".into(),
            vec![a.host_id.clone()],
        ),
        (
            "id fragment, upper case",
            format!("/v1/hosts?q={id_fragment}"),
            vec![a.host_id.clone()],
        ),
        (
            "cpu model",
            format!("/v1/hosts?q={}", cpu.to_lowercase().replace(' ', "%20")),
            both.clone(),
        ),
        ("wildcards are literal", "/v1/hosts?q=%25".into(), vec![]),
        ("no match", "/v1/hosts?q=nothing-like-this".into(), vec![]),
        (
            "cluster filter",
            "/v1/hosts?cluster=beta".into(),
            vec![b.host_id.clone()],
        ),
        (
            "state filter",
            "/v1/hosts?state=available".into(),
            both.clone(),
        ),
        (
            "agent filter",
            "/v1/hosts?agent=online".into(),
            both.clone(),
        ),
        (
            "combined",
            "/v1/hosts?q=127.0.0&cluster=alpha&state=available".into(),
            vec![a.host_id.clone()],
        ),
    ];
    for (label, path, want) in cases {
        let (status, list) = region.get(&path).await?;
        assert_eq!(status, 200, "{label}: {list}");
        assert_eq!(ids(&list), want, "{label}");
        assert_eq!(list["total"], want.len(), "{label}");
    }

    // Pages: one per page, each after the cursor of the one before; the total stays the
    // whole count and the last page has no cursor.
    let (_, p1) = region.get("/v1/hosts?limit=1").await?;
    let next = p1["next_cursor"].as_str().unwrap_or_default();
    let (_, p2) = region
        .get(&format!("/v1/hosts?limit=1&cursor={next}"))
        .await?;
    assert_eq!(
        (p1["total"].as_u64(), p2["total"].as_u64()),
        (Some(2), Some(2))
    );
    let mut paged = [ids(&p1), ids(&p2)].concat();
    paged.sort();
    assert_eq!(paged, both);
    assert!(p2["next_cursor"].is_null(), "{p2}");

    // Every host field the seed lists is there.
    let (_, list) = region.get("/v1/hosts").await?;
    for field in [
        "id",
        "ip",
        "cluster_id",
        "cpu_model",
        "total_cores",
        "allocated_cores",
        "total_memory_bytes",
        "allocated_memory_bytes",
        "updated_at",
        "state",
        "agent",
        "last_seen",
    ] {
        assert!(
            !list["items"][0][field].is_null(),
            "missing {field}: {list}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn bad_queries_name_the_field() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let cases = [
        ("/v1/hosts?state=broken", "state"),
        ("/v1/hosts?agent=maybe", "agent"),
        ("/v1/hosts?per_page=0", "per_page"),
        ("/v1/hosts?per_page=5000", "per_page"),
        ("/v1/hosts?page=0", "page"),
        ("/v1/hosts?cluster=Bad_Name", "cluster"),
        ("/v1/hosts?bogus=1", "bogus"),
        ("/v1/hosts?page=x", "page"),
        ("/v1/hosts?limit=0", "limit"),
        ("/v1/hosts?limit=5000", "limit"),
        ("/v1/hosts?cursor=not-a-cursor", "cursor"),
    ];
    for (path, field) in cases {
        let (status, body) = region.get(path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "{path}: message does not name {field}: {body}"
        );
    }
    let (status, body) = region.post("/v1/clusters", json!({"id": "UPPER"})).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field")),
        "{body}"
    );
    let (status, _) = region
        .post("/v1/clusters", json!({"id": "ok", "extra": 1}))
        .await?;
    assert_eq!(status, 400);
    let (_, clusters) = region.get("/v1/clusters").await?;
    assert_eq!(
        clusters["items"],
        json!([]),
        "refused requests created nothing"
    );
    Ok(())
}

/// A path id of the wrong shape is refused before any lookup: a 400 naming the parameter,
/// whichever resource it is for.
#[tokio::test]
async fn malformed_path_ids_are_a_400_naming_the_parameter() -> anyhow::Result<()> {
    let region = Region::start().await?;
    let cases = [
        (Method::GET, "/v1/hosts/nope"),
        (Method::POST, "/v1/hosts/inst-00aa/lock"),
        (Method::GET, "/v1/hosts/host-zz/metrics"),
        (Method::GET, "/v1/hosts/host-/usb"),
        (Method::POST, "/v1/hosts/x/usb/1-2/release"),
        (Method::GET, "/v1/tenants/nobody"),
        (Method::GET, "/v1/tenants/nobody/quota"),
        (Method::GET, "/v1/segments/public"),
        (Method::GET, "/v1/eips/203.0.113.5"),
        (Method::GET, "/v1/operations/latest"),
    ];
    for (method, path) in cases {
        let body = (method == Method::POST).then(|| json!({}));
        let (status, err) = region
            .call(method, path, Some(&region.admin_token), body)
            .await?;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{path}: {err}"
        );
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("id: "), "{path}: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn lock_unlock_and_illegal_transitions() -> anyhow::Result<()> {
    let (region, a, _b) = two_hosts().await?;
    let path = |op: &str| format!("/v1/hosts/{}/{op}", a.host_id);

    let (status, host) = region.post(&path("lock"), json!({})).await?;
    assert_eq!(
        (status, host["state"].as_str()),
        (200, Some("locked")),
        "{host}"
    );
    let (_, locked) = region.get("/v1/hosts?state=locked").await?;
    assert_eq!(ids(&locked), vec![a.host_id.clone()]);

    let (status, err) = region.post(&path("lock"), json!({})).await?;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "host_not_available");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&a.host_id)
            && message.contains("is locked")
            && message.contains("needs available"),
        "{message}"
    );

    let (status, host) = region.post(&path("unlock"), json!({})).await?;
    assert_eq!(
        (status, host["state"].as_str()),
        (200, Some("available")),
        "{host}"
    );
    let (status, err) = region.post(&path("unlock"), json!({})).await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("host_not_locked")),
        "{err}"
    );

    let (status, err) = region
        .post("/v1/hosts/host-000000000000/lock", json!({}))
        .await?;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("host_not_found")),
        "{err}"
    );

    let (_, audit) = region.get("/v1/audit?limit=10").await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.starts_with(&["unlock", "lock"]), "{audit}");
    Ok(())
}

#[tokio::test]
async fn tenants_cannot_touch_hosts_and_tokens_are_checked() -> anyhow::Result<()> {
    let (region, a, _b) = two_hosts().await?;
    let (status, tenant) = region
        .post(
            "/v1/tenants",
            json!({"email": "Ops@Example.com", "name": "Ops"}),
        )
        .await?;
    assert_eq!(status, 201, "{tenant}");
    assert_eq!(tenant["email"], "ops@example.com");
    let tenant_id = tenant["id"].as_str().unwrap_or_default().to_string();
    let (status, dup) = region
        .post(
            "/v1/tenants",
            json!({"email": "ops@example.com", "name": "Again"}),
        )
        .await?;
    assert_eq!(status, 409, "{dup}");

    let (status, created) = region
        .post(
            "/v1/tokens",
            json!({"role": "tenant", "tenant_id": tenant_id, "name": "ci"}),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let tenant_token = created["secret"].as_str().unwrap_or_default().to_string();
    let token_id = created["id"].as_str().unwrap_or_default().to_string();

    let lock = format!("/v1/hosts/{}/lock", a.host_id);
    let (status, body) = region
        .call(Method::POST, &lock, Some(&tenant_token), None)
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _) = region
        .call(Method::GET, "/v1/hosts", Some(&tenant_token), None)
        .await?;
    assert_eq!(status, 403);
    assert_eq!(
        region.host(&a.host_id).await?["state"],
        "available",
        "the refused lock changed nothing"
    );

    // A tenant sees itself, not others, and cannot mint admin tokens.
    let (status, _) = region
        .call(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}"),
            Some(&tenant_token),
            None,
        )
        .await?;
    assert_eq!(status, 200);
    let (_, other) = region
        .post(
            "/v1/tenants",
            json!({"email": "b@example.com", "name": "B"}),
        )
        .await?;
    let other_path = format!("/v1/tenants/{}", other["id"].as_str().unwrap_or_default());
    let (status, _) = region
        .call(Method::GET, &other_path, Some(&tenant_token), None)
        .await?;
    assert_eq!(status, 404);
    let admin = json!({"role": "admin", "name": "escalate"});
    let (status, _) = region
        .call(Method::POST, "/v1/tokens", Some(&tenant_token), Some(admin))
        .await?;
    assert_eq!(status, 403);

    // No token, a wrong token, a revoked token.
    let (status, _) = region.call(Method::GET, "/v1/hosts", None, None).await?;
    assert_eq!(status, 401);
    let forged = format!("{token_id}.{}", "0".repeat(64));
    let (status, _) = region
        .call(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}"),
            Some(&forged),
            None,
        )
        .await?;
    assert_eq!(status, 401);
    let (status, _) = region
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{token_id}"),
            Some(&region.admin_token),
            None,
        )
        .await?;
    assert_eq!(status, 204);
    let (status, _) = region
        .call(
            Method::GET,
            &format!("/v1/tenants/{tenant_id}"),
            Some(&tenant_token),
            None,
        )
        .await?;
    assert_eq!(status, 401, "a revoked token no longer works");

    // Secrets are never listed.
    let (_, tokens) = region.get("/v1/tokens").await?;
    assert!(
        tokens["items"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t.get("secret").is_none())),
        "{tokens}"
    );
    Ok(())
}
