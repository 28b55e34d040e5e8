//! Images: rows, tags, and listing with visibility. Status changes are in `status.rs` (the
//! one compare-and-swap), the content-writer mark in `content.rs`.

pub mod content;
pub mod status;

pub use status::{ImageTransitionError, Moved, OpEnd, StatusEffect};

use crate::db::{Keyed, Order, QueryBuilder, Store, StoreError, push_after, push_order};
use crate::jobs::operations::NewOperation;
use plinth_common::api::Image;
use plinth_common::image::{
    Architecture, ImageKind, ImageStatus, ImageType, IsoPurpose, OsType, Visibility,
};
use plinth_common::timefmt::rfc3339;
use std::collections::HashMap;

const COLUMNS: &str = "id, name, kind, image_type, iso_purpose, visibility, owner_tenant_id, note, \
    os_type, architecture, platform, version, format, virtualization, size_bytes, virtual_size_bytes, \
    target_size_gb, sha256, expected_sha256, source_url, source_url_sealed, blob_id, pending_blob_id, status, \
    status_before_delete, failure_reason, operation_id, created_at, updated_at, deleted_at, \
    (SELECT email FROM tenants WHERE tenants.id = images.owner_tenant_id) AS owner_email";

/// An image with what only the coordinator sees.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub image: Image,
    pub blob_id: Option<String>,
    /// The blob a content writer is putting in place (its mark; see `images::writer`).
    pub pending_blob_id: Option<String>,
    pub expected_sha256: Option<String>,
    pub source_url_sealed: Option<String>,
    /// In the recycle bin: the status a restore returns to.
    pub status_before_delete: Option<ImageStatus>,
}

/// A new image row.
#[derive(Debug, Clone)]
pub struct NewImageRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: ImageKind,
    pub image_type: ImageType,
    pub iso_purpose: Option<IsoPurpose>,
    pub visibility: Visibility,
    pub owner_tenant_id: Option<&'a str>,
    pub note: &'a str,
    pub os_type: Option<OsType>,
    pub architecture: Option<Architecture>,
    pub platform: Option<&'a str>,
    pub version: Option<&'a str>,
    pub target_size_gb: Option<u32>,
    pub expected_sha256: Option<&'a str>,
    pub source_url: Option<&'a str>,
    pub source_url_sealed: Option<&'a str>,
    pub status: ImageStatus,
    pub operation_id: Option<&'a str>,
    /// An export's source instance, whose host's agent uploads the content.
    pub exported_from: Option<&'a str>,
    pub now: i64,
}

/// What verification found in a blob.
#[derive(Debug, Clone)]
pub struct VerifiedBlob {
    pub blob_id: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub virtual_size_bytes: u64,
    pub format: String,
}

#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    pub kind: Option<ImageKind>,
    pub image_type: Option<ImageType>,
    pub visibility: Option<Visibility>,
    pub status: Option<ImageStatus>,
    pub os_type: Option<OsType>,
    pub tag: Option<String>,
    pub q: Option<String>,
    /// The tenant the list is for (it sees what `plinth_common::image::visible_to` lets it:
    /// featured and public images, base or custom, and its own); `None` is an admin (all).
    pub viewer_tenant: Option<String>,
    /// How many images to read (a page request's `fetch`).
    pub limit: u32,
    /// The last image shown, (created_at, id): the page holds those after it, newest first.
    pub after: Option<(i64, String)>,
}

fn parse<T>(text: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    f(text).ok_or_else(|| StoreError::Corrupt(format!("{what} '{text}'")))
}

fn parse_opt<T>(
    text: Option<String>,
    what: &str,
    f: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| parse(&t, what, &f)).transpose()
}

