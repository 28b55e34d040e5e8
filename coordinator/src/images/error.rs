//! What can go wrong with an image, in two kinds: a request refused (`ImageError`, which
//! becomes the one `ApiError`), and content refused or lost by a job (`ContentError`, whose
//! `reason()` is what a tenant reads while its `Display` is the detail for the log).

use crate::db::StoreError;
use crate::http::error::ApiError;
use crate::images::fetch::FetchError;
use crate::images::ingest::IngestError;
use crate::images::qemu_img::QemuImgError;
use crate::images::store::ImageTransitionError;
use plinth_common::image::{ImageEvent, ImageKind, ImageStatus, InvalidImageTransition};

/// Why an image request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Forbidden(String),
    /// The status machine refuses the change; both statuses are named.
    #[error("image {id} is {}; {} needs {}", .err.from, .err.event, .err.needs_text())]
    Transition {
        id: String,
        #[source]
        err: InvalidImageTransition,
    },
    /// Instances use it: the first few are named (`users`), and how many there are in all.
    #[error("image {id} is used by {}", in_use_by(.users, *.total))]
    InUse {
        id: String,
        users: Vec<String>,
        total: u64,
    },
    #[error(
        "image {id} is already receiving its content from another upload; one upload per image at a time"
    )]
    UploadInProgress { id: String },
    /// `code` says which content the image does not await (an upload, an export).
    #[error("{message}")]
    NotAwaiting { code: &'static str, message: String },
    #[error(
        "image {id} is a {kind} image in status {status}; only available custom images are copied"
    )]
    NotCopyable {
        id: String,
        kind: ImageKind,
        status: ImageStatus,
    },
    #[error("image {id} is {status}; only available images can be downloaded")]
    NotAvailable { id: String, status: ImageStatus },
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("the request has no Host header to build the link from")]
    NoHost,
    #[error("the download link expired; create a new one")]
    LinkExpired,
    #[error("the image has {len} bytes; ask for one range within them")]
    Range { len: u64 },
    #[error("image {id} changed while this request changed it; try again")]
    Contended { id: String },
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ImageError {
    pub fn not_found(kind: &'static str, id: &str) -> ImageError {
        ImageError::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A failed status change of image `id`; `unmet` is what a condition of the change that no
    /// longer held means for this request (an instance took the image, a writer lost its mark).
    pub fn transition(
        id: &str,
        err: ImageTransitionError,
        unmet: impl FnOnce() -> ImageError,
    ) -> ImageError {
        match err {
            ImageTransitionError::NotFound => ImageError::not_found("image", id),
            ImageTransitionError::Invalid(err) => ImageError::Transition {
                id: id.to_string(),
                err,
            },
            ImageTransitionError::Unmet => unmet(),
            ImageTransitionError::Contended => ImageError::Contended { id: id.to_string() },
            ImageTransitionError::Store(err) => err.into(),
        }
    }
}

/// `instance i-1 (web-1); delete it first`, `instances i-1 (web-1), i-2 (web-2) and 3 more;
/// delete them first`; plain `instances` when none could be named (one came and went).
fn in_use_by(users: &[String], total: u64) -> String {
    let more = total.saturating_sub(users.len() as u64);
    match (users, more) {
        ([], _) => "instances; delete them first".to_string(),
        ([one], 0) => format!("instance {one}; delete it first"),
        (named, 0) => format!("instances {}; delete them first", named.join(", ")),
        (named, more) => format!(
            "instances {} and {more} more; delete them first",
            named.join(", ")
        ),
    }
}

impl From<ImageError> for ApiError {
    fn from(err: ImageError) -> ApiError {
        let message = err.to_string();
        let conflict = |code: &'static str| ApiError::Conflict {
            code,
            message: message.clone(),
        };
        match err {
            ImageError::NotFound { kind, id } => match kind {
                "recycle_bin_entry" => {
                    ApiError::not_found_as("recycle_bin_entry", "recycle-bin entry", &id)
                }
                "export_image" => ApiError::not_found_as("export_image", "export image", &id),
                kind => ApiError::not_found(kind, &id),
            },
            ImageError::Forbidden(m) => ApiError::Forbidden(m),
            ImageError::Transition { err, .. } => conflict(match err.event {
                ImageEvent::Delete => "image_not_deletable",
                ImageEvent::ContentVerified
                | ImageEvent::Failed
                | ImageEvent::Restore { .. }
                | ImageEvent::Destroy => "invalid_image_status",
            }),
            ImageError::InUse { .. } => conflict("image_in_use"),
            ImageError::UploadInProgress { .. } => conflict("upload_in_progress"),
            ImageError::NotAwaiting { code, .. } => conflict(code),
            ImageError::NotCopyable { .. } => conflict("image_not_copyable"),
            ImageError::NotAvailable { .. } => conflict("image_not_available"),
            ImageError::Contended { .. } => conflict("image_changed"),
            ImageError::Field { field, message } => ApiError::field(field, message),
            ImageError::NoHost => ApiError::Malformed(message),
            ImageError::LinkExpired => ApiError::Gone {
                code: "link_expired",
                message,
            },
            ImageError::Range { .. } => ApiError::RangeNotSatisfiable(message),
            ImageError::Store(err) => err.into(),
            ImageError::Internal(err) => ApiError::Internal(err),
        }
    }
}

