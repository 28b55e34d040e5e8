//! Export an instance's disk as a custom image of its tenant (SPEC §5, last bullet): the
//! host's agent flattens the disk with `qemu-img convert` and uploads it; the image goes from
//! `creating` to `available` once the upload is verified like any other.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::images::api::input as image_input;
use crate::images::store::NewImageRow;
use crate::instances::api::find;
use crate::instances::jobs as job;
use crate::jobs::operations::NewOperation;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use plinth_common::api::{ErrorBody, ExportInstance, Image};
use plinth_common::ids::new_id;
use plinth_common::image::{ImageKind, ImageStatus, ImageType, Visibility};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/instances/{id}/export-image", post(export))
}

const GIB: u64 = 1 << 30;

#[utoipa::path(post, path = "/v1/instances/{id}/export-image", params(("id" = String, Path, description = "instance id")), tag = "instances", security(("bearer" = [])),
    request_body = ExportInstance,
    responses((status = 202, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn export(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ExportInstance>,
) -> ApiResult<(StatusCode, ApiJson<Image>)> {
    let name = image_input::name("name", &req.name)?;
    let inst = find(&st, &caller, &id).await?.instance;
    if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped)
        || inst.host_id.is_none()
    {
        return Err(ApiError::Conflict {
            code: "invalid_instance_state",
            message: format!(
                "instance {id} is {}{}; only a running or stopped instance on a host can be exported",
                inst.state,
                if inst.host_id.is_none() {
                    " and unplaced"
                } else {
                    ""
                }
            ),
        });
    }
    // The export describes the same system as the image the instance came from.
    let source = match &inst.image_id {
        Some(image) => st.store.image(image).await?.map(|r| r.image),
        None => None,
    };
    let (image_id, op_id, now) = (new_id("img"), new_id("op"), now_ms());
    let target_gb = u32::try_from(inst.disk_bytes.div_ceil(GIB)).unwrap_or(u32::MAX);
    let note = format!("exported from instance {id}");
    let row = NewImageRow {
        id: &image_id,
        name: &name,
        kind: ImageKind::Custom,
        image_type: ImageType::Image,
        iso_purpose: None,
        visibility: Visibility::Private,
        owner_tenant_id: Some(&inst.tenant_id),
        note: &note,
        os_type: source.as_ref().and_then(|s| s.os_type),
        architecture: source.as_ref().and_then(|s| s.architecture),
        platform: source.as_ref().and_then(|s| s.platform.as_deref()),
        version: source.as_ref().and_then(|s| s.version.as_deref()),
        target_size_gb: Some(target_gb),
        expected_sha256: None,
        source_url: None,
        source_url_sealed: None,
        status: ImageStatus::Creating,
        operation_id: Some(&op_id),
        exported_from: Some(&id),
        now,
    };
    let op = NewOperation {
        id: &op_id,
        kind: job::EXPORT,
        target_id: &image_id,
        owner_tenant_id: Some(&inst.tenant_id),
        now,
    };
    st.store.create_image(&row, &[], Some(&op)).await?;
    st.store
        .audit(
            &caller.actor(),
            "export instance",
            &id,
            &format!("to image {image_id}"),
        )
        .await?;
    st.jobs.spawn(
        "instance export",
        job::export(st.clone(), id, image_id.clone(), op_id),
    );
    let image = image_input::reload(&st, &image_id).await?.image;
    Ok((StatusCode::ACCEPTED, ApiJson(image)))
}
