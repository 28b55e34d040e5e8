//! Browser sessions against a real region: a token exchanged for a cookie, the cookie used
//! in place of the token (the anti-forgery header on changes, a tenant's scope), sign-out,
//! the token's revocation and the session's own expiry ending it; and no secret in the log.

use plinth_e2e::{Region, RegionOptions, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// A cookie session's value (`<id>.<secret>`) and the full `Set-Cookie` line.
struct Login {
    cookie: String,
    set_cookie: String,
    info: Value,
}

async fn login(region: &Region, token: &str) -> anyhow::Result<Login> {
    let resp = region
        .http
        .post(format!("{}/v1/session", region.url))
        .json(&json!({ "token": token }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let info: Value = resp.json().await?;
    anyhow::ensure!(status == 201, "login: {status} {info}");
    let cookie = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("plinth_session="))
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(!cookie.is_empty(), "no session cookie in {set_cookie:?}");
    Ok(Login {
        cookie,
        set_cookie,
        info,
    })
}

/// A request authenticated by the session cookie only, with the anti-forgery header or not.
async fn with_cookie(
    region: &Region,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: bool,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value, Option<String>)> {
    let mut req = region
        .http
        .request(method, format!("{}{path}", region.url))
        .header(
            reqwest::header::COOKIE,
            format!("other=1; plinth_session={cookie}"),
        );
    if csrf {
        req = req.header("X-Plinth-Session", "1");
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value, set_cookie))
}

async fn make_tenant(region: &Region, email: &str) -> anyhow::Result<(String, String, String)> {
    let (status, tenant) = region
        .post("/v1/tenants", json!({"email": email, "name": email}))
        .await?;
    anyhow::ensure!(status == 201, "tenant: {status} {tenant}");
    let tenant_id = tenant["id"].as_str().unwrap_or_default().to_string();
    let (status, token) = region
        .post(
            "/v1/tokens",
            json!({"role": "tenant", "tenant_id": tenant_id, "name": "console"}),
        )
        .await?;
    anyhow::ensure!(status == 201, "token: {status} {token}");
    Ok((
        tenant_id,
        token["id"].as_str().unwrap_or_default().to_string(),
        token["secret"].as_str().unwrap_or_default().to_string(),
    ))
}

#[tokio::test]
async fn cookie_sessions_act_as_their_token() -> anyhow::Result<()> {
    let region = Region::start().await?;

    // Sign in as the admin: the cookie holds a fresh secret, never the token.
    let admin = login(&region, &region.admin_token).await?;
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(
            admin.set_cookie.contains(attr),
            "{attr} missing: {}",
            admin.set_cookie
        );
    }
    assert!(!admin.set_cookie.contains(&region.admin_token));
    assert_eq!(admin.info["role"], "admin");
    let (status, _, _) = with_cookie(
        &region,
        Method::GET,
        "/v1/hosts",
        &admin.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 200, "GET with the cookie");
    let (status, me, _) = with_cookie(
        &region,
        Method::GET,
        "/v1/session",
        &admin.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["id"], admin.info["id"]);
    assert!(me["expires_at"].is_string() && me["idle_expires_at"].is_string());

    // A change made with the cookie needs the header a cross-site form cannot send.
    let cluster = json!({"id": "c1"});
    let (status, body, _) = with_cookie(
        &region,
        Method::POST,
        "/v1/clusters",
        &admin.cookie,
        false,
        Some(cluster.clone()),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf_header_missing");
    let (status, body, _) = with_cookie(
        &region,
        Method::POST,
        "/v1/clusters",
        &admin.cookie,
        true,
        Some(cluster),
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    // Bearer tokens need no such header.
    let (status, body) = region.post("/v1/clusters", json!({"id": "c2"})).await?;
    assert_eq!(status, 201, "{body}");

    // A tenant's cookie sees its own things only.
    let (t1, t1_token_id, t1_token) = make_tenant(&region, "one@example.com").await?;
    let (t2, _, t2_token) = make_tenant(&region, "two@example.com").await?;
    let tenant = login(&region, &t1_token).await?;
    assert_eq!(tenant.info["role"], "tenant");
    assert_eq!(tenant.info["tenant_id"], t1.as_str());
    let get = |path: String| {
        let cookie = tenant.cookie.clone();
        let region = &region;
        async move { with_cookie(region, Method::GET, &path, &cookie, false, None).await }
    };
    assert_eq!(get(format!("/v1/tenants/{t1}")).await?.0, 200);
    assert_eq!(get(format!("/v1/tenants/{t2}")).await?.0, 404);
    assert_eq!(get("/v1/tenants".into()).await?.0, 403);
    let (status, tokens, _) = get("/v1/tokens".into()).await?;
    assert_eq!(status, 200, "{tokens}");
    let ids: Vec<&str> = tokens["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        vec![t1_token_id.as_str()],
        "a tenant sees its own tokens"
    );

    // Sign-out ends the session and clears the cookie.
    let (status, body, cleared) = with_cookie(
        &region,
        Method::DELETE,
        "/v1/session",
        &admin.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 403, "sign-out is a change too: {body}");
    let (status, body, cleared_now) = with_cookie(
        &region,
        Method::DELETE,
        "/v1/session",
        &admin.cookie,
        true,
        None,
    )
    .await?;
    assert_eq!(status, 204, "{body}");
    assert!(cleared.is_none());
    let cleared = cleared_now.unwrap_or_default();
    assert!(
        cleared.starts_with("plinth_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, body, _) = with_cookie(
        &region,
        Method::GET,
        "/v1/hosts",
        &admin.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 401, "after sign-out: {body}");

    // Revoking the token ends its live session.
    assert_eq!(get("/v1/tokens".into()).await?.0, 200);
    let (status, body) = region
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{t1_token_id}"),
            Some(&region.admin_token),
            None,
        )
        .await?;
    assert_eq!(status, 204, "{body}");
    let (status, body, _) = get("/v1/tokens".into()).await?;
    assert_eq!(status, 401, "after the token's revocation: {body}");

    // Wrong or unknown cookies are refused; a bad token gets no session.
    let forged = format!("{}x", tenant.cookie);
    let (status, _, _) =
        with_cookie(&region, Method::GET, "/v1/hosts", &forged, false, None).await?;
    assert_eq!(status, 401);
    let resp = region
        .http
        .post(format!("{}/v1/session", region.url))
        .json(&json!({"token": format!("{t2_token}x")}))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 401);

    // Both sign-in and sign-out are audited.
    let (status, audit) = region.get("/v1/audit").await?;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.contains(&"session login"), "{actions:?}");
    assert!(actions.contains(&"session logout"), "{actions:?}");

    // Neither the tokens nor the session secrets are in the coordinator's log.
    let log = region.coordinator_log();
    assert!(!log.is_empty(), "the coordinator logs something");
    for secret in [
        region.admin_token.as_str(),
        t1_token.as_str(),
        t2_token.as_str(),
        admin.cookie.as_str(),
        tenant.cookie.as_str(),
    ] {
        let tail = secret.split_once('.').map_or(secret, |(_, s)| s);
        assert!(!log.contains(tail), "a secret is in the coordinator log");
    }
    Ok(())
}

