//! The image repository. This file and the operation files it declares (create, removal,
//! transfer) are the only code that changes an image's status: the transition table
//! (`ImageStatus::transition`), the store's compare-and-swap (`Store::transition_image`), the
//! audit entry, then the job. The machinery below: where content comes from (fetch), one pass
//! that hashes and stores it (ingest), what it must be (verify, qemu-img), where it lives
//! (storage), and who may write it (writer: one at a time, and nothing orphaned).

pub mod api;
pub mod copy;
pub mod create;
pub mod error;
pub mod import;
pub mod removal;
pub mod store;
pub mod transfer;

pub mod fetch;
pub mod ingest;
pub mod qemu_img;
pub mod storage;
pub mod verify;
pub mod writer;

use crate::db::StoreError;
use crate::http::auth::Caller;
use crate::http::paging::PageRequest;
use crate::jobs::operations::Running;
use crate::secrets::Secrets;
use crate::state::AppState;
use error::{ContentError, ImageError};
use plinth_common::api::{Image, ImagePage};
use plinth_common::image::{ImageEvent, ImageKind, Viewer, Visibility};
use plinth_common::timefmt::now_ms;
use std::sync::Arc;
use std::time::Duration;
use storage::BlobStore;
use store::{ImageFilter, ImageRecord, OpEnd, StatusEffect, VerifiedBlob};
use tracing::{info, warn};

/// Idle time after which a source that sends nothing fails the import.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(60);

/// What image handlers and jobs share.
#[derive(Clone, Debug)]
pub struct ImageServices {
    pub blobs: BlobStore,
    pub secrets: Arc<Secrets>,
    /// For http(s) imports: trusts the system's roots plus any configured CA.
    pub http: reqwest::Client,
}

/// `url` with any password replaced by `***`, for display and logs.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// The client imports use: connect and idle deadlines, no overall deadline (images are large).
pub fn import_client(extra_ca_pem: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(SOURCE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5));
    if let Some(pem) = extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// Operation kinds of the image repository's jobs.
pub const IMPORT: &str = plinth_common::api::operation_kinds::IMAGE_IMPORT;
pub const UPLOAD: &str = plinth_common::api::operation_kinds::IMAGE_UPLOAD;
pub const COPY: &str = plinth_common::api::operation_kinds::IMAGE_COPY;
pub const EXPORT: &str = plinth_common::api::operation_kinds::IMAGE_EXPORT;

/// The actor audit entries name for changes the coordinator's own jobs make.
const JOBS: &str = "coordinator";

/// Starts the imports, copies and exports the lease's term does not run yet (left by the last
/// holder, or written by another coordinator's API), and fails what cannot go on: an export a
/// term that ended had started (the agent's stream to it is gone), and an upload whose
/// receiving coordinator is gone (`upload_gone`).
pub async fn resume(st: &AppState) -> anyhow::Result<()> {
    for Running { op, .. } in st.store.running_operations(IMPORT).await? {
        info!(operation = %op.id, image = %op.target_id, "Starting an unfinished import.");
        let job = import::run(st.clone(), op.target_id.clone(), op.id.clone());
        run_taking_over(st, &op.id, &op.target_id, "image import", job);
    }
    for Running { op, .. } in st.store.running_operations(COPY).await? {
        info!(operation = %op.id, image = %op.target_id, "Starting an unfinished copy to base.");
        let job = copy::resume(st.clone(), op.target_id.clone(), op.id.clone());
        run_taking_over(st, &op.id, &op.target_id, "image copy", job);
    }
    let exports = st.store.running_operations(EXPORT).await?;
    for Running { op, epoch, .. } in exports {
        match (epoch, st.store.exported_from(&op.target_id).await?) {
            (None, Some(instance)) => {
                info!(operation = %op.id, image = %op.target_id, "Starting an export.");
                let job = crate::instances::jobs::export(
                    st.clone(),
                    instance,
                    op.target_id.clone(),
                    op.id.clone(),
                );
                crate::jobs::lease::run(st, &op.id, "instance export", job);
            }
            _ => {
                warn!(operation = %op.id, image = %op.target_id, "An export was cut off by a restart.");
                let reason =
                    "the coordinator restarted during the export; export the instance again";
                interrupted(st, &op.target_id, &op.id, reason).await;
            }
        }
    }
    let uploads = st.store.running_operations(UPLOAD).await?;
    for Running {
        op,
        runner,
        created_ms,
        ..
    } in uploads
    {
        if let Some(reason) = upload_gone(st, runner.as_deref(), created_ms).await? {
            warn!(operation = %op.id, image = %op.target_id, reason, "An upload can no longer end.");
            interrupted(st, &op.target_id, &op.id, reason).await;
        }
    }
    Ok(())
}

