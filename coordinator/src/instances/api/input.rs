//! Checks of a create request, field by field; each failure names its field and changes nothing.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;
use plinth_common::api::{Image, NewInstance};
use plinth_common::ids::validate_slug;
use plinth_common::image::{ImageStatus, ImageType, IsoPurpose};
use plinth_common::instance::{
    MAX_DISK_BYTES, MAX_MEMORY_BYTES, MAX_PASSWORD_LEN, MAX_VCPUS, MIN_MEMORY_BYTES,
    MIN_PASSWORD_LEN,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The empty disk in front of an OS ISO, when the request names no size.
const DEFAULT_ISO_DISK_BYTES: u64 = 20 * GIB;

/// What a valid create request resolved to.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub name: String,
    pub tenant_id: String,
    pub tenant_email: String,
    pub disk_bytes: u64,
}

fn whole_mib(field: &'static str, bytes: u64) -> ApiResult<()> {
    if !bytes.is_multiple_of(MIB) {
        return Err(ApiError::field(field, "must be a whole number of MiB"));
    }
    Ok(())
}

pub async fn check_new(st: &AppState, caller: &Caller, req: &NewInstance) -> ApiResult<CreatePlan> {
    validate_slug("name", &req.name).map_err(|m| ApiError::field("name", m))?;
    let tenant_id = match (caller.tenant_id(), &req.tenant_id) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::Forbidden(
                "a tenant creates instances in its own tenant only".into(),
            ));
        }
        (Some(own), _) => own.to_string(),
        (None, Some(asked)) => asked.clone(),
        (None, None) => {
            return Err(ApiError::field(
                "tenant_id",
                "an admin must name the tenant the instance belongs to",
            ));
        }
    };
    let tenant = st
        .store
        .get_tenant(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::field("tenant_id", format!("no tenant {tenant_id}")))?;
    if req.vcpus == 0 || req.vcpus > MAX_VCPUS {
        return Err(ApiError::field("vcpus", format!("must be 1-{MAX_VCPUS}")));
    }
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&req.memory_bytes) {
        return Err(ApiError::field(
            "memory_bytes",
            format!("must be {MIN_MEMORY_BYTES}-{MAX_MEMORY_BYTES}"),
        ));
    }
    whole_mib("memory_bytes", req.memory_bytes)?;
    let pw = &req.admin_password;
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&pw.chars().count())
        || pw.chars().any(char::is_control)
    {
        return Err(ApiError::field(
            "admin_password",
            format!("must be {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} printable characters"),
        ));
    }
    if let Some(gpu) = &req.gpu_type
        && (gpu.is_empty() || gpu.len() > 64 || gpu.chars().any(|c| c.is_control()))
    {
        return Err(ApiError::field(
            "gpu_type",
            "must be 1-64 printable characters",
        ));
    }
    if let Some(cluster) = &req.cluster_id
        && !st.store.cluster_exists(cluster).await?
    {
        return Err(ApiError::field(
            "cluster_id",
            format!("no cluster {cluster}"),
        ));
    }
    let image = st
        .store
        .image(&req.image_id)
        .await?
        .map(|r| r.image)
        .filter(|i| crate::images::usable_by(&tenant_id, i))
        .ok_or_else(|| {
            ApiError::field(
                "image_id",
                format!("no image {} that the tenant may use", req.image_id),
            )
        })?;
    let disk_bytes = disk_size(&image, req.disk_bytes)?;
    Ok(CreatePlan {
        name: req.name.clone(),
        tenant_id,
        tenant_email: tenant.email,
        disk_bytes,
    })
}

/// The disk the instance gets: as asked, or the image's target size (at least its virtual size).
fn disk_size(image: &Image, asked: Option<u64>) -> ApiResult<u64> {
    if image.status != ImageStatus::Available || image.deleted_at.is_some() {
        return Err(ApiError::field(
            "image_id",
            format!("image {} is {}, not available", image.id, image.status),
        ));
    }
    if image.image_type == ImageType::Iso && image.iso_purpose != Some(IsoPurpose::Os) {
        return Err(ApiError::field(
            "image_id",
            format!(
                "image {} is a tool ISO, which cannot boot an instance",
                image.id
            ),
        ));
    }
    let virtual_size = match image.image_type {
        ImageType::Iso => 0,
        ImageType::Image => image.virtual_size_bytes.unwrap_or(0),
    };
    let target = u64::from(image.target_size_gb.unwrap_or(0)) * GIB;
    let size = match asked {
        Some(size) => size,
        None if image.image_type == ImageType::Iso => target.max(DEFAULT_ISO_DISK_BYTES),
        None => target.max(virtual_size).div_ceil(MIB) * MIB,
    };
    if size < virtual_size.max(MIB) {
        return Err(ApiError::field(
            "disk_bytes",
            format!(
                "must be at least the image's virtual size, {} bytes",
                virtual_size.max(MIB)
            ),
        ));
    }
    if size > MAX_DISK_BYTES {
        return Err(ApiError::field(
            "disk_bytes",
            format!("must be at most {MAX_DISK_BYTES}"),
        ));
    }
    whole_mib("disk_bytes", size)?;
    Ok(size)
}
