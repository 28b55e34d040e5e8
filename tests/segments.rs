//! External segments and EIPs end to end against the real coordinator: validation that changes
//! nothing, overlap and dual stack, 100 parallel allocations in a /28, 10,000 addresses from a
//! /64, permissions that never take addresses back, binding to instances (made by an agent on
//! libvirt's test driver) only within a tenant, and deletes refused while addresses are held.

use plinth_e2e::instances::{self as inst, MIB, Tenant};
use plinth_e2e::{Region, wait_for};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(60);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// `POST /v1/segments` as admin; expects 201.
async fn segment(r: &Region, body: Value) -> anyhow::Result<Value> {
    let (status, seg) = r.post("/v1/segments", body).await?;
    anyhow::ensure!(status == 201, "create segment: {status} {seg}");
    Ok(seg)
}

async fn segment_count(r: &Region) -> anyhow::Result<usize> {
    let (status, list) = r.get("/v1/segments").await?;
    anyhow::ensure!(status == 200, "list segments: {status} {list}");
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

async fn call(
    r: &Region,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    r.call(method, path, Some(token), body).await
}

async fn get_as(r: &Region, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    call(r, Method::GET, path, token, None).await
}

async fn delete_as(r: &Region, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    call(r, Method::DELETE, path, token, None).await
}

/// `POST /v1/eips` as `token`.
async fn allocate(r: &Region, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    call(r, Method::POST, "/v1/eips", token, Some(body)).await
}

/// `POST /v1/eips/{eip}/bind` to `vm` as `token`.
async fn bind(r: &Region, token: &str, eip: &str, vm: &str) -> anyhow::Result<(u16, Value)> {
    let path = format!("/v1/eips/{eip}/bind");
    call(
        r,
        Method::POST,
        &path,
        token,
        Some(json!({"instance_id": vm})),
    )
    .await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_validated_and_listed_with_the_seed_fields() -> anyhow::Result<()> {
    let r = Region::start().await?;
    let base = json!({"name": "public-v4", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1",
        "nic": "bond1", "vlan": 100, "route_policy": "specified", "routes": ["10.0.2.0/24"]});
    let v4 = segment(&r, base.clone()).await?;
    for field in [
        "id",
        "name",
        "ip_version",
        "cidr",
        "gateway",
        "nic",
        "vlan",
        "route_policy",
        "routes",
        "permission",
        "state",
        "updated_at",
    ] {
        assert!(v4.get(field).is_some(), "{field} missing in {v4}");
    }
    assert_eq!(v4["ip_version"], 4);
    assert_eq!(
        v4["permission"],
        json!({"all_tenants": true, "tenants": []})
    );
    assert_eq!(
        (v4["state"].as_str(), v4["usable"].as_str()),
        (Some("available"), Some("13"))
    );

    // Each bad request is a 400 naming its field, and adds nothing.
    let with = |changes: Value| {
        let mut body = base.clone();
        if let (Some(b), Some(c)) = (body.as_object_mut(), changes.as_object()) {
            b.extend(c.clone());
        }
        body
    };
    let cases = [
        (
            "bad CIDR",
            with(json!({"name": "x", "cidr": "198.51.100.0/33"})),
            "cidr",
        ),
        (
            "host bits",
            with(json!({"name": "x", "cidr": "198.51.100.5/24"})),
            "cidr",
        ),
        (
            "gateway outside",
            with(json!({"name": "x", "cidr": "198.51.100.0/24"})),
            "gateway",
        ),
        (
            "gateway broadcast",
            with(json!({"name": "x", "cidr": "198.51.100.0/24", "gateway": "198.51.100.255"})),
            "gateway",
        ),
        ("VLAN 0", with(json!({"name": "x", "vlan": 0})), "vlan"),
        (
            "VLAN 4095",
            with(json!({"name": "x", "vlan": 4095})),
            "vlan",
        ),
        ("NIC", with(json!({"name": "x", "nic": "bond/1"})), "nic"),
        (
            "mixed families in routes",
            with(json!({"name": "x", "routes": ["10.0.2.0/24", "2001:db8::/32"]})),
            "routes",
        ),
        (
            "IP version",
            with(json!({"name": "x", "ip_version": 6})),
            "ip_version",
        ),
    ];
    for (label, body, field) in cases {
        let (status, err) = r.post("/v1/segments", body).await?;
        assert_eq!(
            (status, code(&err)),
            (400, "invalid_field"),
            "{label}: {err}"
        );
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{label}: {message}"
        );
    }
    assert_eq!(
        segment_count(&r).await?,
        1,
        "a refused create added a segment"
    );

    // Overlap, and dual stack: one IPv4 and one IPv6 segment per NIC and VLAN.
    let (status, err) = r
        .post(
            "/v1/segments",
            with(json!({"name": "wide", "cidr": "203.0.113.0/24", "nic": "eth9"})),
        )
        .await?;
    assert_eq!((status, code(&err)), (409, "segment_overlap"), "{err}");
    let v6 = segment(
        &r,
        json!({"name": "public-v6", "cidr": "2001:DB8:1::/64", "gateway": "2001:db8:1::1",
            "nic": "bond1", "vlan": 100, "route_policy": "default"}),
    )
    .await?;
    assert_eq!(
        (v6["cidr"].as_str(), v6["ip_version"].as_u64()),
        (Some("2001:db8:1::/64"), Some(6))
    );
    assert_eq!(v6["routes"], json!(["::/0"]));
    let second_v4 =
        with(json!({"name": "second", "cidr": "198.51.100.0/24", "gateway": "198.51.100.1"}));
    let (status, err) = r.post("/v1/segments", second_v4.clone()).await?;
    assert_eq!(
        (status, code(&err)),
        (409, "segment_network_taken"),
        "{err}"
    );
    let mut other_vlan = second_v4;
    other_vlan["vlan"] = json!(101);
    segment(&r, other_vlan).await?;
    assert_eq!(segment_count(&r).await?, 3);

    // Tenants cannot change segments; admins change what may change.
    let t = inst::tenant(&r, "t@example.com").await?;
    let (status, _) = allocate(&r, &t.token, json!({})).await?;
    assert_eq!(status, 201, "every tenant may use a segment by default");
    let (status, _) = call(
        &r,
        Method::POST,
        "/v1/segments",
        &t.token,
        Some(base.clone()),
    )
    .await?;
    assert_eq!(status, 403);
    let path = format!("/v1/segments/{}", id(&v4));
    let (status, err) = call(
        &r,
        Method::PATCH,
        &path,
        &r.admin_token,
        Some(json!({"cidr": "203.0.113.0/27"})),
    )
    .await?;
    assert_eq!((status, code(&err)), (400, "invalid_field"), "{err}");
    let (status, err) = call(
        &r,
        Method::PATCH,
        &path,
        &r.admin_token,
        Some(json!({"vlan": 4095})),
    )
    .await?;
    assert_eq!(status, 400, "{err}");
    let (status, changed) = call(
        &r,
        Method::PATCH,
        &path,
        &r.admin_token,
        Some(json!({"route_policy": "none", "vlan": null, "state": "disabled"})),
    )
    .await?;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            &changed["route_policy"],
            &changed["routes"],
            &changed["vlan"],
            &changed["state"]
        ),
        (&json!("none"), &json!([]), &Value::Null, &json!("disabled"))
    );
    let (status, err) = allocate(&r, &t.token, json!({"segment_id": id(&v4)})).await?;
    assert_eq!((status, code(&err)), (409, "segment_disabled"), "{err}");

    let (_, audit) = r.get("/v1/audit").await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["create segment", "update segment", "allocate eip"] {
        assert!(
            actions.contains(&action),
            "{action} not audited: {actions:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_allocations_in_a_28() -> anyhow::Result<()> {
    let r = Region::start().await?;
    let seg = segment(
        &r,
        json!({"name": "small", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1", "nic": "bond1"}),
    )
    .await?;
    let t = inst::tenant(&r, "t@example.com").await?;
    let calls = (0..100).map(|_| allocate(&r, &t.token, json!({"segment_id": id(&seg)})));
    let mut addresses = Vec::new();
    let mut full = 0;
    for res in futures_util::future::join_all(calls).await {
        let (status, body) = res?;
        match status {
            201 => addresses.push(body["address"].as_str().unwrap_or_default().to_string()),
            409 => {
                assert_eq!(code(&body), "segment_full", "{body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("203.0.113.0/28") && message.contains("13 usable"),
                    "{message}"
                );
                full += 1;
            }
            other => anyhow::bail!("unexpected {other}: {body}"),
        }
    }
    // 16 addresses less network, gateway and broadcast.
    assert_eq!((addresses.len(), full), (13, 87));
    let distinct: HashSet<&str> = addresses.iter().map(String::as_str).collect();
    assert_eq!(distinct.len(), 13, "an address twice: {addresses:?}");
    for never in ["203.0.113.0", "203.0.113.1", "203.0.113.15"] {
        assert!(!distinct.contains(never), "{never} was handed out");
    }
    let (_, seg) = r.get(&format!("/v1/segments/{}", id(&seg))).await?;
    assert_eq!(seg["allocated"], 13);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_64_hands_out_ten_thousand_addresses() -> anyhow::Result<()> {
    const CLIENTS: usize = 16;
    const EACH: usize = 625;
    let r = Region::start().await?;
    let seg = segment(
        &r,
        json!({"name": "v6", "cidr": "2001:db8:6::/64", "gateway": "2001:db8:6::1", "nic": "bond1"}),
    )
    .await?;
    let t = inst::tenant(&r, "t@example.com").await?;
    // 16 clients, one request at a time each: the coordinator finds each address without
    // enumerating the segment, so this is as quick per address as a small IPv4 segment.
    let clients = (0..CLIENTS).map(|_| {
        let (r, token) = (&r, t.token.clone());
        async move {
            let mut got = Vec::with_capacity(EACH);
            for _ in 0..EACH {
                let (status, body) = allocate(r, &token, json!({"ip_version": 6})).await?;
                anyhow::ensure!(status == 201, "allocate: {status} {body}");
                got.push(body["address"].as_str().unwrap_or_default().to_string());
            }
            Ok(got)
        }
    });
    let mut all = HashSet::new();
    for got in futures_util::future::join_all(clients).await {
        for address in got? {
            let ip: std::net::Ipv6Addr = address.parse()?;
            assert_eq!(
                u128::from(ip) >> 64,
                0x2001_0db8_0006_0000,
                "{address} outside the /64"
            );
            assert!(all.insert(address), "an address twice");
        }
    }
    assert_eq!(all.len(), CLIENTS * EACH);
    let (_, page) = r
        .get(&format!("/v1/eips?segment={}&limit=1", id(&seg)))
        .await?;
    assert_eq!(page["total"], 10_000);
    Ok(())
}

struct Fixture {
    region: Region,
    a: Tenant,
    b: Tenant,
    /// One running instance of each tenant.
    a_vm: String,
    b_vm: String,
}

/// A region with one agent on libvirt's test driver, tenants a@ and b@ with an instance each.
async fn fixture() -> anyhow::Result<(Fixture, plinth_e2e::Agent)> {
    let region = Region::start().await?;
    region.create_cluster("az1").await?;
    let agent = region.start_agent("127.0.0.101", "az1").await?;
    region.wait_agent(&agent.host_id, "online").await?;
    let a = inst::tenant(&region, "a@example.com").await?;
    let b = inst::tenant(&region, "b@example.com").await?;
    let mut vms = Vec::new();
    for t in [&a, &b] {
        let image = inst::qcow2_image(&region, &t.id, &format!("blank-{}", t.id), "64M").await?;
        let (status, vm) =
            inst::create(&region, &t.token, "vm", &id(&image), 64 * MIB, json!({})).await?;
        anyhow::ensure!(status == 202, "create: {status} {vm}");
        inst::expect_state(&region, &id(&vm), "running", SETTLE).await?;
        vms.push(id(&vm));
    }
    let (a_vm, b_vm) = (vms[0].clone(), vms[1].clone());
    Ok((
        Fixture {
            region,
            a,
            b,
            a_vm,
            b_vm,
        },
        agent,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permissions_bindings_and_deletes() -> anyhow::Result<()> {
    let (f, _agent) = fixture().await?;
    let r = &f.region;
    let (a, b) = (&f.a, &f.b);
    let only_a = segment(
        r,
        json!({"name": "a-only", "cidr": "203.0.113.0/28", "gateway": "203.0.113.1", "nic": "bond1",
            "vlan": 10, "route_policy": "specified", "routes": ["10.0.2.0/24"],
            "permission": {"all_tenants": false, "tenants": ["a@example.com"]}}),
    )
    .await?;
    let open = segment(
        r,
        json!({"name": "open", "cidr": "198.51.100.0/28", "gateway": "198.51.100.14", "nic": "bond1", "vlan": 11}),
    )
    .await?;
    let (seg_a, seg_open) = (id(&only_a), id(&open));
    assert_eq!(only_a["permission"]["tenants"][0]["email"], "a@example.com");

    // A tenant without permission neither sees nor allocates.
    let (_, seen) = get_as(r, &b.token, "/v1/segments").await?;
    let names: Vec<&str> = seen["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["open"]);
    let (status, _) = get_as(r, &b.token, &format!("/v1/segments/{seg_a}")).await?;
    assert_eq!(status, 404);
    let (status, err) = allocate(r, &b.token, json!({"segment_id": seg_a})).await?;
    assert_eq!((status, code(&err)), (404, "segment_not_found"), "{err}");
    let (status, err) = allocate(r, &b.token, json!({"address": "203.0.113.5"})).await?;
    assert_eq!((status, code(&err)), (400, "invalid_field"), "{err}");

    // A tenant with permission allocates and binds to its own instance.
    let (status, a_eip) = allocate(r, &a.token, json!({"segment_id": seg_a})).await?;
    assert_eq!(status, 201, "{a_eip}");
    let a_eip_id = id(&a_eip);
    // Its own address again: refused, naming the EIP that holds it.
    let (status, err) = allocate(r, &a.token, json!({"address": a_eip["address"]})).await?;
    assert_eq!((status, code(&err)), (409, "address_in_use"), "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with(&format!("as EIP {a_eip_id}")),
        "{message}"
    );
    let (status, bound) = bind(r, &a.token, &a_eip_id, &f.a_vm).await?;
    assert_eq!(
        (status, bound["state"].as_str()),
        (200, Some("bound")),
        "{bound}"
    );
    let (status, net) = get_as(r, &a.token, &format!("/v1/instances/{}/network", f.a_vm)).await?;
    assert_eq!(status, 200, "{net}");
    let addr = &net["addresses"][0];
    assert_eq!(addr["address"], a_eip["address"]);
    assert_eq!(
        (
            &addr["gateway"],
            &addr["prefix_len"],
            &addr["routes"],
            &addr["vlan"]
        ),
        (
            &json!("203.0.113.1"),
            &json!(28),
            &json!(["10.0.2.0/24"]),
            &json!(10)
        )
    );

    // Another tenant's instance is out of reach: not found for a tenant, a conflict for an
    // admin binding across tenants.
    let (status, b_eip) = allocate(r, &b.token, json!({})).await?;
    assert_eq!(
        (status, b_eip["segment_id"].as_str()),
        (201, Some(seg_open.as_str())),
        "{b_eip}"
    );
    let b_eip_id = id(&b_eip);
    let (status, err) = bind(r, &b.token, &b_eip_id, &f.a_vm).await?;
    assert_eq!((status, code(&err)), (404, "instance_not_found"), "{err}");
    let (status, err) = bind(r, &r.admin_token, &b_eip_id, &f.a_vm).await?;
    assert_eq!((status, code(&err)), (409, "other_tenant"), "{err}");
    let (status, _) = bind(r, &b.token, &a_eip_id, &f.b_vm).await?;
    assert_eq!(status, 404, "B bound A's EIP");
    let (status, _) = get_as(r, &b.token, &format!("/v1/instances/{}/network", f.a_vm)).await?;
    assert_eq!(status, 404);
    let (status, _) = bind(r, &b.token, &b_eip_id, &f.b_vm).await?;
    assert_eq!(status, 200);

    // The permission moves to B: A keeps its bound address but allocates there no more.
    let (status, changed) = call(
        r,
        Method::PUT,
        &format!("/v1/segments/{seg_a}/permissions"),
        &r.admin_token,
        Some(json!({"all_tenants": false, "tenants": [b.id]})),
    )
    .await?;
    assert_eq!(status, 200, "{changed}");
    let (status, kept) = get_as(r, &a.token, &format!("/v1/eips/{a_eip_id}")).await?;
    assert_eq!(status, 200);
    assert_eq!(
        (&kept["address"], &kept["instance_id"]),
        (&a_eip["address"], &json!(f.a_vm))
    );
    let (_, net) = get_as(r, &a.token, &format!("/v1/instances/{}/network", f.a_vm)).await?;
    assert_eq!(net["addresses"].as_array().map(Vec::len), Some(1));
    let (status, _) = allocate(r, &a.token, json!({"segment_id": seg_a})).await?;
    assert_eq!(status, 404);
    // Released, it cannot come back to A.
    let eip_path = format!("/v1/eips/{a_eip_id}");
    let (status, err) = delete_as(r, &a.token, &eip_path).await?;
    assert_eq!((status, code(&err)), (409, "eip_bound"), "{err}");
    let (status, _) = call(
        r,
        Method::POST,
        &format!("{eip_path}/unbind"),
        &a.token,
        None,
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = delete_as(r, &a.token, &eip_path).await?;
    assert_eq!(status, 204);
    let (status, err) = allocate(r, &a.token, json!({"address": a_eip["address"]})).await?;
    assert_eq!((status, code(&err)), (400, "invalid_field"), "{err}");

    // A segment is deleted only once nothing is allocated from it.
    let (status, held) = allocate(r, &b.token, json!({"segment_id": seg_a})).await?;
    assert_eq!(status, 201, "{held}");
    let seg_path = format!("/v1/segments/{seg_a}");
    let (status, err) = delete_as(r, &r.admin_token, &seg_path).await?;
    assert_eq!((status, code(&err)), (409, "segment_in_use"), "{err}");
    // It names the EIP that holds the segment, and its address.
    let message = err["error"]["message"].as_str().unwrap_or_default();
    let holder = format!(
        "{} ({})",
        id(&held),
        held["address"].as_str().unwrap_or_default()
    );
    assert!(message.contains(&holder), "{message} names {holder}");
    let (status, _) = delete_as(r, &b.token, &format!("/v1/eips/{}", id(&held))).await?;
    assert_eq!(status, 204);
    let (status, _) = delete_as(r, &r.admin_token, &seg_path).await?;
    assert_eq!(status, 204);

    // An instance deleted while bound leaves its EIP allocated and unbound.
    inst::delete(r, &f.b_vm, SETTLE).await?;
    let unbound = wait_for("B's EIP to be unbound", SETTLE, || async {
        let (_, e) = get_as(r, &b.token, &format!("/v1/eips/{b_eip_id}")).await?;
        Ok((e["state"] == "allocated").then_some(e))
    })
    .await?;
    assert_eq!(unbound["instance_id"], Value::Null);

    let (_, audit) = r.get("/v1/audit?limit=1000").await?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "set segment permission",
        "bind eip",
        "unbind eip",
        "release eip",
        "delete segment",
    ] {
        assert!(actions.contains(&action), "{action} not audited");
    }
    Ok(())
}
