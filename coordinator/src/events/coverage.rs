//! Each writer path records its change as exactly one event, in the change's transaction:
//! one case per writer that once recorded none (enrollment, removal, creates, edits, deletes),
//! each checked for the event's type, resource id, tenant and data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::baremetal::store::{NewServerRow, Swap};
use crate::db::{Store, test_image};
use crate::events::{EventType, StoredEvent};
use crate::hosts::store::NewHost;
use crate::hosts::store::certificates::{CertKind, Issued};
use crate::images::store::NewImageRow;
use plinth_common::baremetal::ConsoleState;
use plinth_common::image::{ImageKind, ImageStatus, ImageType, Visibility};
use serde_json::{Value, json};

/// The events recorded since `last` (which moves on to the newest).
async fn since(store: &Store, last: &mut i64) -> Vec<StoredEvent> {
    let events = store.events_after(*last, 100).await.unwrap();
    if let Some(e) = events.last() {
        *last = e.id;
    }
    events
}

/// Exactly one event since `last`, of `kind` about `id`, whose data has every field of
/// `want` (and the tenant `tenant`).
async fn one(
    store: &Store,
    last: &mut i64,
    case: &str,
    (kind, id, tenant): (EventType, &str, Option<&str>),
    want: Value,
) {
    let events = since(store, last).await;
    assert_eq!(events.len(), 1, "{case}: {events:?}");
    let e = &events[0];
    assert_eq!(
        (e.kind, e.resource_id.as_str(), e.tenant_id.as_deref()),
        (kind, id, tenant),
        "{case}: {e:?}"
    );
    for (field, value) in want.as_object().unwrap() {
        assert_eq!(
            e.data.get(field),
            Some(value),
            "{case}: {field} in {}",
            e.data
        );
    }
}

fn image_row(id: &str) -> NewImageRow<'_> {
    NewImageRow {
        id,
        name: "mine",
        kind: ImageKind::Custom,
        image_type: ImageType::Image,
        iso_purpose: None,
        visibility: Visibility::Private,
        owner_tenant_id: Some("ten-1"),
        note: "",
        os_type: None,
        architecture: None,
        platform: None,
        version: None,
        target_size_gb: None,
        expected_sha256: None,
        source_url: None,
        source_url_sealed: None,
        status: ImageStatus::Importing,
        operation_id: None,
        exported_from: None,
        now: 1,
    }
}

crate::db::store_test! {
async fn host_enrollment_presence_and_removal_are_one_event_each(store, _dir) {
    store.create_cluster("az1", "az1").await.unwrap();
    let mut last = 0;
    store
        .insert_enrollment_token("enr-1", "h", "", 0, 1_000, None)
        .await
        .unwrap();
    let host = NewHost {
        id: "host-1",
        ip: "10.0.0.1",
        hostname: "hv1",
        cluster_id: "az1",
        cert_expires_at: 1_000,
        now: 10,
    };
    let cert = Issued {
        serial: "01",
        kind: CertKind::Agent,
        host_id: Some("host-1"),
        issued_at: 10,
        expires_at: 1_000,
    };
    store
        .enroll_host("enr-1", &host, None, &cert)
        .await
        .unwrap();
    let key = (EventType::Host, "host-1", None);
    let want = json!({"created": true, "state": "available", "ip": "10.0.0.1",
        "cluster_id": "az1", "hostname": "hv1"});
    one(&store, &mut last, "enroll", key, want).await;

    // Presence: an agent that was online goes offline once (a second look finds nothing).
    crate::db::query("UPDATE hosts SET presence = 'online', offline_after = 5 WHERE id = 'host-1'")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.mark_offline(None, 20).await.unwrap(), vec!["host-1"]);
    one(
        &store,
        &mut last,
        "offline",
        key,
        json!({"agent": "offline"}),
    )
    .await;
    assert!(store.mark_offline(None, 30).await.unwrap().is_empty());
    assert!(since(&store, &mut last).await.is_empty());

    store
        .remove_host("host-1", None, 40)
        .await
        .unwrap()
        .unwrap();
    one(&store, &mut last, "remove", key, json!({"deleted": true})).await;
}
}