/// Runs `job`, which rewrites image `image_id`'s content, as operation `op_id` of the lease's
/// term: once claimed, it first takes the image's content mark over from the writer of an ended
/// term.
fn run_taking_over(
    st: &AppState,
    op_id: &str,
    image_id: &str,
    name: &'static str,
    job: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (st2, image, id) = (st.clone(), image_id.to_string(), op_id.to_string());
    let job = async move {
        if taken_over(&st2, &image, &id).await {
            job.await
        }
    };
    crate::jobs::lease::run(st, op_id, name, job);
}

/// Takes over image `image_id`'s content mark from the writer of an ended term, retrying while
/// the store fails; `false` when the term ended first (the next holder picks the job up).
async fn taken_over(st: &AppState, image_id: &str, op_id: &str) -> bool {
    let term = st.jobs.token();
    loop {
        match writer::take_over(&st.store, &st.images.blobs, image_id).await {
            Ok(()) => return true,
            Err(err) => {
                warn!(operation = %op_id, image = %image_id, error = %err, "Could not take over an image's content mark; trying again.");
            }
        }
        tokio::select! {
            _ = term.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Why an upload received by `runner` (none: declared, no data yet) can no longer end, if it
/// cannot.
async fn upload_gone(
    st: &AppState,
    runner: Option<&str>,
    created_ms: i64,
) -> Result<Option<&'static str>, StoreError> {
    let sole = st.store.dialect() == crate::db::Dialect::Sqlite;
    let live = match (sole, runner) {
        (false, Some(r)) if r != st.settings.coordinator => st
            .store
            .live_coordinators(crate::jobs::lease::alive_within(st.settings.job_lease_ttl))
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
        _ => Vec::new(),
    };
    Ok(upload_verdict(&UploadSeen {
        sole,
        runner,
        me: &st.settings.coordinator,
        live: &live,
        created_ms,
        started_at: st.settings.started_at,
        now: plinth_common::timefmt::now_ms(),
    }))
}

/// A declared upload whose client sends nothing is failed after this long (PostgreSQL; on
/// SQLite the next restart fails it).
const DECLARED_UPLOAD_WAIT_MS: i64 = 3_600_000;

/// What [`upload_verdict`] weighs.
struct UploadSeen<'a> {
    /// One coordinator serves the store (SQLite).
    sole: bool,
    runner: Option<&'a str>,
    me: &'a str,
    /// The coordinators beating now (looked up only for another's upload).
    live: &'a [String],
    created_ms: i64,
    started_at: i64,
    now: i64,
}

/// On SQLite, every upload this process did not start is gone (the store has one
/// coordinator). On PostgreSQL, one whose receiver stopped beating, or is this coordinator
/// from before it started; and one declared an hour ago that no data came for.
fn upload_verdict(u: &UploadSeen<'_>) -> Option<&'static str> {
    const RESTARTED: &str = "the coordinator restarted during the upload; upload the file again";
    const NEVER_SENT: &str =
        "no content arrived within an hour of the upload's creation; upload the file again";
    let before_start = u.created_ms < u.started_at;
    match u.runner {
        _ if u.sole => before_start.then_some(RESTARTED),
        None => (u.now - u.created_ms > DECLARED_UPLOAD_WAIT_MS).then_some(NEVER_SENT),
        Some(r) if r == u.me => before_start.then_some(RESTARTED),
        Some(r) => (!u.live.iter().any(|id| id == r)).then_some(RESTARTED),
    }
}

/// How the image rules name `caller`.
pub fn viewer(caller: &Caller) -> Viewer<'_> {
    match caller.tenant_id() {
        None => Viewer::Admin,
        Some(tenant) => Viewer::Tenant(tenant),
    }
}

/// Whether `caller` may list, read and use `image`: the one rule (`Image::visible_to`):
/// admins all; a tenant the featured and public images, base or custom, and its own.
pub fn visible(caller: &Caller, image: &Image) -> bool {
    image.visible_to(viewer(caller))
}

/// Whether an instance of `tenant` may boot from `image`: the same rule, for the instance's
/// tenant whoever asks (an admin creating for a tenant cannot hand it another's private image).
pub fn usable_by(tenant: &str, image: &Image) -> bool {
    image.visible_to(Viewer::Tenant(tenant))
}

/// Whether `caller` may change or delete `image`: admins all; a tenant its own custom images.
/// Seeing an image (another tenant's public one, say) grants no right to change it.
pub fn modifiable(caller: &Caller, image: &Image) -> bool {
    match caller.tenant_id() {
        None => true,
        Some(tenant) => {
            image.kind == ImageKind::Custom && image.owner_tenant_id.as_deref() == Some(tenant)
        }
    }
}

/// The image if the caller may see it; not found otherwise (tenants learn nothing of others').
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> Result<ImageRecord, ImageError> {
    let rec = st.store.image(id).await?;
    rec.filter(|r| visible(caller, &r.image))
        .ok_or_else(|| ImageError::not_found("image", id))
}

/// The image as stored now (after a change), for the response.
pub async fn reload(st: &AppState, id: &str) -> Result<ImageRecord, ImageError> {
    st.store
        .image(id)
        .await?
        .ok_or_else(|| ImageError::not_found("image", id))
}

/// A page of the images the caller may see, by `filter` (whose `viewer_tenant` the caller
/// sets; its `limit` and `after` are `page`'s).
pub async fn list(
    st: &AppState,
    caller: &Caller,
    mut filter: ImageFilter,
    page: &PageRequest<i64>,
) -> Result<ImagePage, ImageError> {
    filter.viewer_tenant = caller.tenant_id().map(str::to_string);
    let (rows, total) = st.store.list_images(&filter).await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    let items = items.into_iter().map(|i| as_seen_by(caller, i)).collect();
    Ok(ImagePage {
        items,
        total,
        next_cursor,
    })
}

/// What `caller` reads of an image: a tenant never learns another tenant's email (a public
/// or featured image of another shows its owner's id only).
fn as_seen_by(caller: &Caller, mut image: Image) -> Image {
    if let Some(tenant) = caller.tenant_id()
        && image.owner_tenant_id.as_deref() != Some(tenant)
    {
        image.owner_email = None;
    }
    image
}

/// One image, unless it is in the recycle bin.
pub async fn show(st: &AppState, caller: &Caller, id: &str) -> Result<Image, ImageError> {
    let rec = find(st, caller, id).await?;
    if rec.image.deleted_at.is_some() {
        return Err(ImageError::not_found("image", id));
    }
    Ok(as_seen_by(caller, rec.image))
}

/// What an edit changes, checked (`api::input::changes`).
#[derive(Debug, Clone, Default)]
pub struct ImageChanges {
    pub name: Option<String>,
    pub note: Option<String>,
    pub tags: Option<Vec<String>>,
    pub visibility: Option<Visibility>,
}

/// Changes name, note, tags or visibility: what may change in any status.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    id: &str,
    changes: ImageChanges,
) -> Result<Image, ImageError> {
    let rec = find(st, caller, id).await?;
    if !modifiable(caller, &rec.image) {
        return Err(ImageError::Forbidden(format!(
            "image {id} is not yours to edit"
        )));
    }
    st.store
        .update_image(
            id,
            changes.name.as_deref(),
            changes.note.as_deref(),
            changes.visibility,
            changes.tags.as_deref(),
            now_ms(),
        )
        .await?;
    st.store
        .audit(&caller.actor(), "edit image", id, "")
        .await?;
    Ok(reload(st, id).await?.image)
}

