//! The coordinator's data directory: what lives where.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir(root.into())
    }
    pub fn root(&self) -> &Path {
        &self.0
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.0.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.0.join("server.key")
    }
    /// The coordinator's client certificate (role `coordinator`), for calling agents.
    pub fn client_cert(&self) -> PathBuf {
        self.0.join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.0.join("client.key")
    }
    pub fn database(&self) -> PathBuf {
        self.0.join("plinth.db")
    }
    /// The master key sealed values and download links derive from.
    pub fn master_key(&self) -> PathBuf {
        self.0.join("master.key")
    }
    /// Image content (the local blob store).
    pub fn images(&self) -> PathBuf {
        self.0.join("images")
    }
    pub fn config(&self) -> PathBuf {
        self.0.join("coordinator.toml")
    }
    /// Written once the HTTPS listener is bound: its address (useful with port 0).
    pub fn bound_address(&self) -> PathBuf {
        self.0.join("coordinator.addr")
    }
    /// Written once the `/metrics` listener is bound (when configured): its address.
    pub fn metrics_address(&self) -> PathBuf {
        self.0.join("metrics.addr")
    }
    pub fn is_initialised(&self) -> bool {
        self.ca_cert().exists()
    }
}

pub use plinth_common::fsutil::write_file;
