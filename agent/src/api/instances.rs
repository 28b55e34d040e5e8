//! `/v1/instances`: create, read, start, reboot, stop, delete and export the instances of this
//! host (their live migration is in migration.rs). Each call runs in its own task, so a
//! coordinator that hangs up mid-create still gets a create that finished or cleaned up after
//! itself.

use super::{ApiError, Body, detached};
use crate::instances::InstanceError;
use crate::runtime::Agent;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use plinth_common::api::{
    AgentCreateInstance, AgentExport, AgentExported, AgentInstance, AgentNic, AgentStop,
};
use plinth_common::instance::MAX_STOP_TIMEOUT_S;
use std::sync::Arc;
use std::time::Duration;

/// What a panicked instance task is called in the answer.
pub(super) const WORKER: &str = "instance worker";

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn create(
    State(agent): State<Arc<Agent>>,
    body: Body<AgentCreateInstance>,
) -> Answer<AgentInstance> {
    let Json(req) = body?;
    let link = agent.coordinator_link();
    detached(WORKER, async move {
        if req.devices.is_empty() {
            return agent.instances.create(req, &link).await;
        }
        let id = req.instance_id.clone();
        let hostdevs = agent
            .devices
            .hostdevs_for(&id, &req.devices)
            .await
            .map_err(InstanceError::Devices)?;
        let created = agent
            .instances
            .create_with_hostdevs(req, &link, hostdevs)
            .await;
        if created.is_err()
            && let Err(err) = agent.devices.forget_instance(&id).await
        {
            tracing::warn!(instance = %id, error = %err, "Could not free a failed create's devices.");
        }
        created
    })
    .await
    .map(Json)
}

pub async fn get(State(agent): State<Arc<Agent>>, Path(id): Path<String>) -> Answer<AgentInstance> {
    Ok(Json(agent.instances.get(&id).await?))
}

