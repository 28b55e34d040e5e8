//! Who sees and uses which image (the second seed's 精选/公共/私有, issue 18 item 5), against a
//! real coordinator: the whole table of visibility (private, public, featured) × kind (base,
//! custom) × caller (admin, the owner tenant, another tenant) × (list, GET, create an
//! instance from it). Featured and public images, base or custom, are for every tenant;
//! private ones for their owner; admins see all; only admins feature; seeing another
//! tenant's image grants no right to change it.
//!
//! Creating an instance stops at the image check: the region has no hosts, so an image the
//! instance's tenant may use gets `409 no_suitable_host` (the check passed, placement did
//! not), and one it may not gets `400 invalid_field` naming `image_id`.

use plinth_e2e::Region;
use plinth_e2e::instances::{self as inst, MIB, Tenant};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// `PATCH /v1/images/{id}` with `body` as `token`.
async fn patch(r: &Region, token: &str, id: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    r.call(
        Method::PATCH,
        &format!("/v1/images/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

/// The ids `token` gets from `GET /v1/images`.
async fn listed(r: &Region, token: &str) -> anyhow::Result<Vec<String>> {
    let (status, page) = r
        .call(Method::GET, "/v1/images?limit=100", Some(token), None)
        .await?;
    anyhow::ensure!(status == 200, "list: {status} {page}");
    Ok(page["items"]
        .as_array()
        .map(|items| items.iter().map(id_of).collect())
        .unwrap_or_default())
}

/// A base image copied from `source` (public, as every copy starts), once available.
async fn base_copy(r: &Region, source: &str, name: &str) -> anyhow::Result<String> {
    let (status, base) = r
        .post(
            &format!("/v1/images/{source}/copy-to-base"),
            json!({"name": name}),
        )
        .await?;
    anyhow::ensure!(status == 202, "copy to base: {status} {base}");
    let id = id_of(&base);
    plinth_e2e::wait_for(
        &format!("base image {id} to be available"),
        Duration::from_secs(60),
        || async {
            let (_, image) = r.get(&format!("/v1/images/{id}")).await?;
            anyhow::ensure!(image["status"] != "import_failed", "copy failed: {image}");
            Ok((image["status"] == "available").then_some(()))
        },
    )
    .await?;
    Ok(id)
}

struct Row {
    image: String,
    label: String,
    /// Who may see and use it: (admin, owner tenant A, other tenant B).
    seen: (bool, bool, bool),
}

#[tokio::test]
async fn featured_and_public_images_are_for_every_tenant() -> anyhow::Result<()> {
    let r = Region::start().await?;
    let a: Tenant = inst::tenant(&r, "a@example.com").await?;
    let b: Tenant = inst::tenant(&r, "b@example.com").await?;
    let admin = r.admin_token.clone();

    // Tenant A's custom images, one per visibility.
    let mut custom = Vec::new();
    for v in ["private", "public", "featured"] {
        let image = inst::qcow2_image(&r, &a.id, &format!("custom-{v}"), "64M").await?;
        assert_eq!(image["visibility"], "private", "uploads start private");
        custom.push(id_of(&image));
    }
    let (status, body) = patch(&r, &a.token, &custom[1], json!({"visibility": "public"})).await?;
    assert_eq!(status, 200, "an owner makes its image public: {body}");
    // Only admins feature: a tenant asking is a 400 naming the field, and changes nothing.
    let (status, body) = patch(&r, &a.token, &custom[2], json!({"visibility": "featured"})).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_field", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("visibility:"), "{message}");
    let (_, still) = r.get(&format!("/v1/images/{}", custom[2])).await?;
    assert_eq!(still["visibility"], "private");
    let (status, body) = patch(&r, &admin, &custom[2], json!({"visibility": "featured"})).await?;
    assert_eq!(status, 200, "an admin features an image: {body}");

    // Base images, one per visibility (a copy starts public).
    let mut base = Vec::new();
    for v in ["private", "public", "featured"] {
        base.push(base_copy(&r, &custom[0], &format!("base-{v}")).await?);
    }
    for (id, v) in [(&base[0], "private"), (&base[2], "featured")] {
        let (status, body) = patch(&r, &admin, id, json!({"visibility": v})).await?;
        assert_eq!(status, 200, "{body}");
    }

    let shared = (true, true, true);
    let rows = [
        (&base[0], "base private", (true, false, false)),
        (&base[1], "base public", shared),
        (&base[2], "base featured", shared),
        (&custom[0], "custom private", (true, true, false)),
        (&custom[1], "custom public", shared),
        (&custom[2], "custom featured", shared),
    ]
    .map(|(image, label, seen)| Row {
        image: image.clone(),
        label: label.to_string(),
        seen,
    });

    let lists = [
        listed(&r, &admin).await?,
        listed(&r, &a.token).await?,
        listed(&r, &b.token).await?,
    ];
    for row in &rows {
        let (admin_sees, a_sees, b_sees) = row.seen;
        // (caller, its token, whether it sees the image, the tenant an instance is for, and
        // whether that tenant may boot from the image). An admin creates for tenant B: the
        // instance's tenant decides, whoever asks.
        let callers = [
            ("admin", &admin, admin_sees, Some(&b.id), b_sees),
            ("owner", &a.token, a_sees, None, a_sees),
            ("other", &b.token, b_sees, None, b_sees),
        ];
        for (i, (who, token, sees, for_tenant, usable)) in callers.into_iter().enumerate() {
            let what = format!("{} as {who}", row.label);
            assert_eq!(lists[i].contains(&row.image), sees, "list: {what}");

            let (status, body) = r
                .call(
                    Method::GET,
                    &format!("/v1/images/{}", row.image),
                    Some(token),
                    None,
                )
                .await?;
            let want = if sees { 200 } else { 404 };
            assert_eq!(status, want, "GET: {what}: {body}");

            let extra = match for_tenant {
                Some(t) => json!({"tenant_id": t}),
                None => json!({}),
            };
            let name = format!("vm-{}-{i}", row.label.replace(' ', "-"));
            let (status, body) =
                inst::create(&r, token, &name, &row.image, 64 * MIB, extra).await?;
            let code = body["error"]["code"].as_str().unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or_default();
            if usable {
                assert_eq!(
                    (status, code),
                    (409, "no_suitable_host"),
                    "create: {what}: the image check should pass: {body}"
                );
            } else {
                assert_eq!(
                    (status, code),
                    (400, "invalid_field"),
                    "create: {what}: {body}"
                );
                assert!(
                    message.starts_with("image_id:"),
                    "create: {what}: {message}"
                );
            }
        }
    }

    // A download link follows the same rule: B may fetch A's public image, not its private one.
    for (id, want) in [(&custom[1], 200), (&custom[0], 404)] {
        let (status, body) = r
            .call(
                Method::POST,
                &format!("/v1/images/{id}/download-link"),
                Some(&b.token),
                None,
            )
            .await?;
        assert_eq!(status, want, "download link of {id} as other: {body}");
    }

    // Seeing is not editing: B reads A's public image but may not change or delete it; A's
    // private image stays unknown to B.
    let (status, body) = patch(&r, &b.token, &custom[1], json!({"name": "taken"})).await?;
    assert_eq!(status, 403, "{body}");
    let (status, body) = patch(&r, &b.token, &custom[1], json!({"visibility": "private"})).await?;
    assert_eq!(status, 403, "{body}");
    let (status, body) = r
        .call(
            Method::DELETE,
            &format!("/v1/images/{}", custom[1]),
            Some(&b.token),
            None,
        )
        .await?;
    assert_eq!(status, 403, "{body}");
    let (status, _) = patch(&r, &b.token, &custom[0], json!({"name": "taken"})).await?;
    assert_eq!(status, 404);
    let (_, unchanged) = r.get(&format!("/v1/images/{}", custom[1])).await?;
    assert_eq!(unchanged["name"], "custom-public");
    assert_eq!(unchanged["visibility"], "public");
    Ok(())
}