fn record(row: &crate::db::Row) -> Result<ImageRecord, StoreError> {
    let u64_opt = |col: &str| -> Result<Option<u64>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v as u64))
    };
    let image = Image {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: parse(row.try_get("kind")?, "image kind", ImageKind::parse)?,
        image_type: parse(row.try_get("image_type")?, "image type", ImageType::parse)?,
        iso_purpose: parse_opt(
            row.try_get("iso_purpose")?,
            "iso purpose",
            IsoPurpose::parse,
        )?,
        visibility: parse(row.try_get("visibility")?, "visibility", Visibility::parse)?,
        owner_tenant_id: row.try_get("owner_tenant_id")?,
        owner_email: row.try_get("owner_email")?,
        tags: Vec::new(),
        note: row.try_get("note")?,
        os_type: parse_opt(row.try_get("os_type")?, "os type", OsType::parse)?,
        architecture: parse_opt(
            row.try_get("architecture")?,
            "architecture",
            Architecture::parse,
        )?,
        platform: row.try_get("platform")?,
        version: row.try_get("version")?,
        format: row.try_get("format")?,
        virtualization: row.try_get("virtualization")?,
        size_bytes: u64_opt("size_bytes")?,
        virtual_size_bytes: u64_opt("virtual_size_bytes")?,
        target_size_gb: row
            .try_get::<Option<i64>, _>("target_size_gb")?
            .map(|v| v as u32),
        sha256: row.try_get("sha256")?,
        source_url: row.try_get("source_url")?,
        status: parse(row.try_get("status")?, "image status", ImageStatus::parse)?,
        failure_reason: row.try_get("failure_reason")?,
        operation_id: row.try_get("operation_id")?,
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
        deleted_at: row.try_get::<Option<i64>, _>("deleted_at")?.map(rfc3339),
    };
    Ok(ImageRecord {
        image,
        blob_id: row.try_get("blob_id")?,
        pending_blob_id: row.try_get("pending_blob_id")?,
        expected_sha256: row.try_get("expected_sha256")?,
        source_url_sealed: row.try_get("source_url_sealed")?,
        status_before_delete: parse_opt(
            row.try_get("status_before_delete")?,
            "image status",
            ImageStatus::parse,
        )?,
    })
}