pub async fn start(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Answer<AgentInstance> {
    detached(WORKER, async move { agent.instances.start(&id).await })
        .await
        .map(Json)
}

pub async fn attach_nic(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Body<AgentNic>,
) -> Answer<AgentInstance> {
    let Json(nic) = body?;
    detached(
        WORKER,
        async move { agent.instances.attach_nic(&id, nic).await },
    )
    .await
    .map(Json)
}

pub async fn detach_nic(
    State(agent): State<Arc<Agent>>,
    Path((id, mac)): Path<(String, String)>,
) -> Answer<AgentInstance> {
    detached(WORKER, async move {
        agent.instances.detach_nic(&id, &mac).await
    })
    .await
    .map(Json)
}

pub async fn reboot(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Answer<AgentInstance> {
    detached(WORKER, async move { agent.instances.reboot(&id).await })
        .await
        .map(Json)
}

pub async fn stop(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Body<AgentStop>,
) -> Answer<AgentInstance> {
    let Json(AgentStop { timeout_s }) = body?;
    if timeout_s > MAX_STOP_TIMEOUT_S {
        return Err(ApiError::Invalid(format!(
            "timeout_s must be at most {MAX_STOP_TIMEOUT_S}"
        )));
    }
    let timeout = Duration::from_secs(timeout_s);
    detached(
        WORKER,
        async move { agent.instances.stop(&id, timeout).await },
    )
    .await
    .map(Json)
}

pub async fn delete(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    detached(WORKER, async move {
        agent.instances.delete(&id).await?;
        // The domain went with its devices: they are free again.
        if let Err(err) = agent.devices.forget_instance(&id).await {
            tracing::warn!(instance = %id, error = %err, "Could not free the deleted instance's devices.");
        }
        Ok::<_, InstanceError>(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn export(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Body<AgentExport>,
) -> Answer<AgentExported> {
    let Json(req) = body?;
    let link = agent.coordinator_link();
    detached(WORKER, async move {
        agent.instances.export(&id, &req.image_id, &link).await
    })
    .await
    .map(Json)
}

#[cfg(test)]
mod tests {
    //! The routes over HTTP against an agent on libvirt's test driver, its coordinator played
    //! by a local server. The mTLS guard is stood in for by a layer naming the coordinator.

    use crate::identity::{AgentDir, Enrollment};
    use crate::instances::testing::{serve, small_qcow2};
    use crate::libvirt::Libvirt;
    use crate::runtime::Agent;
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use plinth_common::tls::{Ca, LeafSpec, PeerIdentity, Role};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    async fn as_coordinator(mut req: Request, next: Next) -> axum::response::Response {
        req.extensions_mut().insert(PeerIdentity {
            role: Some(Role::Coordinator),
            ..PeerIdentity::default()
        });
        next.run(req).await
    }

    /// An enrolled agent whose coordinator is `coordinator`; answers the API's base URL.
    async fn agent_api(coordinator: &str, data: &std::path::Path) -> String {
        plinth_common::tls::install_crypto_provider();
        let dir = AgentDir::new(data);
        let (ca, _ca_key) = Ca::generate("test region").expect("ca");
        let host_id = plinth_common::ids::new_id("host");
        let mut spec = LeafSpec::new(
            &host_id,
            Role::Agent {
                host_id: host_id.clone(),
            },
            Duration::from_secs(3600),
        );
        spec.client = true;
        let (cert, key) = ca.issue_with_new_key(&spec).expect("leaf");
        std::fs::write(dir.ca(), ca.cert_pem()).expect("ca.pem");
        dir.save_credentials(&cert, &key).expect("credentials");
        dir.save_enrollment(&Enrollment {
            host_id,
            coordinator: coordinator.into(),
            cluster: "c1".into(),
            address: [127, 0, 0, 1].into(),
        })
        .expect("enrollment");
        let agent = Agent::load(
            dir,
            Libvirt::new("test:///default"),
            Duration::from_secs(10),
            crate::config::MigrationUris::default(),
            None,
        )
        .expect("agent");
        let app = super::super::router(Arc::new(agent)).layer(middleware::from_fn(as_coordinator));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn call(
        client: &reqwest::Client,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = client.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("agent answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An agent API on libvirt's test driver whose coordinator serves a small qcow2 as
    /// `img-1`; the id and create body of a new instance booting from it.
    struct Fixture {
        api: String,
        id: String,
        create: Value,
        _coordinator: Arc<crate::instances::testing::FakeCoordinator>,
        data: tempfile::TempDir,
    }

    async fn fixture(admin_password: &str) -> Fixture {
        let base_image = small_qcow2().await;
        let sha = hex::encode(Sha256::digest(&base_image));
        let (coordinator, fake) =
            serve(HashMap::from([("img-1".to_string(), base_image.clone())])).await;
        let data = tempfile::tempdir().expect("tempdir");
        let api = agent_api(&coordinator, data.path()).await;
        let id = plinth_common::ids::new_id("inst");
        let create = json!({
            "instance_id": id, "hostname": "vm-1", "vcpus": 1, "memory_bytes": 128u64 << 20,
            "disk_bytes": 32u64 << 20, "admin_password": admin_password,
            "image": {"id": "img-1", "sha256": sha, "size_bytes": base_image.len(), "format": "qcow2"},
        });
        Fixture {
            api,
            id,
            create,
            _coordinator: fake,
            data,
        }
    }

    #[tokio::test]
    async fn routes_answer_the_contract() {
        use reqwest::Method;
        let f = fixture("not in any answer").await;
        let (api, id, create) = (&f.api, &f.id, &f.create);
        let c = reqwest::Client::new();
        let url = |tail: &str| format!("{api}/v1/instances{tail}");

        let (status, made) = call(&c, Method::POST, url(""), Some(create.clone())).await;
        assert_eq!(status, 200, "{made}");
        assert_eq!(made["state"], "running");
        assert_eq!(made["instance_id"], id.as_str());
        assert!(!made.to_string().contains("not in any answer"));
        let (status, again) = call(&c, Method::POST, url(""), Some(create.clone())).await;
        assert_eq!((status, &again["domain_uuid"]), (200, &made["domain_uuid"]));
        let (status, got) = call(&c, Method::GET, url(&format!("/{id}")), None).await;
        assert_eq!((status, &got["disk_path"]), (200, &made["disk_path"]));

        let stop = Some(json!({"timeout_s": 5}));
        let (status, stopped) = call(&c, Method::POST, url(&format!("/{id}/stop")), stop).await;
        assert_eq!((status, stopped["state"].as_str()), (200, Some("shutoff")));
        let (status, refused) = call(&c, Method::POST, url(&format!("/{id}/reboot")), None).await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"]["code"], "instance_bad_state");
        let (status, started) = call(&c, Method::POST, url(&format!("/{id}/start")), None).await;
        assert_eq!((status, started["state"].as_str()), (200, Some("running")));
        let (status, bad) = call(&c, Method::POST, url(&format!("/{id}/stop")), None).await;
        assert!((400..500).contains(&status), "{status}");
        assert_eq!(bad["error"]["code"], "invalid_request");

        let export = Some(json!({"image_id": "img-2"}));
        let (status, exported) =
            call(&c, Method::POST, url(&format!("/{id}/export")), export).await;
        assert_eq!(
            (status, &exported["image_id"]),
            (200, &json!("img-2")),
            "{exported}"
        );
        let export = Some(json!({"image_id": "refuse-3"}));
        let (status, refused) = call(&c, Method::POST, url(&format!("/{id}/export")), export).await;
        assert_eq!(
            (status, &refused["error"]["code"]),
            (502, &json!("export_upload_failed"))
        );

        let (status, _) = call(&c, Method::DELETE, url(&format!("/{id}")), None).await;
        assert_eq!(status, 204);
        let (status, gone) = call(&c, Method::GET, url(&format!("/{id}")), None).await;
        assert_eq!(
            (status, &gone["error"]["code"]),
            (404, &json!("instance_not_found"))
        );
        let (status, _) = call(&c, Method::DELETE, url(&format!("/{id}")), None).await;
        assert_eq!(status, 204, "deleting what is gone succeeds");

        // A failed step is named in the answer, and leaves no instance.
        let mut wrong = create.clone();
        wrong["image"]["sha256"] = json!("0".repeat(64));
        let (status, failed) = call(&c, Method::POST, url(""), Some(wrong)).await;
        assert_eq!(status, 502, "{failed}");
        assert_eq!(failed["error"]["code"], "image_fetch_failed");
        let message = failed["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("fetching image img-1: the content's SHA-256"),
            "{message}"
        );
        let (status, _) = call(&c, Method::GET, url(&format!("/{id}")), None).await;
        assert_eq!(status, 404);
    }
    #[tokio::test]
    async fn migration_routes_answer_the_contract() {
        use reqwest::Method;
        let f = fixture("pw").await;
        let (api, id, create) = (&f.api, &f.id, &f.create);
        let c = reqwest::Client::new();
        let url = |tail: &str| format!("{api}/v1/instances/{id}{tail}");

        let mut other = create.clone();
        other["instance_id"] = json!("inst-other");
        let (status, body) = call(&c, Method::POST, url("/prepare-migration"), Some(other)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("invalid_request"))
        );
        let (status, prepared) = call(
            &c,
            Method::POST,
            url("/prepare-migration"),
            Some(create.clone()),
        )
        .await;
        assert_eq!(status, 200, "{prepared}");
        let disk = f.data.path().join(format!("instances/{id}/disk.qcow2"));
        assert_eq!(prepared["disk_path"], json!(disk.to_string_lossy()));
        assert_eq!(prepared["iso_path"], Value::Null);
        let (status, again) = call(
            &c,
            Method::POST,
            url("/prepare-migration"),
            Some(create.clone()),
        )
        .await;
        assert_eq!((status, &again), (200, &prepared));
        let (status, none) = call(&c, Method::GET, url("/migration"), None).await;
        assert_eq!((status, &none["state"]), (200, &json!("none")), "{none}");

        let migrate = json!({"dest_uri": "test:///default", "prepared": prepared, "timeout_s": 30});
        let (status, body) = call(&c, Method::POST, url("/migrate"), Some(migrate.clone())).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("instance_not_found"))
        );
        let (status, _) = call(&c, Method::DELETE, url(""), None).await;
        assert_eq!(status, 204, "the prepared files go");
        assert!(!disk.exists());

        let (status, _) = call(
            &c,
            Method::POST,
            format!("{api}/v1/instances"),
            Some(create.clone()),
        )
        .await;
        assert_eq!(status, 200);
        let (status, body) = call(
            &c,
            Method::POST,
            url("/prepare-migration"),
            Some(create.clone()),
        )
        .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (409, &json!("instance_exists"))
        );
        let mut bad = migrate.clone();
        bad["timeout_s"] = json!(0);
        let (status, body) = call(&c, Method::POST, url("/migrate"), Some(bad)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("invalid_request"))
        );

        let (status, started) = call(&c, Method::POST, url("/migrate"), Some(migrate)).await;
        assert_eq!(
            (status, &started["state"]),
            (202, &json!("running")),
            "{started}"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let ended = loop {
            let (status, now) = call(&c, Method::GET, url("/migration"), None).await;
            assert_eq!(status, 200, "{now}");
            if now["state"] != "running" {
                break now;
            }
            assert!(std::time::Instant::now() < deadline, "{now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(ended["state"], "failed", "{ended}");
        assert!(ended["libvirt_ms"].is_u64(), "{ended}");
        let (status, aborted) = call(&c, Method::DELETE, url("/migration"), None).await;
        assert_eq!((status, &aborted), (200, &ended));
        let (status, still) = call(&c, Method::GET, url(""), None).await;
        assert_eq!((status, &still["state"]), (200, &json!("running")));
        let (status, _) = call(&c, Method::DELETE, url(""), None).await;
        assert_eq!(status, 204);
    }
}