/// A job's content is verified and in place: the image becomes available (the writer mark
/// `v.blob_id` moves into its content). `false` when the mark is gone or the image moved on.
pub(crate) async fn content_verified(
    st: &AppState,
    id: &str,
    op_id: &str,
    v: &VerifiedBlob,
) -> Result<bool, StoreError> {
    let done = st.store.complete_image(id, op_id, v, now_ms()).await?;
    if done {
        audit_job(st, "image available", id, "").await;
    }
    Ok(done)
}

/// A copy to base is in place under the writer mark `key`: the base image becomes available.
pub(crate) async fn copy_verified(
    st: &AppState,
    id: &str,
    op_id: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let done = st.store.complete_copy(id, op_id, key, now_ms()).await?;
    if done {
        audit_job(st, "image available", id, "copy to base").await;
    }
    Ok(done)
}

/// A job could not give image `id` its content: the detail goes to the log, the image and its
/// operation get the short reason (a custom image becomes `import_failed`; a base image being
/// made goes away).
pub(crate) async fn content_failed(st: &AppState, id: &str, op_id: &str, err: &ContentError) {
    let reason = err.reason();
    warn!(image = %id, operation = %op_id, error = %err, %reason, "Filling the image failed.");
    fail(st, id, op_id, &reason).await;
}

