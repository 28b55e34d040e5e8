//! Images and long-running operations as the API shows them (SPEC §5, §7).

use crate::api::ErrorDetail;
use crate::image::{
    Architecture, ImageKind, ImageStatus, ImageType, IsoPurpose, OsType, Viewer, Visibility,
    visible_to,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub kind: ImageKind,
    #[serde(rename = "type")]
    pub image_type: ImageType,
    /// ISOs only: `os` can boot an instance, `tool` cannot.
    pub iso_purpose: Option<IsoPurpose>,
    pub visibility: Visibility,
    /// The owning tenant of a custom image; none for base images.
    pub owner_tenant_id: Option<String>,
    /// The owning tenant's email, beside its id; none for base images.
    #[serde(default)]
    pub owner_email: Option<String>,
    pub tags: Vec<String>,
    pub note: String,
    pub os_type: Option<OsType>,
    pub architecture: Option<Architecture>,
    pub platform: Option<String>,
    pub version: Option<String>,
    /// `qcow2` or `iso` once verified.
    pub format: Option<String>,
    pub virtualization: String,
    pub size_bytes: Option<u64>,
    pub virtual_size_bytes: Option<u64>,
    pub target_size_gb: Option<u32>,
    pub sha256: Option<String>,
    /// Where it was imported from, with any password replaced by `***`.
    pub source_url: Option<String>,
    pub status: ImageStatus,
    /// Why an import failed.
    pub failure_reason: Option<String>,
    /// The operation that is filling or copying it.
    pub operation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Set while the image is in its tenant's recycle bin.
    pub deleted_at: Option<String>,
}

impl Image {
    /// Whether `viewer` may list, read and boot from this image: the one rule,
    /// [`crate::image::visible_to`], whatever the image's kind.
    pub fn visible_to(&self, viewer: Viewer<'_>) -> bool {
        visible_to(self.visibility, self.owner_tenant_id.as_deref(), viewer)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImagePage {
    pub items: Vec<Image>,
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// What an import (`POST /v1/images/import`, with `url`) or an upload (`POST /v1/images`,
/// without) declares about the image it brings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    /// Imports only: `http://`, `https://` or `ftp://[user:password@]host[:port]/path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub name: String,
    #[serde(default)]
    pub note: String,
    /// The owning tenant; admins must name one, tenants may only name themselves.
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(rename = "type", default = "default_type")]
    pub image_type: ImageType,
    #[serde(default)]
    pub iso_purpose: Option<IsoPurpose>,
    pub os_type: OsType,
    pub architecture: Architecture,
    pub platform: String,
    pub version: String,
    /// 20-500 (GiB); the image's virtual size must fit.
    pub target_size_gb: u32,
    /// Hex SHA-256 the downloaded bytes must have.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_type() -> ImageType {
    ImageType::Image
}

fn default_visibility() -> Visibility {
    Visibility::Private
}

/// A client's way to write an import body: the URL beside the declaration (the same JSON as
/// a `NewImage` with `url`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportImage {
    pub url: String,
    #[serde(flatten)]
    pub image: NewImage,
}

/// `PATCH /v1/images/{id}`: name, note, tags and visibility can change in any status.
/// `source_url`, `format` and `virtualization` never change: naming them is a 400.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateImage {
    pub name: Option<String>,
    pub note: Option<String>,
    pub tags: Option<Vec<String>>,
    pub visibility: Option<Visibility>,
    #[schema(value_type = Option<String>)]
    pub source_url: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub format: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub virtualization: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyToBase {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DownloadLink {
    /// Signed URL; `GET` needs no token and supports `Range`.
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchDelete {
    pub ids: Vec<String>,
}

/// One image's outcome in a batch delete.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    pub id: String,
    pub deleted: bool,
    pub error: Option<ErrorDetail>,
}
