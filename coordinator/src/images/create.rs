//! Where images come from: an import from a URL, a declaration awaiting an upload, a copy of a
//! custom image into a base image, and an instance's export. Each writes the row in the status
//! its machine starts in, with the operation that will fill it, then audits and starts the job.

use crate::http::auth::Caller;
use crate::images::error::ImageError;
use crate::images::store::NewImageRow;
use crate::images::{COPY, IMPORT, UPLOAD, copy, find, import, redact_url, reload};
use crate::jobs::operations::NewOperation;
use crate::state::AppState;
use plinth_common::api::{Image, NewImage};
use plinth_common::ids::new_id;
use plinth_common::image::{ImageKind, ImageStatus};
use plinth_common::timefmt::now_ms;

/// A new image's declaration after its checks (`api::input::new_image`): the owning tenant, the
/// trimmed name and the tags without duplicates.
#[derive(Debug, Clone)]
pub struct Checked {
    pub tenant: String,
    pub name: String,
    pub tags: Vec<String>,
}

/// Starts an import of `url` into a new custom image; the job runs on after this returns.
pub async fn import(
    st: &AppState,
    caller: &Caller,
    img: &NewImage,
    checked: Checked,
    url: reqwest::Url,
) -> Result<Image, ImageError> {
    let image = start_image(st, caller, img, checked, Some(&url), IMPORT).await?;
    let op_id = image.operation_id.clone().unwrap_or_default();
    let job = import::run(st.clone(), image.id.clone(), op_id.clone());
    crate::jobs::lease::run(st, &op_id, "image import", job);
    Ok(image)
}

/// Declares a custom image whose content comes by upload (`transfer::upload`).
pub async fn declare_upload(
    st: &AppState,
    caller: &Caller,
    img: &NewImage,
    checked: Checked,
) -> Result<Image, ImageError> {
    start_image(st, caller, img, checked, None, UPLOAD).await
}

/// Writes a new custom image in `importing` with the operation that will fill it.
async fn start_image(
    st: &AppState,
    caller: &Caller,
    img: &NewImage,
    checked: Checked,
    url: Option<&reqwest::Url>,
    op_kind: &str,
) -> Result<Image, ImageError> {
    let Checked { tenant, name, tags } = checked;
    let id = new_id("img");
    let op_id = new_id("op");
    let now = now_ms();
    let sealed = url
        .map(|u| st.images.secrets.seal(u.as_str()))
        .transpose()
        .map_err(|e| ImageError::Internal(e.into()))?;
    let shown = url.map(redact_url);
    let sha = img.sha256.as_ref().map(|s| s.to_lowercase());
    let row = NewImageRow {
        id: &id,
        name: &name,
        kind: ImageKind::Custom,
        image_type: img.image_type,
        iso_purpose: img.iso_purpose,
        visibility: img.visibility,
        owner_tenant_id: Some(&tenant),
        note: &img.note,
        os_type: Some(img.os_type),
        architecture: Some(img.architecture),
        platform: Some(img.platform.trim()),
        version: Some(img.version.trim()),
        target_size_gb: Some(img.target_size_gb),
        expected_sha256: sha.as_deref(),
        source_url: shown.as_deref(),
        source_url_sealed: sealed.as_deref(),
        status: ImageStatus::Importing,
        operation_id: Some(&op_id),
        exported_from: None,
        now,
    };
    let op = NewOperation {
        id: &op_id,
        kind: op_kind,
        target_id: &id,
        owner_tenant_id: Some(&tenant),
        now,
    };
    st.store.create_image(&row, &tags, Some(&op)).await?;
    let detail = shown.as_deref().unwrap_or("upload");
    st.store
        .audit(&caller.actor(), op_kind, &id, detail)
        .await?;
    Ok(reload(st, &id).await?.image)
}

/// Copies an available custom image into a new base image (`making` until its blob is copied).
pub async fn copy_to_base(
    st: &AppState,
    admin: &Caller,
    id: &str,
    name: String,
) -> Result<Image, ImageError> {
    let rec = find(st, admin, id).await?;
    let blob = match (
        rec.image.kind,
        rec.image.status,
        &rec.blob_id,
        &rec.image.deleted_at,
    ) {
        (ImageKind::Custom, ImageStatus::Available, Some(blob), None) => blob.clone(),
        _ => {
            return Err(ImageError::NotCopyable {
                id: id.to_string(),
                kind: rec.image.kind,
                status: rec.image.status,
            });
        }
    };
    let new_image = new_id("img");
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: COPY,
        target_id: &new_image,
        owner_tenant_id: None,
        now: now_ms(),
    };
    st.store
        .create_base_copy(&rec.image, &new_image, &name, &op)
        .await?;
    st.store
        .audit(
            &admin.actor(),
            "copy to base",
            &new_image,
            &format!("from {id}"),
        )
        .await?;
    let created = reload(st, &new_image).await?;
    let job = copy::run(st.clone(), blob, new_image, op_id.clone());
    crate::jobs::lease::run(st, &op_id, "image copy", job);
    Ok(created.image)
}

/// Writes the image an instance export fills (`creating`, with operation `op` of the export's
/// kind); the export's own job, in `instances`, then asks the agent for the disk. `row.status`
/// must be `creating`: it is the only status an export starts in.
pub async fn create_export(
    st: &AppState,
    row: &NewImageRow<'_>,
    op: &NewOperation<'_>,
) -> Result<Image, ImageError> {
    let row = NewImageRow {
        status: ImageStatus::Creating,
        ..row.clone()
    };
    st.store.create_image(&row, &[], Some(op)).await?;
    Ok(reload(st, row.id).await?.image)
}
