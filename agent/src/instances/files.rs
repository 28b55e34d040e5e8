//! An instance's files, what a create and a migration's target both need before a domain can
//! use them: the image in the host cache, and in `instances/<id>/` the qcow2 disk (an overlay
//! on the cached qcow2, or empty in front of an ISO) and the cloud-init seed. They are made in
//! a staging directory that is renamed into place whole, so `instances/<id>/` is complete
//! whenever it exists.

use super::cache::ImageFormat;
use super::request::CreateSpec;
use super::{CoordinatorLink, DISK, InstanceError, Instances, SEED, disk, modes, remove_dir, seed};
use plinth_common::api::AgentPrepared;
use std::path::{Path, PathBuf};

/// Staging directories start with '.', which no instance id may (`check_name`).
const STAGING: &str = ".staging-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFiles {
    pub disk: PathBuf,
    pub seed: PathBuf,
    /// The installer ISO (in the cache) for an instance booted from one.
    pub iso: Option<PathBuf>,
}

impl InstanceFiles {
    pub fn prepared(&self) -> AgentPrepared {
        let text = |p: &Path| p.to_string_lossy().into_owned();
        AgentPrepared {
            disk_path: text(&self.disk),
            seed_path: text(&self.seed),
            iso_path: self.iso.as_deref().map(text),
        }
    }
}

/// Whether files already in place may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Make them anew (a create: whatever an earlier, interrupted attempt left goes).
    Never,
    /// Keep them when they are what `spec` asks for (a repeated prepare answers the same).
    IfMatching,
}

impl Instances {
    /// Fetches the image into the cache (once per host) and makes the instance's directory.
    pub(super) async fn make_files(
        &self,
        spec: &CreateSpec,
        link: &CoordinatorLink,
        reuse: Reuse,
    ) -> Result<InstanceFiles, InstanceError> {
        let id = spec.instance_id.as_str();
        let image = self
            .cache
            .fetch(
                &link.client,
                &link.image_content_url(&spec.image_id),
                &spec.image,
            )
            .await
            .map_err(|source| InstanceError::Fetch {
                image: spec.image_id.clone(),
                source,
            })?;
        let backing = (spec.image.format == ImageFormat::Qcow2).then_some(image.as_path());
        let dir = self.dir_of(id);
        let files = InstanceFiles {
            disk: dir.join(DISK),
            seed: dir.join(SEED),
            iso: (spec.image.format == ImageFormat::Iso).then(|| image.clone()),
        };
        if reuse == Reuse::IfMatching && matches(&files, backing, spec.disk_bytes).await {
            return Ok(files);
        }

        let staging = self.staging_of(id);
        let made = build(spec, backing, &staging).await;
        let placed = match made {
            Ok(()) => place(&staging, &dir).await,
            Err(err) => Err(err),
        };
        if let Err(err) = placed {
            if let Err(cleanup) = remove_dir(&staging).await {
                tracing::warn!(instance = %id, error = %cleanup, "Could not remove a staging directory.");
            }
            return Err(err);
        }
        Ok(files)
    }

    /// The files of an instance whose disks stay on the shared storage `storage` (a live
    /// migration's target): they must be there, on this host's shared storage, as `spec`
    /// describes them. Nothing is made or changed: they are in use by the running guest.
    pub(super) async fn shared_files(
        &self,
        spec: &CreateSpec,
        storage: &str,
    ) -> Result<InstanceFiles, InstanceError> {
        let id = spec.instance_id.as_str();
        let refuse = |reason: String| InstanceError::NotMigratable {
            id: id.to_string(),
            reason,
        };
        if self.shared.as_deref() != Some(storage) {
            return Err(refuse(format!(
                "the source keeps its disks on shared storage {storage}, which this host does not \
                 mount (it has {})",
                self.shared.as_deref().unwrap_or("local disks")
            )));
        }
        let image = self.cache.path_of(&spec.image);
        let backing = (spec.image.format == ImageFormat::Qcow2).then_some(image.as_path());
        let dir = self.dir_of(id);
        let files = InstanceFiles {
            disk: dir.join(DISK),
            seed: dir.join(SEED),
            iso: (spec.image.format == ImageFormat::Iso).then(|| image.clone()),
        };
        let image_there = tokio::fs::try_exists(&image).await.unwrap_or(false);
        if !image_there || !matches(&files, backing, spec.disk_bytes).await {
            return Err(refuse(format!(
                "its files are not on shared storage {storage} as this host sees it ({})",
                dir.display()
            )));
        }
        Ok(files)
    }

    pub(super) fn staging_of(&self, id: &str) -> PathBuf {
        self.instances_dir.join(format!("{STAGING}{id}"))
    }
}

/// Removes staging directories a crash left in `instances` (nothing else would).
pub fn remove_staging(instances: &Path) {
    let Ok(entries) = std::fs::read_dir(instances) else {
        return;
    };
    let staged = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING));
    for entry in staged {
        if let Err(err) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!(path = %entry.path().display(), error = %err, "Could not remove a staging directory.");
        }
    }
}

/// Makes the disk and the seed in a fresh `staging` directory.
async fn build(
    spec: &CreateSpec,
    backing: Option<&Path>,
    staging: &Path,
) -> Result<(), InstanceError> {
    remove_dir(staging).await?;
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| InstanceError::Io { what, path, source }
    };
    tokio::fs::create_dir_all(staging)
        .await
        .map_err(io("creating", staging))?;
    // QEMU opens the disk and seed by their path, through this directory.
    modes::traversable_dir(staging).map_err(io("setting the mode of", staging))?;
    let disk = staging.join(DISK);
    match backing {
        Some(image) => disk::create_overlay(image, &disk, spec.disk_bytes).await,
        None => disk::create_blank(&disk, spec.disk_bytes).await,
    }
    .map_err(InstanceError::Disk)?;
    modes::private_file(&disk).map_err(io("setting the mode of", &disk))?;
    let config = seed::Seed {
        instance_id: &spec.instance_id,
        hostname: &spec.hostname,
        password: &spec.password,
        nics: &spec.nics,
    };
    seed::write(&config, &staging.join(SEED))
        .await
        .map_err(InstanceError::Seed)
}

/// Replaces `dir` with `staging`.
async fn place(staging: &Path, dir: &Path) -> Result<(), InstanceError> {
    remove_dir(dir).await?;
    tokio::fs::rename(staging, dir)
        .await
        .map_err(|source| InstanceError::Io {
            what: "moving into place",
            path: dir.to_path_buf(),
            source,
        })
}

/// The files exist, and the disk has the size and backing image `spec` asks for (qemu-img
/// makes sizes whole sectors).
async fn matches(files: &InstanceFiles, backing: Option<&Path>, disk_bytes: u64) -> bool {
    if !tokio::fs::try_exists(&files.seed).await.unwrap_or(false) {
        return false;
    }
    let Ok(info) = disk::info(&files.disk).await else {
        return false;
    };
    info.virtual_size == disk_bytes.next_multiple_of(512)
        && info.backing_file().map(Path::new) == backing
}
