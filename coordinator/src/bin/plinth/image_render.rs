//! How `plinth images` and `plinth recycle-bin` show images, links and batch results as
//! text (`--json` prints the API's answer instead).

use crate::format::{ago, gib, or_dash, when};
use crate::table::{Table, key_values};
use plinth_common::api::{BatchItem, DownloadLink, Image, ImagePage};
use plinth_common::image::{Architecture, OsType};

/// `centos 7.9 x86_64`, from what is known; `-` when nothing is.
fn os(image: &Image) -> String {
    let parts: Vec<&str> = [
        image.platform.as_deref(),
        image.version.as_deref(),
        image.architecture.map(Architecture::as_str),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect();
    or_dash(Some(&parts.join(" ")))
}

/// `1.0 GiB (1073741824 bytes)`, or `-`.
fn bytes(value: Option<u64>) -> String {
    value.map_or_else(
        || "-".to_string(),
        |b| format!("{} GiB ({b} bytes)", gib(b)),
    )
}

fn image_type(image: &Image) -> String {
    match image.iso_purpose {
        Some(purpose) => format!("{} ({purpose})", image.image_type),
        None => image.image_type.to_string(),
    }
}

pub(crate) fn render_page(page: &ImagePage) -> String {
    let mut table = Table::new(&[
        "id",
        "name",
        "kind",
        "type",
        "status",
        "visibility",
        "owner",
        "os",
        "size",
        "created",
    ]);
    for i in &page.items {
        table.row(vec![
            i.id.clone(),
            i.name.clone(),
            i.kind.to_string(),
            i.image_type.to_string(),
            i.status.to_string(),
            i.visibility.to_string(),
            or_dash(i.owner_tenant_id.as_deref()),
            os(i),
            i.size_bytes.map_or_else(|| "-".to_string(), gib),
            ago(Some(&i.created_at)),
        ]);
    }
    format!(
        "{}{} of {} images\n",
        table.render(),
        page.items.len(),
        page.total
    )
}

pub(crate) fn render_image(i: &Image) -> String {
    let mut pairs = vec![
        ("id", i.id.clone()),
        ("name", i.name.clone()),
        ("kind", i.kind.to_string()),
        ("type", image_type(i)),
        ("status", i.status.to_string()),
        ("failure reason", or_dash(i.failure_reason.as_deref())),
        ("visibility", i.visibility.to_string()),
        ("owner", or_dash(i.owner_tenant_id.as_deref())),
        ("os type", or_dash(i.os_type.map(OsType::as_str))),
        ("os", os(i)),
        ("format", or_dash(i.format.as_deref())),
        ("virtualization", or_dash(Some(&i.virtualization))),
        ("size", bytes(i.size_bytes)),
        ("virtual size", bytes(i.virtual_size_bytes)),
        (
            "target size",
            i.target_size_gb
                .map_or_else(|| "-".to_string(), |gb| format!("{gb} GB")),
        ),
        ("sha256", or_dash(i.sha256.as_deref())),
        ("source url", or_dash(i.source_url.as_deref())),
        ("tags", or_dash(Some(&i.tags.join(", ")))),
        ("note", or_dash(Some(&i.note))),
        ("operation", or_dash(i.operation_id.as_deref())),
        ("created", when(Some(&i.created_at))),
        ("updated", when(Some(&i.updated_at))),
    ];
    if let Some(deleted) = &i.deleted_at {
        pairs.push(("deleted", when(Some(deleted))));
    }
    key_values(&pairs)
}

pub(crate) fn render_started(i: &Image) -> String {
    format!(
        "{}\nFollow it with `plinth images show {}`, or pass --wait.\n",
        key_values(&[
            ("id", i.id.clone()),
            ("name", i.name.clone()),
            ("kind", i.kind.to_string()),
            ("status", i.status.to_string()),
            ("operation", or_dash(i.operation_id.as_deref())),
        ]),
        i.id
    )
}

pub(crate) fn render_ready(i: &Image) -> String {
    format!(
        "image {} is now {} ({}, {} GiB, virtual {} GiB)\n",
        i.id,
        i.status,
        or_dash(i.format.as_deref()),
        i.size_bytes.map_or_else(|| "-".to_string(), gib),
        i.virtual_size_bytes.map_or_else(|| "-".to_string(), gib),
    )
}

pub(crate) fn render_link(link: &DownloadLink) -> String {
    let pairs = [
        ("url", link.url.clone()),
        ("expires", when(Some(&link.expires_at))),
    ];
    format!(
        "{}\nThe link needs no token; downloads resume where they stopped:\n  \
         curl --cacert <region CA> -C - -o FILE '{}'\n",
        key_values(&pairs),
        link.url
    )
}

pub(crate) fn render_batch(items: &[BatchItem]) -> String {
    let mut table = Table::new(&["id", "result", "error"]);
    for item in items {
        let result = if item.deleted { "deleted" } else { "failed" };
        let error = item.error.as_ref().map_or_else(
            || "-".to_string(),
            |e| format!("{} ({})", e.message, e.code),
        );
        table.row(vec![item.id.clone(), result.to_string(), error]);
    }
    table.render()
}

pub(crate) fn render_bin(images: &[Image]) -> String {
    if images.is_empty() {
        return "the recycle bin is empty\n".to_string();
    }
    let mut table = Table::new(&["id", "name", "owner", "type", "size", "deleted"]);
    for i in images {
        table.row(vec![
            i.id.clone(),
            i.name.clone(),
            or_dash(i.owner_tenant_id.as_deref()),
            i.image_type.to_string(),
            i.size_bytes.map_or_else(|| "-".to_string(), gib),
            ago(i.deleted_at.as_deref()),
        ]);
    }
    table.render()
}