crate::db::store_test! {
async fn image_creates_and_edits_are_one_event_each(store, _dir) {
    store
        .create_tenant("ten-1", "t@example.com", "t")
        .await
        .unwrap();
    let mut last = since(&store, &mut 0).await.last().map_or(0, |e| e.id);
    store
        .create_image(&image_row("img-1"), &[], None)
        .await
        .unwrap();
    let key = (EventType::Image, "img-1", Some("ten-1"));
    let want = json!({"created": true, "status": "importing", "kind": "custom", "name": "mine"});
    one(&store, &mut last, "create", key, want).await;

    let tags = ["a".to_string()];
    store
        .update_image("img-1", Some("renamed"), None, None, Some(&tags), 2)
        .await
        .unwrap();
    let want = json!({"name": "renamed", "tags": ["a"]});
    one(&store, &mut last, "edit", key, want.clone()).await;
    let all = store.events_after(0, 100).await.unwrap();
    assert_eq!(all.last().unwrap().data, want, "only the fields given");
}
}

crate::db::store_test! {
async fn bare_metal_create_edit_console_and_delete_are_one_event_each(store, _dir) {
    store
        .create_tenant("ten-1", "t@example.com", "t")
        .await
        .unwrap();
    let mut last = 0;
    let row = NewServerRow {
        id: "bm-1".into(),
        name: "server-1".into(),
        tenant_id: "ten-1".into(),
        ipmi_ip: "10.9.0.1".into(),
        username: "admin".into(),
        password_sealed: "v1:sealed".into(),
        rack_location: "R1".into(),
        label: None,
        operation_id: "op-1".into(),
    };
    store.create_baremetal(&[row], 1).await.unwrap().unwrap();
    let events = since(&store, &mut last).await;
    let servers: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::Baremetal)
        .collect();
    assert_eq!(servers.len(), 1, "{events:?}");
    assert_eq!(
        (
            servers[0].resource_id.as_str(),
            servers[0].tenant_id.as_deref()
        ),
        ("bm-1", Some("ten-1"))
    );
    assert_eq!(servers[0].data["created"], true);
    assert_eq!(servers[0].data["state"], "preparing");

    let key = (EventType::Baremetal, "bm-1", Some("ten-1"));
    assert!(
        store
            .update_baremetal("bm-1", None, Some(Some("web")), 2)
            .await
            .unwrap()
    );
    one(&store, &mut last, "edit", key, json!({"label": "web"})).await;
    assert!(
        store
            .update_baremetal("bm-1", Some("R2"), Some(None), 3)
            .await
            .unwrap()
    );
    let want = json!({"rack_location": "R2", "label": null});
    one(&store, &mut last, "edit, label cleared", key, want).await;

    let console = Swap {
        from: ConsoleState::Inactive,
        to: ConsoleState::Active,
    };
    assert!(
        store
            .swap_baremetal_console("bm-1", console, 4)
            .await
            .unwrap()
    );
    let want = json!({"console_state": "active", "from": "inactive"});
    one(&store, &mut last, "console", key, want).await;
    // A swap that lost (the row is not inactive any more) records nothing.
    assert!(
        !store
            .swap_baremetal_console("bm-1", console, 5)
            .await
            .unwrap()
    );
    assert!(since(&store, &mut last).await.is_empty());

    store.delete_baremetal("bm-1").await.unwrap().unwrap();
    let events = since(&store, &mut last).await;
    let server: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::Baremetal)
        .collect();
    assert_eq!(server.len(), 1, "{events:?}");
    assert_eq!(server[0].data, json!({"deleted": true}));
    assert_eq!(
        server[0].tenant_id.as_deref(),
        Some("ten-1"),
        "read before the delete"
    );
}
}

crate::db::store_test! {
async fn an_instances_final_delete_is_one_event(store, _dir) {
    store
        .create_tenant("ten-1", "t@example.com", "t")
        .await
        .unwrap();
    test_image(&store, "img-1").await.unwrap();
    store
        .insert_instance_ref("inst-1", "ten-1", "img-1", 1)
        .await
        .unwrap();
    let mut last = since(&store, &mut 0).await.last().map_or(0, |e| e.id);
    store.remove_instance("inst-1", "op-none", 2).await.unwrap();
    let key = (EventType::Instance, "inst-1", Some("ten-1"));
    one(
        &store,
        &mut last,
        "final delete",
        key,
        json!({"deleted": true}),
    )
    .await;
}
}
