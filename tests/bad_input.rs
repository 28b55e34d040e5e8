//! Bad request bodies against a real region (issue 18, item 3): a JSON array where an object
//! is documented, a negative count, an unknown field on a PATCH. Each answers
//! `400 invalid_field` naming the field in plain words (no Rust type names, no line and
//! column), and nothing changes. A create that conflicts names what it conflicts with.

use plinth_e2e::Region;
use plinth_e2e::baremetal::{SECRET, Seen, add_body, region, server, settled};
use plinth_e2e::bmc::SimBmc;
use plinth_e2e::instances::tenant;
use reqwest::Method;
use serde_json::{Value, json};

/// Rust's words, which a refusal must not carry.
const RUST_WORDS: [&str; 10] = [
    "u64",
    "i64",
    "String",
    "struct ",
    "Option",
    "Vec<",
    "line 1",
    "column",
    "Failed to",
    "expected u",
];

/// `status` is 400 `invalid_field` with `field`, the message names it, and it is plain words.
fn assert_refused(what: &str, status: u16, body: &Value, field: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"]["code"], "invalid_field", "{what}: {body}");
    assert_eq!(
        body["error"]["field"], field,
        "{what}: the body names the field for a form to show the message beside it"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "{what}: the message names {field}: {message}"
    );
    for word in RUST_WORDS {
        assert!(!message.contains(word), "{what}: {message:?} has {word:?}");
    }
}

async fn put_quota(r: &Region, tenant: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let path = format!("/v1/tenants/{tenant}/quota");
    r.call(Method::PUT, &path, Some(&r.admin_token), Some(body))
        .await
}

#[tokio::test]
async fn bad_bodies_are_refused_with_the_field_and_change_nothing() -> anyhow::Result<()> {
    let r = region().await?;
    let _agent = r.start_agent("127.0.83.1", "az1").await?;
    let t = tenant(&r, "bad-input@example.com").await?;
    // A second tenant with the same email: refused, naming the tenant that has it.
    let (status, body) = r
        .post(
            "/v1/tenants",
            json!({"email": "bad-input@example.com", "name": "again"}),
        )
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("tenant_exists")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with(&format!(": {}", t.id)), "{message}");

    let quota_path = format!("/v1/tenants/{}/quota", t.id);
    let (status, before) = r.get(&quota_path).await?;
    assert_eq!(status, 200, "{before}");

    // serde reads an array as a struct's fields in order: 200 and cores=1 before the fix.
    let (status, body) = put_quota(&r, &t.id, json!([1, 2, 3])).await?;
    assert_refused("quota as an array", status, &body, "body");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("JSON object"),
        "{body}"
    );

    let (status, body) = put_quota(&r, &t.id, json!({"cores": -5})).await?;
    assert_refused("negative cores", status, &body, "cores");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("whole number from 0 to"), "{message}");

    let (status, body) = put_quota(&r, &t.id, json!({"cores": 4, "colour": "red"})).await?;
    assert_refused("unknown quota field", status, &body, "colour");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cores, memory_bytes, instances"),
        "{message}"
    );

    let (status, after) = r.get(&quota_path).await?;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        after["quota"], before["quota"],
        "a refused PUT changed the quota"
    );

    // A nested object given as an array, as serde would read it (all_tenants, tenants): refused
    // at its path, and no segment is made.
    let segment = json!({"name": "nested", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1",
        "nic": "bond1", "permission": [false, []]});
    let (status, body) = r
        .call(
            Method::POST,
            "/v1/segments",
            Some(&r.admin_token),
            Some(segment),
        )
        .await?;
    assert_refused(
        "segment permission as an array",
        status,
        &body,
        "permission",
    );
    assert_eq!(
        body["error"]["message"], "permission: must be an object, not a list",
        "{body}"
    );
    let (status, segments) = r.get("/v1/segments").await?;
    assert_eq!(status, 200, "{segments}");
    assert!(
        !segments.to_string().contains("\"nested\""),
        "a refused POST made a segment: {segments}"
    );

    // An unknown field on a bare-metal PATCH; a good PATCH still changes only what it names.
    let sim = SimBmc::start(SECRET)?;
    let mut seen = Seen::default();
    let (status, added) = seen
        .post(
            &r,
            "/v1/baremetal",
            add_body("bad-1", &sim.ip, SECRET, Some("bad-input@example.com")),
        )
        .await?;
    assert_eq!(status, 202, "{added}");
    let id = added["id"].as_str().unwrap_or_default().to_string();
    let before = settled(&r, &id).await?;
    let path = format!("/v1/baremetal/{id}");
    let (status, body) = r
        .call(
            Method::PATCH,
            &path,
            Some(&r.admin_token),
            Some(json!({"label": "x", "colour": "red"})),
        )
        .await?;
    assert_refused("unknown bare-metal field", status, &body, "colour");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("rack_location, label"), "{message}");
    let (status, body) = r
        .call(
            Method::PATCH,
            &path,
            Some(&r.admin_token),
            Some(json!(["x"])),
        )
        .await?;
    assert_refused("bare-metal PATCH as an array", status, &body, "body");
    let after = server(&r, &id).await?;
    assert_eq!(
        after["label"], before["label"],
        "a refused PATCH changed the label"
    );
    assert_eq!(after["rack_location"], before["rack_location"]);

    let (status, body) = r
        .call(
            Method::PATCH,
            &path,
            Some(&r.admin_token),
            Some(json!({"label": "web"})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let after = server(&r, &id).await?;
    assert_eq!(after["label"], "web");
    assert_eq!(
        after["rack_location"], before["rack_location"],
        "PATCH kept the rest"
    );

    // A query parameter that is not a number.
    let (status, body) = r.get("/v1/baremetal?limit=lots").await?;
    assert_refused("query limit", status, &body, "limit");
    Ok(())
}
