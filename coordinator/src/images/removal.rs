//! Deleting images (SPEC §5): base images only when available, and then for good; custom images
//! when available or import_failed, into their tenant's recycle bin; never while an instance
//! uses them. The recycle bin restores or destroys.

use crate::http::auth::Caller;
use crate::http::paging::PageRequest;
use crate::images::error::ImageError;
use crate::images::store::{ImageRecord, ImageTransitionError, StatusEffect};
use crate::images::{find, modifiable, reload};
use crate::state::AppState;
use plinth_common::api::{BatchItem, Image, ImagePage};
use plinth_common::ids::ImageId;
use plinth_common::image::{ImageEvent, ImageKind, ImageStatus};
use plinth_common::timefmt::now_ms;
use tracing::warn;

/// How many of the instances that keep an image from deletion its refusal names.
const SHOWN_USERS: u32 = 5;

/// Deletes one image: a custom image goes to the recycle bin, a base image is destroyed.
pub async fn delete(st: &AppState, caller: &Caller, id: &str) -> Result<(), ImageError> {
    let rec = find(st, caller, id).await?;
    if rec.image.deleted_at.is_some() {
        return Err(ImageError::not_found("image", id));
    }
    if !modifiable(caller, &rec.image) {
        return Err(ImageError::Forbidden(format!(
            "image {id} is not yours to delete"
        )));
    }
    let (users, total) = st.store.image_users(id, SHOWN_USERS).await?;
    if total > 0 {
        return Err(ImageError::InUse {
            id: id.to_string(),
            users,
            total,
        });
    }
    let kind = rec.image.kind;
    let effect = StatusEffect::Bin {
        recycle: kind == ImageKind::Custom,
    };
    let moved = st
        .store
        .transition_image(id, |_| ImageEvent::Delete, effect, None, now_ms())
        .await;
    if let Err(ImageTransitionError::Unmet) = moved {
        // An instance came to use it meanwhile: name it.
        let (users, total) = st.store.image_users(id, SHOWN_USERS).await?;
        return Err(ImageError::InUse {
            id: id.to_string(),
            users,
            total,
        });
    }
    moved.map_err(|err| {
        ImageError::transition(id, err, || ImageError::InUse {
            id: id.to_string(),
            users: Vec::new(),
            total: 0,
        })
    })?;
    if kind == ImageKind::Base {
        purge(st, &rec).await?;
    }
    st.store
        .audit(&caller.actor(), "delete image", id, "")
        .await?;
    Ok(())
}

/// Deletes each image of `ids` and reports each one's outcome.
pub async fn batch_delete(st: &AppState, caller: &Caller, ids: Vec<String>) -> Vec<BatchItem> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let result = match ImageId::parse(&id) {
            Some(typed) => delete(st, caller, &typed).await,
            None => Err(ImageError::Field {
                field: "ids",
                message: format!("'{}' is not an image id", id.escape_debug()),
            }),
        };
        out.push(BatchItem {
            deleted: result.is_ok(),
            error: result
                .err()
                .map(|e| crate::http::error::ApiError::from(e).detail().1),
            id,
        });
    }
    out
}

/// A page of the deleted custom images: a tenant's own, or all for admins.
pub async fn recycle_bin(
    st: &AppState,
    caller: &Caller,
    page: &PageRequest<i64>,
) -> Result<ImagePage, ImageError> {
    let (rows, total) = st
        .store
        .recycle_bin(caller.tenant_id(), page.fetch(), page.after.as_ref())
        .await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(ImagePage {
        items,
        total,
        next_cursor,
    })
}

/// The image if it is in the recycle bin and the caller's to restore or destroy.
async fn binned(st: &AppState, caller: &Caller, id: &str) -> Result<ImageRecord, ImageError> {
    let rec = find(st, caller, id).await?;
    if rec.image.deleted_at.is_none() || !modifiable(caller, &rec.image) {
        return Err(ImageError::not_found("recycle_bin_entry", id));
    }
    Ok(rec)
}

/// Takes an image out of the recycle bin, back to the status it had.
pub async fn restore(st: &AppState, caller: &Caller, id: &str) -> Result<Image, ImageError> {
    binned(st, caller, id).await?;
    let event = |rec: &ImageRecord| ImageEvent::Restore {
        // A row without the status it left cannot say where to go back: the table refuses.
        before: rec.status_before_delete.unwrap_or(ImageStatus::Deleting),
    };
    st.store
        .transition_image(id, event, StatusEffect::Unbin, None, now_ms())
        .await
        .map_err(|err| {
            ImageError::transition(id, err, || ImageError::not_found("recycle_bin_entry", id))
        })?;
    st.store
        .audit(&caller.actor(), "restore image", id, "")
        .await?;
    Ok(reload(st, id).await?.image)
}

/// Destroys an image in the recycle bin: its row, then its content, go for good.
pub async fn destroy(st: &AppState, caller: &Caller, id: &str) -> Result<(), ImageError> {
    let rec = binned(st, caller, id).await?;
    purge(st, &rec).await?;
    st.store
        .audit(&caller.actor(), "destroy image", id, "")
        .await?;
    Ok(())
}

/// Removes a `deleting` image: the row first, so that no reader finds it without content, then
/// the blob; a blob left by a failure here is one no row names, which the next start-up sweeps.
async fn purge(st: &AppState, rec: &ImageRecord) -> Result<(), ImageError> {
    let id = &rec.image.id;
    st.store
        .transition_image(
            id,
            |_| ImageEvent::Destroy,
            StatusEffect::Remove,
            None,
            now_ms(),
        )
        .await
        .map_err(|err| {
            ImageError::transition(id, err, || ImageError::Contended { id: id.clone() })
        })?;
    if let Some(blob) = &rec.blob_id
        && let Err(err) = st.images.blobs.delete(blob).await
    {
        warn!(image = %id, blob = %blob, error = %err, "Could not remove a destroyed image's content; the next start-up sweeps it.");
    }
    Ok(())
}