fn push_filters(qb: &mut QueryBuilder<'_>, f: &ImageFilter) {
    qb.push(" WHERE deleted_at IS NULL");
    if let Some(tenant) = &f.viewer_tenant {
        push_visible_to(qb, tenant);
    }
    if let Some(v) = f.kind {
        qb.push(" AND kind = ").push_bind(v.as_str());
    }
    if let Some(v) = f.image_type {
        qb.push(" AND image_type = ").push_bind(v.as_str());
    }
    if let Some(v) = f.visibility {
        qb.push(" AND visibility = ").push_bind(v.as_str());
    }
    if let Some(v) = f.status {
        qb.push(" AND status = ").push_bind(v.as_str());
    }
    if let Some(v) = f.os_type {
        qb.push(" AND os_type = ").push_bind(v.as_str());
    }
    if let Some(tag) = &f.tag {
        qb.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.tag = ",
        )
        .push_bind(tag.clone())
        .push(")");
    }
    if let Some(q) = f.q.as_deref().filter(|q| !q.is_empty()) {
        let pattern = format!(
            "%{}%",
            q.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        qb.push(" AND (LOWER(name) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR LOWER(id) LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(platform, '')) LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// ` AND (...)`: the SQL form of `plinth_common::image::visible_to` for a tenant: its own
/// images, and those whose visibility is shared, whatever their kind. The shared
/// visibilities come from `Visibility::shared_ones`, so the two cannot drift apart (a test
/// compares them over the whole table).
fn push_visible_to(qb: &mut QueryBuilder<'_>, tenant: &str) {
    qb.push(" AND (owner_tenant_id = ")
        .push_bind(tenant.to_string())
        .push(" OR visibility IN (");
    let mut shared = qb.separated(", ");
    for v in Visibility::shared_ones() {
        shared.push_bind(v.as_str());
    }
    shared.push_unseparated("))");
}

impl Store {
    /// Writes a new image, its tags, and the operation that will fill it, in one transaction.
    pub async fn create_image(
        &self,
        row: &NewImageRow<'_>,
        tags: &[String],
        op: Option<&NewOperation<'_>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        crate::db::query(
            "INSERT INTO images (id, name, kind, image_type, iso_purpose, visibility, owner_tenant_id, \
                note, os_type, architecture, platform, version, virtualization, target_size_gb, \
                expected_sha256, source_url, source_url_sealed, status, operation_id, exported_from, \
                created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'kvm', $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        )
        .bind(row.id)
        .bind(row.name)
        .bind(row.kind.as_str())
        .bind(row.image_type.as_str())
        .bind(row.iso_purpose.map(IsoPurpose::as_str))
        .bind(row.visibility.as_str())
        .bind(row.owner_tenant_id)
        .bind(row.note)
        .bind(row.os_type.map(OsType::as_str))
        .bind(row.architecture.map(Architecture::as_str))
        .bind(row.platform)
        .bind(row.version)
        .bind(row.target_size_gb.map(i64::from))
        .bind(row.expected_sha256)
        .bind(row.source_url)
        .bind(row.source_url_sealed)
        .bind(row.status.as_str())
        .bind(row.operation_id)
        .bind(row.exported_from)
        .bind(row.now)
        .bind(row.now)
        .execute(&mut tx)
        .await?;
        replace_tags(&mut tx, row.id, tags).await?;
        let data = serde_json::json!({ "created": true, "status": row.status.as_str(),
            "kind": row.kind.as_str(), "name": row.name, "visibility": row.visibility.as_str() });
        crate::events::record_change(&mut tx, crate::events::EventType::Image, row.id, data)
            .await?;
        if let Some(op) = op {
            self.insert_operation(&mut tx, op).await?;
        }
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// The instance an image is being exported from, if it is an export.
    pub async fn exported_from(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = crate::db::query("SELECT exported_from FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get("exported_from"))
            .transpose()?
            .flatten())
    }

    /// Whether an instance placed on `host`, or migrating to it, boots from `image` (what lets
    /// its agent fetch it).
    pub async fn host_uses_image(&self, host: &str, image: &str) -> Result<bool, StoreError> {
        let row = crate::db::query(
            "SELECT 1 FROM instances WHERE (host_id = $1 OR migrating_to = $1) AND image_id = $2 \
             LIMIT 1",
        )
        .bind(host)
        .bind(image)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// An image by id, tags included (recycle-bin images too).
    pub async fn image(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
        let row = crate::db::query(&format!("SELECT {COLUMNS} FROM images WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(mut rec) = row.as_ref().map(record).transpose()? else {
            return Ok(None);
        };
        rec.image.tags = self
            .tags_of(&[id.to_string()])
            .await?
            .remove(id)
            .unwrap_or_default();
        Ok(Some(rec))
    }

    async fn tags_of(&self, ids: &[String]) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut qb = QueryBuilder::new("SELECT image_id, tag FROM image_tags WHERE image_id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        list.push_unseparated(") ORDER BY tag");
        for row in qb.build().fetch_all(self.pool()).await? {
            out.entry(row.try_get("image_id")?)
                .or_default()
                .push(row.try_get("tag")?);
        }
        Ok(out)
    }

    async fn with_tags(&self, rows: Vec<crate::db::Row>) -> Result<Vec<Image>, StoreError> {
        let mut images: Vec<Image> = rows
            .iter()
            .map(|r| record(r).map(|r| r.image))
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
        let mut tags = self.tags_of(&ids).await?;
        for image in &mut images {
            image.tags = tags.remove(&image.id).unwrap_or_default();
        }
        Ok(images)
    }

    /// A page of images (newest first, with their (created_at, id) places) and how many match
    /// the filter in all.
    pub async fn list_images(
        &self,
        f: &ImageFilter,
    ) -> Result<(Vec<Keyed<i64, Image>>, u64), StoreError> {
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM images");
        push_filters(&mut count, f);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;
        let mut page = QueryBuilder::new(format!("SELECT {COLUMNS} FROM images"));
        push_filters(&mut page, f);
        push_after(&mut page, "created_at", "id", Order::Desc, f.after.as_ref());
        push_order(&mut page, "created_at", "id", Order::Desc, f.limit);
        let rows = page.build().fetch_all(self.pool()).await?;
        Ok((
            self.keyed_with_tags(rows, "created_at").await?,
            total as u64,
        ))
    }

    /// Images with their tags, each beside its place in a list ordered by `key`, then id.
    async fn keyed_with_tags(
        &self,
        rows: Vec<crate::db::Row>,
        key: &str,
    ) -> Result<Vec<Keyed<i64, Image>>, StoreError> {
        let keys: Vec<i64> = rows
            .iter()
            .map(|r| {
                r.try_get::<Option<i64>, _>(key)
                    .map(Option::unwrap_or_default)
            })
            .collect::<Result<_, _>>()?;
        let images = self.with_tags(rows).await?;
        Ok(keys
            .into_iter()
            .zip(images)
            .map(|(k, image)| ((k, image.id.clone()), image))
            .collect())
    }

    /// A page of the recycle bin (deleted custom images, all or one tenant's; last deleted
    /// first, after `after` (deleted_at, id)) and how many it holds in all.
    pub async fn recycle_bin(
        &self,
        tenant: Option<&str>,
        limit: u32,
        after: Option<&(i64, String)>,
    ) -> Result<(Vec<Keyed<i64, Image>>, u64), StoreError> {
        let filters = |q: &mut QueryBuilder<'_>| {
            q.push(" WHERE deleted_at IS NOT NULL");
            if let Some(t) = tenant {
                q.push(" AND owner_tenant_id = ").push_bind(t.to_string());
            }
        };
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM images");
        filters(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;
        let mut page = QueryBuilder::new(format!("SELECT {COLUMNS} FROM images"));
        filters(&mut page);
        push_after(&mut page, "deleted_at", "id", Order::Desc, after);
        push_order(&mut page, "deleted_at", "id", Order::Desc, limit);
        let rows = page.build().fetch_all(self.pool()).await?;
        Ok((
            self.keyed_with_tags(rows, "deleted_at").await?,
            total as u64,
        ))
    }

    /// Changes what may change in any status. `false` if there is no such image.
    pub async fn update_image(
        &self,
        id: &str,
        name: Option<&str>,
        note: Option<&str>,
        visibility: Option<Visibility>,
        tags: Option<&[String]>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let res = crate::db::query(
            "UPDATE images SET name = COALESCE($1, name), note = COALESCE($2, note), \
                visibility = COALESCE($3, visibility), updated_at = $4 WHERE id = $5",
        )
        .bind(name)
        .bind(note)
        .bind(visibility.map(Visibility::as_str))
        .bind(now)
        .bind(id)
        .execute(&mut tx)
        .await?;
        if res.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(tags) = tags {
            replace_tags(&mut tx, id, tags).await?;
        }
        // The fields the request gave, as they are now.
        let mut data = serde_json::Map::new();
        let given = [
            ("name", name.map(serde_json::Value::from)),
            ("note", note.map(serde_json::Value::from)),
            ("visibility", visibility.map(|v| v.as_str().into())),
            ("tags", tags.map(|t| t.into())),
        ];
        for (field, value) in given {
            if let Some(value) = value {
                data.insert(field.to_string(), value);
            }
        }
        crate::events::record_change(&mut tx, crate::events::EventType::Image, id, data.into())
            .await?;
        tx.commit().await?;
        self.events_committed();
        Ok(true)
    }

    /// The instances that use the image, oldest first: up to `shown` of them as `id (name)`,
    /// and how many there are in all (0: none uses it).
    pub async fn image_users(
        &self,
        id: &str,
        shown: u32,
    ) -> Result<(Vec<String>, u64), StoreError> {
        let rows = crate::db::query(
            "SELECT id, name, COUNT(*) OVER () AS total FROM instances WHERE image_id = $1 \
             ORDER BY created_at, id LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(shown.max(1)))
        .fetch_all(self.pool())
        .await?;
        let total = match rows.first() {
            Some(row) => row.try_get::<i64, _>("total")?.max(0) as u64,
            None => 0,
        };
        let mut users = Vec::with_capacity(rows.len().min(shown as usize));
        for row in rows.iter().take(shown as usize) {
            let (id, name): (String, String) = (row.try_get("id")?, row.try_get("name")?);
            users.push(format!("{id} ({name})"));
        }
        Ok((users, total))
    }

    /// Starts a copy of a custom image into a new base image (`making`), with its operation.
    pub async fn create_base_copy(
        &self,
        source: &Image,
        new_id: &str,
        name: &str,
        op: &NewOperation<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        crate::db::query(
            "INSERT INTO images (id, name, kind, image_type, iso_purpose, visibility, owner_tenant_id, note, \
                os_type, architecture, platform, version, format, virtualization, size_bytes, \
                virtual_size_bytes, target_size_gb, sha256, source_url, status, operation_id, copied_from, \
                created_at, updated_at) \
             SELECT $1, $2, $3, image_type, iso_purpose, $4, NULL, note, os_type, architecture, \
                platform, version, format, virtualization, size_bytes, virtual_size_bytes, target_size_gb, \
                sha256, source_url, $5, $6, id, $7, $8 FROM images WHERE id = $9",
        )
        .bind(new_id)
        .bind(name)
        .bind(ImageKind::Base.as_str())
        .bind(Visibility::Public.as_str())
        .bind(ImageStatus::Making.as_str())
        .bind(op.id)
        .bind(op.now)
        .bind(op.now)
        .bind(&source.id)
        .execute(&mut tx)
        .await?;
        replace_tags(&mut tx, new_id, &source.tags).await?;
        let data = serde_json::json!({ "created": true, "status": ImageStatus::Making.as_str(),
            "kind": ImageKind::Base.as_str(), "name": name,
            "visibility": Visibility::Public.as_str(), "copied_from": source.id });
        crate::events::record_change(&mut tx, crate::events::EventType::Image, new_id, data)
            .await?;
        self.insert_operation(&mut tx, op).await?;
        tx.commit().await?;
        self.events_committed();
        Ok(())
    }

    /// The custom image a base image is being copied from.
    pub async fn copied_from(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = crate::db::query("SELECT copied_from FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("copied_from")).transpose()?.flatten())
    }

    /// For tests and the instances issue: an instance row that references an image.
    pub async fn insert_instance_ref(
        &self,
        id: &str,
        tenant_id: &str,
        image_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, image_id, vcpus, memory_bytes, \
                disk_bytes, state, search_text, created_at, updated_at) \
             VALUES ($1, $2, 'vm', $3, $4, 1, 67108864, 0, 'stopped', '', $5, $6)",
        )
        .bind(id)
        .bind(id)
        .bind(tenant_id)
        .bind(image_id)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

async fn replace_tags(tx: &mut crate::db::Tx, id: &str, tags: &[String]) -> Result<(), StoreError> {
    crate::db::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for tag in tags {
        crate::db::query(
            "INSERT INTO image_tags (image_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::db::{test_desc, test_image, test_walk};

    async fn image(
        store: &Store,
        id: &str,
        created: i64,
        deleted: Option<i64>,
    ) -> Result<(), StoreError> {
        test_image(store, id).await?;
        crate::db::query("UPDATE images SET created_at = $1, deleted_at = $2 WHERE id = $3")
            .bind(created)
            .bind(deleted)
            .bind(id)
            .execute(store.pool())
            .await?;
        Ok(())
    }

    crate::db::store_test! {
    /// The image list newest first and the recycle bin last deleted first, each through
    /// images added between pages, with a filter and the total of all that match.
    async fn lists_page_by_their_keys_through_inserts(store, _dir) -> Result<(), StoreError> {
        for (id, at) in [
            ("img-1", 100),
            ("img-2", 200),
            ("img-3", 200),
            ("img-4", 50),
        ] {
            image(&store, id, at, None).await?;
        }
        for (id, at) in [("bin-1", 10), ("bin-2", 30), ("bin-3", 20)] {
            image(&store, id, 1, Some(at)).await?;
        }
        let read = |limit, after| {
            let filter = ImageFilter {
                limit,
                after,
                ..Default::default()
            };
            let store = &store;
            async move { store.list_images(&filter).await }
        };
        let between = || async {
            image(&store, "img-5", 300, None).await?;
            image(&store, "img-6", 200, None).await
        };
        let (places, total) = test_walk(read, between, test_desc).await?;
        let ids: Vec<&str> = places.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(
            (ids, total),
            (vec!["img-2", "img-3", "img-6", "img-1", "img-4"], 6)
        );
        let base = ImageFilter {
            kind: Some(ImageKind::Base),
            limit: 10,
            after: Some((100, "img-1".into())),
            ..Default::default()
        };
        let (rows, total) = store.list_images(&base).await?;
        let ids: Vec<&str> = rows.iter().map(|(_, i)| i.id.as_str()).collect();
        assert_eq!(
            (ids, total),
            (vec!["img-4"], 6),
            "deleted images are not listed"
        );

        let read = |limit, after: Option<(i64, String)>| {
            let store = &store;
            async move { store.recycle_bin(None, limit, after.as_ref()).await }
        };
        let between = || async { image(&store, "bin-4", 1, Some(15)).await };
        let (places, total) = test_walk(read, between, test_desc).await?;
        let ids: Vec<&str> = places.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!((ids, total), (vec!["bin-2", "bin-3", "bin-4", "bin-1"], 4));
        let (mine, total) = store.recycle_bin(Some("ten-x"), 10, None).await?;
        assert!(mine.is_empty() && total == 0);
        Ok(())
    }
    }
}
