//! Every kind of operation (the `kind` of an [`Operation`](super::operations::Operation)): one
//! list, so a resource that must recognise another's jobs (an instance job resuming next to
//! a drain's moves) names the kind here, not the other resource's code.

pub const IMAGE_IMPORT: &str = "image_import";
pub const IMAGE_UPLOAD: &str = "image_upload";
pub const IMAGE_COPY: &str = "image_copy";
/// An instance exported to a new custom image.
pub const IMAGE_EXPORT: &str = "image_export";
pub const INSTANCE_CREATE: &str = "instance_create";
pub const INSTANCE_START: &str = "instance_start";
pub const INSTANCE_STOP: &str = "instance_stop";
pub const INSTANCE_REBOOT: &str = "instance_reboot";
pub const INSTANCE_DELETE: &str = "instance_delete";
/// A live migration an admin started.
pub const INSTANCE_MIGRATE: &str = "instance_migrate";
/// Entering maintenance: the host's drain.
pub const HOST_DRAIN: &str = "host_drain";
pub const BAREMETAL_PREPARE: &str = "baremetal_prepare";
/// A power action on a bare-metal server (`POST /v1/baremetal/{id}/power`).
pub const BAREMETAL_POWER: &str = "baremetal_power";

/// Every kind, for checking a `kind` filter.
pub const ALL: &[&str] = &[
    IMAGE_IMPORT,
    IMAGE_UPLOAD,
    IMAGE_COPY,
    IMAGE_EXPORT,
    INSTANCE_CREATE,
    INSTANCE_START,
    INSTANCE_STOP,
    INSTANCE_REBOOT,
    INSTANCE_DELETE,
    INSTANCE_MIGRATE,
    HOST_DRAIN,
    BAREMETAL_PREPARE,
    BAREMETAL_POWER,
];
