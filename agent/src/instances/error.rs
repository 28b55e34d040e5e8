//! What can go wrong with an instance, by step. The API maps each variant to one HTTP status
//! (api/instances.rs); the message chain says which step failed and why.

use super::cache::FetchError;
use super::disk::DiskError;
use super::export::ExportError;
use super::seed::SeedError;
use crate::libvirt::LibvirtError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no instance {0} on this host")]
    NotFound(String),
    #[error("instance {id} is {state}; {action} needs it running")]
    BadState {
        id: String,
        state: String,
        action: &'static str,
    },
    #[error("fetching image {image}")]
    Fetch {
        image: String,
        #[source]
        source: FetchError,
    },
    #[error("making the disk")]
    Disk(#[source] DiskError),
    #[error("building the cloud-init seed")]
    Seed(#[source] SeedError),
    #[error(transparent)]
    Network(#[from] crate::network::host::NetworkError),
    #[error("{step} the domain")]
    Libvirt {
        step: &'static str,
        #[source]
        source: LibvirtError,
    },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exporting the disk")]
    Export(#[source] ExportError),
    #[error("instance {0} is migrating to another host")]
    Migrating(String),
    #[error("instance {0} has a domain on this host already")]
    Exists(String),
    #[error("instance {id} cannot migrate: {reason}")]
    NotMigratable { id: String, reason: String },
    #[error("giving it its devices")]
    Devices(#[source] crate::devices::DeviceError),
}

/// `map_err` for a libvirt call made at `step` ("defining", "starting", ...).
pub fn libvirt(step: &'static str) -> impl FnOnce(LibvirtError) -> InstanceError {
    move |source| InstanceError::Libvirt { step, source }
}