/// Why a job could not give an image its content. `Display` is the detail (paths, a tool's
/// stderr, a server's words) for the log; `reason()` is the short sentence the tenant reads
/// in `failure_reason` and in the operation's error.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("the transfer ended after {got} of {expected} bytes")]
    Short { got: u64, expected: u64 },
    #[error("SHA-256 mismatch: expected {expected}, the content has {got}")]
    Sha256 { expected: String, got: String },
    #[error("inspecting the file failed: {0}")]
    Inspect(#[source] QemuImgError),
    #[error("the file is {0}, not qcow2")]
    NotQcow2(String),
    #[error("the qcow2 refers to a backing or data file")]
    External,
    #[error("the file is not an ISO 9660 image")]
    NotIso,
    #[error("reading the staged file failed: {0}")]
    ReadStaged(#[source] std::io::Error),
    #[error("the virtual size {virtual_size} bytes exceeds the target size {target_gb} GiB")]
    TooBig { virtual_size: u64, target_gb: u32 },
    #[error("staging the content failed: {0}")]
    Stage(#[source] std::io::Error),
    #[error("putting the content in place failed: {0}")]
    Commit(#[source] std::io::Error),
    #[error("copying the content failed: {0}")]
    Copy(#[source] std::io::Error),
    #[error("the image has no source URL")]
    NoSource,
    #[error("the source URL could not be unsealed: {0}")]
    Unseal(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the image was removed")]
    Gone,
}

impl ContentError {
    /// The sentence a tenant reads: no file path, internal address or tool output.
    pub fn reason(&self) -> String {
        let retry = "; try again";
        match self {
            ContentError::Fetch(err) => err.reason(),
            ContentError::Ingest(IngestError::Read(err)) => match err.kind() {
                std::io::ErrorKind::TimedOut => "the source stopped sending data".into(),
                std::io::ErrorKind::UnexpectedEof => "the transfer ended early".into(),
                _ => "reading from the source failed".into(),
            },
            ContentError::Ingest(IngestError::TooLarge(limit)) => {
                format!("the content is larger than {limit} bytes, its target size")
            }
            ContentError::Ingest(IngestError::Write(_) | IngestError::Worker)
            | ContentError::Stage(_)
            | ContentError::Commit(_)
            | ContentError::ReadStaged(_) => {
                format!("the coordinator could not store the content{retry}")
            }
            ContentError::Short { got, expected } => {
                format!("the transfer ended early: {got} of {expected} bytes arrived")
            }
            ContentError::Sha256 { expected, got } => {
                format!("SHA-256 mismatch: expected {expected}, the content has {got}")
            }
            ContentError::Inspect(QemuImgError::Failed(_)) => {
                "the file is not a valid qcow2 image".into()
            }
            ContentError::Inspect(QemuImgError::Deadline(_)) => {
                "inspecting the file took too long; it may be damaged".into()
            }
            ContentError::Inspect(QemuImgError::Spawn(_) | QemuImgError::Output(_)) => {
                format!("the coordinator could not inspect the file{retry}")
            }
            ContentError::NotQcow2(format) => {
                // qemu-img names formats in one short word; anything else is not shown.
                let shown =
                    if format.len() <= 16 && format.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        format.as_str()
                    } else {
                        "another format"
                    };
                format!(
                    "the file is {shown}, not qcow2 (convert it with `qemu-img convert -O qcow2`)"
                )
            }
            ContentError::External => "the qcow2 refers to a backing or data file; import a \
                standalone image (`qemu-img convert -O qcow2` flattens it)"
                .into(),
            ContentError::NotIso => "the file is not an ISO 9660 image".into(),
            ContentError::TooBig {
                virtual_size,
                target_gb,
            } => format!(
                "the virtual size {:.1} GiB exceeds the target size {target_gb} GiB",
                *virtual_size as f64 / (1u64 << 30) as f64
            ),
            ContentError::Copy(_) => format!("copying the content failed{retry}"),
            ContentError::NoSource | ContentError::Unseal(_) => {
                "the image's source URL could not be read; import the image again".into()
            }
            ContentError::Store(_) => format!("the coordinator's store failed{retry}"),
            ContentError::Gone => "the image was removed".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::fetch::Fault;
    use axum::http::StatusCode;
    use std::io;

    #[test]
    fn a_refused_change_is_a_409_naming_both_statuses() {
        let err = ImageStatus::Importing
            .transition(ImageKind::Custom, ImageEvent::Delete)
            .expect_err("importing images are not deleted");
        let (status, detail) = ApiError::from(ImageError::Transition {
            id: "img-1".into(),
            err,
        })
        .detail();
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(detail.code, "image_not_deletable");
        assert_eq!(
            detail.message,
            "image img-1 is importing; delete needs import_failed or available"
        );
    }

    #[test]
    fn an_image_in_use_names_its_instances() {
        let named = |n: usize| (1..=n).map(|i| format!("inst-{i} (web-{i})")).collect();
        let cases: [(&str, Vec<String>, u64, &str); 4] = [
            (
                "one",
                named(1),
                1,
                "instance inst-1 (web-1); delete it first",
            ),
            (
                "two",
                named(2),
                2,
                "instances inst-1 (web-1), inst-2 (web-2); delete them first",
            ),
            (
                "more than shown",
                named(2),
                7,
                "instances inst-1 (web-1), inst-2 (web-2) and 5 more; delete them first",
            ),
            (
                "gone meanwhile",
                Vec::new(),
                0,
                "instances; delete them first",
            ),
        ];
        for (label, users, total, want) in cases {
            let (status, detail) = ApiError::from(ImageError::InUse {
                id: "img-1".into(),
                users,
                total,
            })
            .detail();
            assert_eq!(status, StatusCode::CONFLICT, "{label}");
            assert_eq!(detail.code, "image_in_use", "{label}");
            assert_eq!(
                detail.message,
                format!("image img-1 is used by {want}"),
                "{label}"
            );
        }
    }

    /// Each cause carries a path, an address or a tool's words in its detail; no reason does.
    #[test]
    fn reasons_show_no_paths_addresses_or_tool_output() {
        let path = "/var/lib/plinth/images/staging/blob-1.part";
        let io_err = |kind| io::Error::new(kind, format!("{path}: failed"));
        let cases: Vec<(&str, ContentError, &str)> = vec![
            (
                "qemu-img refused the file",
                ContentError::Inspect(QemuImgError::Failed(format!(
                    "qemu-img: Could not open '{path}': Unsupported qcow2 version 99"
                ))),
                "the file is not a valid qcow2 image",
            ),
            (
                "qemu-img printed nonsense",
                ContentError::Inspect(QemuImgError::Output(format!("{path} at line 1"))),
                "could not inspect",
            ),
            (
                "connection refused",
                ContentError::Fetch(FetchError::unreachable(
                    Fault::Refused,
                    "cannot fetch from 10.0.0.5: tcp connect error",
                )),
                "the source refused the connection",
            ),
            (
                "HTTP status",
                ContentError::Fetch(FetchError::unreachable(
                    Fault::Status(404),
                    "10.0.0.5 answered 404 Not Found",
                )),
                "the source answered 404 Not Found",
            ),
            (
                "FTP login",
                ContentError::Fetch(FetchError::unreachable(
                    Fault::Login,
                    "FTP server 10.0.0.5:21: logging in as u: 530 no",
                )),
                "refused the login",
            ),
            (
                "source stalled",
                ContentError::Ingest(IngestError::Read(io_err(io::ErrorKind::TimedOut))),
                "stopped sending",
            ),
            (
                "transfer cut",
                ContentError::Ingest(IngestError::Read(io_err(io::ErrorKind::UnexpectedEof))),
                "ended early",
            ),
            (
                "disk full",
                ContentError::Ingest(IngestError::Write(io_err(io::ErrorKind::StorageFull))),
                "could not store",
            ),
            (
                "staging",
                ContentError::Stage(io_err(io::ErrorKind::PermissionDenied)),
                "could not store",
            ),
            (
                "copy",
                ContentError::Copy(io_err(io::ErrorKind::NotFound)),
                "copying the content failed",
            ),
            (
                "odd format name",
                ContentError::NotQcow2(path.to_string()),
                "another format",
            ),
        ];
        for (label, err, want) in cases {
            let reason = err.reason();
            assert!(reason.contains(want), "{label}: {reason}");
            assert!(!reason.contains('/'), "{label}: a path in {reason:?}");
            assert!(
                !reason.contains("10.0.0.5"),
                "{label}: an address in {reason:?}"
            );
            assert!(
                !reason.contains("qemu-img:") && !reason.contains("tcp connect"),
                "{label}: tool output in {reason:?}"
            );
        }
    }
}
