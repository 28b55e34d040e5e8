//! How `plinth images` and `plinth recycle-bin` show images, links and batch results as
//! text (`--json` prints the API's answer instead).

use crate::format::{ago, or_dash, size, when};
use crate::paging::footer;
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
    value.map_or_else(|| "-".to_string(), |b| format!("{} ({b} bytes)", size(b)))
}

/// `192 KiB`, or `-`.
fn short_size(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), size)
}

/// The owning tenant as the seed shows it, `a@example.com (t-1)`; its id alone when the email
/// is not known; `-` for base images.
fn owner(image: &Image) -> String {
    match (
        image.owner_email.as_deref(),
        image.owner_tenant_id.as_deref(),
    ) {
        (Some(email), Some(id)) => format!("{email} ({id})"),
        (None, id) => or_dash(id),
        (Some(email), None) => email.to_string(),
    }
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
            owner(i),
            os(i),
            short_size(i.size_bytes),
            ago(Some(&i.created_at)),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "images", more)
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
        ("owner", owner(i)),
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
        "image {} is now {} ({}, {}, virtual {})\n",
        i.id,
        i.status,
        or_dash(i.format.as_deref()),
        short_size(i.size_bytes),
        short_size(i.virtual_size_bytes),
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

pub(crate) fn render_bin(page: &ImagePage) -> String {
    if page.total == 0 {
        return "the recycle bin is empty\n".to_string();
    }
    let mut table = Table::new(&["id", "name", "owner", "type", "size", "deleted"]);
    for i in &page.items {
        table.row(vec![
            i.id.clone(),
            i.name.clone(),
            owner(i),
            i.image_type.to_string(),
            short_size(i.size_bytes),
            ago(i.deleted_at.as_deref()),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "deleted images", more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(owner: Option<(&str, &str)>, size: u64) -> Image {
        serde_json::from_value(serde_json::json!({
            "id": "img-1", "name": "blank", "kind": if owner.is_some() { "custom" } else { "base" },
            "type": "image", "visibility": "private",
            "owner_tenant_id": owner.map(|o| o.1), "owner_email": owner.map(|o| o.0),
            "tags": [], "note": "", "virtualization": "kvm", "status": "available",
            "size_bytes": size, "virtual_size_bytes": 64u64 << 20,
            "created_at": "2026-05-01T10:00:00Z", "updated_at": "2026-05-01T10:00:00Z"
        }))
        .expect("an image")
    }

    #[test]
    fn the_list_shows_the_owner_by_email_and_id_and_small_sizes_with_their_unit() {
        let page = ImagePage {
            items: vec![
                image(Some(("a@example.com", "t-1")), 196_608),
                image(None, 2 << 30),
            ],
            total: 2,
            next_cursor: None,
        };
        let text = render_page(&page);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("OWNER") && lines[0].contains("SIZE"),
            "{text}"
        );
        assert!(
            lines[1].contains("a@example.com (t-1)") && lines[1].contains("192 KiB"),
            "{text}"
        );
        assert!(
            lines[2].contains("2.0 GiB") && !lines[2].contains("0.0"),
            "{text}"
        );
        assert!(text.ends_with("2 of 2 images\n"), "{text}");
    }

    #[test]
    fn details_show_the_owner_and_sizes_with_their_unit() {
        let text = render_image(&image(Some(("a@example.com", "t-1")), 512));
        assert!(text.contains("a@example.com (t-1)"), "{text}");
        assert!(text.contains("512 B (512 bytes)"), "{text}");
        assert!(text.contains("64 MiB (67108864 bytes)"), "{text}");
        // A tenant id without an email (an older coordinator) still shows.
        let mut older = image(Some(("a@example.com", "t-1")), 512);
        older.owner_email = None;
        assert!(render_image(&older).contains("owner:"), "{text}");
        assert!(render_image(&older).contains("t-1"), "{text}");
        assert!(render_ready(&older).contains("512 B, virtual 64 MiB"));
    }
}