#[tokio::test]
async fn sessions_expire() -> anyhow::Result<()> {
    let region = Region::start_with(RegionOptions {
        extra_args: ["--session-ttl", "3s", "--session-idle-timeout", "1s"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await?;
    let session = login(&region, &region.admin_token).await?;
    assert!(
        session.set_cookie.contains("Max-Age=3"),
        "{}",
        session.set_cookie
    );
    let (status, _, _) = with_cookie(
        &region,
        Method::GET,
        "/v1/hosts",
        &session.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 200);
    // Used all the time, it still ends at its absolute end.
    wait_for("the session to expire", Duration::from_secs(30), || async {
        let (status, _, _) = with_cookie(
            &region,
            Method::GET,
            "/v1/hosts",
            &session.cookie,
            false,
            None,
        )
        .await?;
        Ok((status == 401).then_some(()))
    })
    .await?;
    // Idle expiry: a new session left alone for the idle time ends before its absolute end.
    let idle = login(&region, &region.admin_token).await?;
    assert_ne!(idle.info["idle_expires_at"], idle.info["expires_at"]);
    let idle_end = time::OffsetDateTime::parse(
        idle.info["idle_expires_at"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )?;
    wait_for("the idle time to pass", Duration::from_secs(30), || async {
        Ok((time::OffsetDateTime::now_utc() > idle_end).then_some(()))
    })
    .await?;
    let (status, body, _) = with_cookie(
        &region,
        Method::GET,
        "/v1/session",
        &idle.cookie,
        false,
        None,
    )
    .await?;
    assert_eq!(status, 401, "idle past its idle time: {body}");
    Ok(())
}
