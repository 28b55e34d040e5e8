//! A local HTTP server standing in for the coordinator's image content routes (plain HTTP on
//! 127.0.0.1; the clients under test are injected), and a host of instances on libvirt's test
//! driver whose coordinator it is.

use super::{CoordinatorLink, Instances};
use crate::libvirt::Libvirt;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use plinth_common::api::{AgentCreateInstance, AgentImage};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct FakeCoordinator {
    pub images: HashMap<String, Vec<u8>>,
    pub gets: AtomicUsize,
    /// What `PUT` delivered, by image id. An id starting `refuse-` is answered 409.
    pub uploads: Mutex<HashMap<String, Vec<u8>>>,
}

/// Serves `GET`/`PUT /v1/agent/images/{id}/content`; answers its base URL.
pub async fn serve(images: HashMap<String, Vec<u8>>) -> (String, Arc<FakeCoordinator>) {
    let state = Arc::new(FakeCoordinator {
        images,
        ..FakeCoordinator::default()
    });
    let app = Router::new()
        .route(
            plinth_common::api::agent_routes::coordinator::IMAGE_CONTENT,
            get(content).put(upload),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> (StatusCode, String) {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, body.to_string())
}

async fn content(
    State(st): State<Arc<FakeCoordinator>>,
    Path(id): Path<String>,
) -> Result<Vec<u8>, (StatusCode, String)> {
    st.gets.fetch_add(1, Ordering::SeqCst);
    st.images
        .get(&id)
        .cloned()
        .ok_or_else(|| refusal(StatusCode::NOT_FOUND, "image_not_found", "no image here"))
}

async fn upload(
    State(st): State<Arc<FakeCoordinator>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, (StatusCode, String)> {
    if id.starts_with("refuse-") {
        return Err(refusal(
            StatusCode::CONFLICT,
            "image_not_awaiting_upload",
            "image is available; content can be uploaded once",
        ));
    }
    st.uploads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, body.to_vec());
    Ok(StatusCode::OK)
}

/// The bytes of a real (small, empty) qcow2.
pub async fn small_qcow2() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("base.qcow2");
    super::disk::create_blank(&path, 16 << 20)
        .await
        .expect("qemu-img create");
    std::fs::read(&path).expect("read base")
}

pub struct Host {
    pub instances: Instances,
    pub link: CoordinatorLink,
    pub coordinator: Arc<FakeCoordinator>,
    pub data: tempfile::TempDir,
}

/// A host whose coordinator serves `images` (id → bytes).
pub async fn host(images: HashMap<String, Vec<u8>>) -> Host {
    let (base_url, coordinator) = serve(images).await;
    let data = tempfile::tempdir().expect("tempdir");
    Host {
        instances: Instances::new(Libvirt::new("test:///default"), data.path()),
        link: CoordinatorLink {
            client: reqwest::Client::new(),
            base_url,
        },
        coordinator,
        data,
    }
}

pub fn request(id: &str, image_id: &str, bytes: &[u8], format: &str) -> AgentCreateInstance {
    AgentCreateInstance {
        instance_id: id.into(),
        hostname: "vm-1".into(),
        vcpus: 2,
        memory_bytes: 256 << 20,
        disk_bytes: 64 << 20,
        image: AgentImage {
            id: image_id.into(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size_bytes: bytes.len() as u64,
            format: format.into(),
        },
        admin_password: "correct horse".into(),
        devices: Vec::new(),
        nics: Vec::new(),
    }
}

pub fn new_id() -> String {
    plinth_common::ids::new_id("inst")
}

/// An error with its causes, outermost first.
pub fn err_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    text
}
