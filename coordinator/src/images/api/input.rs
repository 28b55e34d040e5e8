//! Checks on what image requests bring, and who may see or change an image. Every refusal
//! names the field; nothing is written before all checks pass.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::text::{NAME, NOTE, text, url_length};
use crate::state::AppState;
use plinth_common::api::{Image, NewImage};
use plinth_common::image::{ImageKind, ImageType, TARGET_SIZE_GB, Visibility, check_os};
use plinth_common::text::check;

/// Whether `caller` may see `image`: admins all; a tenant its own images and the featured and
/// public base images.
pub fn visible(caller: &Caller, image: &Image) -> bool {
    match caller.tenant_id() {
        None => true,
        Some(tenant) => {
            image.owner_tenant_id.as_deref() == Some(tenant)
                || (image.kind == ImageKind::Base
                    && matches!(image.visibility, Visibility::Featured | Visibility::Public))
        }
    }
}

/// Whether `caller` may change or delete `image`: admins all; a tenant its own custom images.
pub fn modifiable(caller: &Caller, image: &Image) -> bool {
    match caller.tenant_id() {
        None => true,
        Some(tenant) => {
            image.kind == ImageKind::Custom && image.owner_tenant_id.as_deref() == Some(tenant)
        }
    }
}

/// The image if the caller may see it; a 404 otherwise (tenants learn nothing of others').
pub async fn find(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<crate::images::store::ImageRecord> {
    let rec = st.store.image(id).await?;
    rec.filter(|r| visible(caller, &r.image))
        .ok_or_else(|| ApiError::not_found("image", id))
}

/// The image as stored now (after a change), for the response.
pub async fn reload(st: &AppState, id: &str) -> ApiResult<crate::images::store::ImageRecord> {
    st.store
        .image(id)
        .await?
        .ok_or_else(|| ApiError::not_found("image", id))
}

pub fn name(field: &'static str, value: &str) -> ApiResult<String> {
    text(field, NAME, value)
}

pub fn note(value: &str) -> ApiResult<()> {
    text("note", NOTE, value).map(drop)
}

pub fn tags(values: &[String]) -> ApiResult<Vec<String>> {
    if values.len() > 20 {
        return Err(ApiError::field("tags", "at most 20 tags"));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in values {
        let t = check(NAME, tag)
            .map_err(|m| ApiError::field("tags", format!("tag {} {m}", out.len() + 1)))?;
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

pub fn visibility(caller: &Caller, v: Visibility) -> ApiResult<()> {
    if v == Visibility::Featured && caller.tenant_id().is_some() {
        return Err(ApiError::field(
            "visibility",
            "only admins can feature an image",
        ));
    }
    Ok(())
}

/// Validates a new image's declaration; returns the owning tenant, name and tags.
pub async fn new_image(
    st: &AppState,
    caller: &Caller,
    img: &NewImage,
) -> ApiResult<(String, String, Vec<String>)> {
    let name = name("name", &img.name)?;
    note(&img.note)?;
    let tenant = match (caller.tenant_id(), img.tenant_id.as_deref()) {
        (None, None) => {
            return Err(ApiError::field(
                "tenant_id",
                "admins import for a tenant: name it",
            ));
        }
        (None, Some(t)) => t.to_string(),
        (Some(own), None) => own.to_string(),
        (Some(own), Some(t)) if t == own => own.to_string(),
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "tenant_id",
                "a tenant imports for itself only",
            ));
        }
    };
    if st.store.get_tenant(&tenant).await?.is_none() {
        return Err(ApiError::field(
            "tenant_id",
            format!("tenant {tenant} does not exist"),
        ));
    }
    match (img.image_type, img.iso_purpose) {
        (ImageType::Iso, None) => {
            return Err(ApiError::field(
                "iso_purpose",
                "an ISO needs a purpose: os or tool",
            ));
        }
        (ImageType::Image, Some(_)) => {
            return Err(ApiError::field("iso_purpose", "only ISOs have a purpose"));
        }
        _ => {}
    }
    check_os(img.os_type, img.architecture, &img.platform, &img.version)
        .map_err(|(field, m)| ApiError::field(field, m))?;
    if !TARGET_SIZE_GB.contains(&img.target_size_gb) {
        return Err(ApiError::field(
            "target_size_gb",
            format!(
                "must be {}-{} (GiB), got {}",
                TARGET_SIZE_GB.start(),
                TARGET_SIZE_GB.end(),
                img.target_size_gb
            ),
        ));
    }
    if let Some(sha) = &img.sha256
        && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::field("sha256", "must be 64 hexadecimal digits"));
    }
    visibility(caller, img.visibility)?;
    Ok((tenant, name, tags(&img.tags)?))
}

/// An import URL: http, https or ftp, with a host and a path.
pub fn import_url(text: &str) -> ApiResult<reqwest::Url> {
    url_length("url", text.trim())?;
    let url: reqwest::Url = text
        .trim()
        .parse()
        .map_err(|_| ApiError::field("url", "is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https" | "ftp") {
        return Err(ApiError::field(
            "url",
            format!(
                "{} URLs cannot be imported (http, https or ftp)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::field("url", "has no host"));
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err(ApiError::field("url", "names no file"));
    }
    // Parsing percent-encodes what needs it, which can make a URL longer.
    url_length("url", url.as_str())?;
    Ok(url)
}
