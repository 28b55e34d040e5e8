//! Where the coordinator reaches an agent: its address and what it reported about live
//! migration and shared storage (read from the hosts table by the store).

/// Where the coordinator reaches a host's agent.
#[derive(Debug, Clone)]
pub struct AgentEndpoint {
    pub ip: String,
    pub port: Option<u16>,
    pub online: bool,
    /// Where other hosts' libvirtd reach this host's for a live migration (from its agent).
    pub migration_uri: Option<String>,
    pub migrate_uri: Option<String>,
    /// The shared storage the host keeps instance disks on (from its agent).
    pub shared_storage: Option<String>,
}

impl AgentEndpoint {
    /// The shared storage both hosts keep instance disks on, if they do.
    pub fn shares_storage_with(&self, other: &AgentEndpoint) -> Option<&str> {
        self.shared_storage
            .as_deref()
            .filter(|s| other.shared_storage.as_deref() == Some(*s))
    }
}

/// `ip` as it goes in a URL authority (IPv6 in brackets).
pub fn socket_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}
