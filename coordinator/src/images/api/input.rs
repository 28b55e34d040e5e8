//! Checks on what image requests bring, and who may see or change an image. Every refusal
//! names the field; nothing is written before all checks pass.

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::paging::{self, PageRequest};
use crate::http::text::{NAME, NOTE, text, url_length};
use crate::images::ImageChanges;
use crate::images::create::Checked;
use crate::images::store::ImageFilter;
use crate::state::AppState;
use plinth_common::api::{NewImage, UpdateImage};
use plinth_common::image::{
    ImageKind, ImageStatus, ImageType, OsType, TARGET_SIZE_GB, Visibility, check_os,
};
use plinth_common::text::check;
use serde::Deserialize;
use utoipa::IntoParams;

/// The image as stored now (after a change), for the response. (Kept for the instance export,
/// which reads back the image it made.)
pub async fn reload(st: &AppState, id: &str) -> ApiResult<crate::images::store::ImageRecord> {
    Ok(crate::images::reload(st, id).await?)
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

/// Only admins feature images (a 400 naming the field, as for any value the caller may not
/// give; see `Visibility::settable_by`).
pub fn visibility(caller: &Caller, v: Visibility) -> ApiResult<()> {
    if !v.settable_by(crate::images::viewer(caller)) {
        return Err(ApiError::field(
            "visibility",
            "only admins can feature an image",
        ));
    }
    Ok(())
}

/// Validates a new image's declaration; returns the owning tenant, name and tags.
pub async fn new_image(st: &AppState, caller: &Caller, img: &NewImage) -> ApiResult<Checked> {
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
    Ok(Checked {
        tenant,
        name,
        tags: tags(&img.tags)?,
    })
}

/// An edit's fields, checked; naming one that never changes is refused.
pub fn changes(caller: &Caller, req: UpdateImage) -> ApiResult<ImageChanges> {
    for (field, present) in [
        ("source_url", req.source_url.is_some()),
        ("format", req.format.is_some()),
        ("virtualization", req.virtualization.is_some()),
    ] {
        if present {
            return Err(ApiError::field(field, "cannot be changed"));
        }
    }
    if let Some(note) = &req.note {
        self::note(note)?;
    }
    if let Some(v) = req.visibility {
        visibility(caller, v)?;
    }
    Ok(ImageChanges {
        name: req.name.as_deref().map(|n| name("name", n)).transpose()?,
        note: req.note,
        tags: req.tags.as_deref().map(tags).transpose()?,
        visibility: req.visibility,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    /// base or custom.
    kind: Option<String>,
    /// image or iso.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    image_type: Option<String>,
    visibility: Option<String>,
    status: Option<String>,
    os_type: Option<String>,
    tag: Option<String>,
    /// Substring of name, id or platform.
    q: Option<String>,
    /// Images on the page, 1-1000 (default 100).
    limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    cursor: Option<String>,
}

fn enum_param<T>(
    field: &'static str,
    value: Option<String>,
    parse: fn(&str) -> Option<T>,
    choices: String,
) -> ApiResult<Option<T>> {
    value
        .map(|v| {
            parse(&v)
                .ok_or_else(|| ApiError::field(field, format!("'{v}' is not one of {choices}")))
        })
        .transpose()
}

/// A list query as a filter (the viewer is the caller's, set by the operation) and the page
/// asked for (images are listed newest first).
pub fn filter(q: ImageQuery) -> ApiResult<(ImageFilter, PageRequest<i64>)> {
    let page = paging::request("images", q.limit, q.cursor.as_deref())?;
    let filter = ImageFilter {
        kind: enum_param("kind", q.kind, ImageKind::parse, ImageKind::choices())?,
        image_type: enum_param("type", q.image_type, ImageType::parse, ImageType::choices())?,
        visibility: enum_param(
            "visibility",
            q.visibility,
            Visibility::parse,
            Visibility::choices(),
        )?,
        status: enum_param(
            "status",
            q.status,
            ImageStatus::parse,
            ImageStatus::choices(),
        )?,
        os_type: enum_param("os_type", q.os_type, OsType::parse, OsType::choices())?,
        tag: q.tag,
        q: q.q,
        viewer_tenant: None,
        limit: page.fetch(),
        after: page.after.clone(),
    };
    Ok((filter, page))
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