/// A job the last run left cannot go on: the image fails with `reason`.
pub(crate) async fn interrupted(st: &AppState, id: &str, op_id: &str, reason: &str) {
    fail(st, id, op_id, reason).await;
}

/// An instance export into image `id` failed before its upload ended the image (the agent
/// refused or could not be reached): `detail` goes to the log, the image and its operation get
/// a short reason. For the export job in `instances`, which holds the detail.
pub async fn export_failed(st: &AppState, id: &str, op_id: &str, detail: &dyn std::fmt::Display) {
    let reason = "the host could not export the instance's disk; export the instance again";
    warn!(image = %id, operation = %op_id, error = %detail, "Export failed.");
    fail(st, id, op_id, reason).await;
}

/// Applies `Failed` with `reason`, a sentence for the tenant. An image that moved on (its
/// content arrived meanwhile) keeps its status, and its operation is left to that change.
async fn fail(st: &AppState, id: &str, op_id: &str, reason: &str) {
    let effect = StatusEffect::Failure { reason };
    let op = OpEnd {
        id: op_id,
        error: Some(reason),
    };
    let moved = st
        .store
        .transition_image(id, |_| ImageEvent::Failed, effect, Some(op), now_ms())
        .await;
    match moved {
        Ok(_) => audit_job(st, "image failed", id, reason).await,
        // The image went away under its job: the operation still ends, with the reason.
        Err(store::ImageTransitionError::NotFound) => {
            if let Err(err) = st.store.end_operation(op_id, Some(reason), now_ms()).await {
                warn!(image = %id, operation = %op_id, error = ?err, "Could not end the operation of a removed image.");
            }
        }
        Err(err) => {
            warn!(image = %id, operation = %op_id, error = %err, "Could not record a failed image.");
        }
    }
}

/// An audit entry for a change a job made; a failure to write it is logged, not fatal.
async fn audit_job(st: &AppState, action: &str, id: &str, detail: &str) {
    if let Err(err) = st.store.audit(JOBS, action, id, detail).await {
        warn!(image = %id, error = ?err, "Could not record an audit entry.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_image;
    use plinth_common::image::visible_to;

    /// Which uploads the lease's holder fails: on SQLite those from before this start; on
    /// PostgreSQL those whose receiver is gone (or is this coordinator, restarted), and
    /// declared ones no data came for within the hour. A live peer's upload is left alone.
    #[test]
    fn uploads_are_failed_only_when_they_can_no_longer_end() {
        let live = vec!["c2".to_string()];
        let seen = |sole, runner, created_ms, now| UploadSeen {
            sole,
            runner,
            me: "c1",
            live: &live,
            created_ms,
            started_at: 1_000,
            now,
        };
        let hour = DECLARED_UPLOAD_WAIT_MS;
        assert!(upload_verdict(&seen(true, None, 999, 2_000)).is_some());
        assert!(upload_verdict(&seen(true, Some("c1"), 1_000, 2_000)).is_none());
        assert!(
            upload_verdict(&seen(false, Some("c2"), 1, 2_000)).is_none(),
            "a live peer's"
        );
        let gone = upload_verdict(&seen(false, Some("c3"), 1_500, 2_000));
        assert!(gone.is_some_and(|r| r.contains("restarted")));
        assert!(upload_verdict(&seen(false, Some("c1"), 999, 2_000)).is_some());
        assert!(upload_verdict(&seen(false, Some("c1"), 1_500, 2_000)).is_none());
        assert!(upload_verdict(&seen(false, None, 1_500, 1_500 + hour)).is_none());
        let never = upload_verdict(&seen(false, None, 1_500, 1_501 + hour));
        assert!(never.is_some_and(|r| r.contains("no content arrived")));
    }

    crate::db::store_test! {
    /// The whole table, visibility × kind × caller, through what the handlers use: the
    /// store's list filter (SQL) and `visible` (show, download, edit's first check) and
    /// `usable_by` (instance create) all agree with the one rule.
    async fn every_check_follows_the_one_rule(store, _dir) -> anyhow::Result<()> {
        for tenant in ["ten-a", "ten-b"] {
            store
                .create_tenant(tenant, &format!("{tenant}@example.com"), tenant)
                .await?;
        }
        let mut ids = Vec::new();
        for kind in ImageKind::ALL {
            for v in Visibility::ALL {
                let id = format!("img-{kind}-{v}");
                test_image(&store, &id).await?;
                let owner = (*kind == ImageKind::Custom).then_some("ten-a");
                crate::db::query(
                    "UPDATE images SET kind = $1, visibility = $2, owner_tenant_id = $3 WHERE id = $4",
                )
                .bind(kind.as_str())
                .bind(v.as_str())
                .bind(owner)
                .bind(&id)
                .execute(store.pool())
                .await?;
                ids.push((id, *kind, *v, owner));
            }
        }
        let callers = [
            Caller::Admin {
                token_id: "adm".into(),
            },
            Caller::Tenant {
                token_id: "tok-a".into(),
                tenant_id: "ten-a".into(),
            },
            Caller::Tenant {
                token_id: "tok-b".into(),
                tenant_id: "ten-b".into(),
            },
        ];
        for caller in &callers {
            let filter = ImageFilter {
                viewer_tenant: caller.tenant_id().map(str::to_string),
                limit: 100,
                ..ImageFilter::default()
            };
            let (listed, total) = store.list_images(&filter).await?;
            let listed: Vec<&str> = listed.iter().map(|(_, i)| i.id.as_str()).collect();
            let mut want = 0;
            for (id, kind, v, owner) in &ids {
                let who = caller.actor();
                let expect = match (caller.tenant_id(), v) {
                    (None, _) => true,
                    (Some(_), Visibility::Featured | Visibility::Public) => true,
                    (Some(t), Visibility::Private) => *owner == Some(t),
                };
                want += u64::from(expect);
                assert_eq!(visible_to(*v, *owner, viewer(caller)), expect, "{id} {who}");
                assert_eq!(listed.contains(&id.as_str()), expect, "list {id} {who}");
                let rec = store.image(id).await?.expect("image row");
                assert_eq!(rec.image.kind, *kind);
                // The owner's email, joined by the store, reaches admins and the owner only.
                assert_eq!(rec.image.owner_email.is_some(), owner.is_some(), "{id}");
                let shown = owner.is_some() && caller.tenant_id().is_none_or(|t| *owner == Some(t));
                let email = as_seen_by(caller, rec.image.clone()).owner_email;
                assert_eq!(email.is_some(), shown, "email of {id} for {who}");
                assert_eq!(visible(caller, &rec.image), expect, "show {id} {who}");
                if let Some(tenant) = caller.tenant_id() {
                    assert_eq!(usable_by(tenant, &rec.image), expect, "use {id} {who}");
                    // Seeing is not editing: a tenant changes its own custom images only.
                    let mine = *kind == ImageKind::Custom && *owner == Some(tenant);
                    assert_eq!(modifiable(caller, &rec.image), mine, "edit {id} {who}");
                } else {
                    assert!(modifiable(caller, &rec.image), "edit {id} {who}");
                }
            }
            assert_eq!(total, want, "total for {}", caller.actor());
        }
        Ok(())
    }
    }
}
