//! The only place that touches the `virt` crate (and, in ffi.rs, libvirt itself). libvirt
//! calls block, so each runs on the blocking pool under a deadline: a hung hypervisor costs
//! the caller a timeout, never a stuck task. One connection is shared (libvirt connections are thread-safe) and reopened when it
//! dies.

mod devices;
mod domains;
mod ffi;
mod filters;
mod migrate;
mod stats;

pub use domains::{DomainStatus, Hypervisor};
pub use migrate::{JobProgress, Migration};
use plinth_common::api::Domain;
pub use stats::{BlockStats, DomainStats, InterfaceStats};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::DomainState;

#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    #[error("libvirt call failed: {0}")]
    Virt(#[from] virt::error::Error),
    #[error("libvirt did not answer within {0:?}")]
    Deadline(Duration),
    #[error("libvirt worker failed")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Invalid(String),
}

/// What libvirt says of the node.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub model: String,
    pub driver: String,
}

#[derive(Clone)]
pub struct Libvirt {
    uri: String,
    conn: Arc<Mutex<Option<Arc<Connect>>>>,
    accel: Accel,
}

/// How QEMU runs the guests this agent defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// KVM where libvirt offers it, else TCG.
    #[default]
    Auto,
    Kvm,
    /// Emulation: slower, but it runs where (nested) KVM cannot boot a guest.
    Tcg,
}

impl Accel {
    pub fn parse(text: &str) -> Option<Accel> {
        match text {
            "auto" => Some(Accel::Auto),
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

impl Libvirt {
    pub fn new(uri: &str) -> Libvirt {
        Libvirt {
            uri: uri.to_string(),
            conn: Arc::new(Mutex::new(None)),
            accel: Accel::Auto,
        }
    }

    pub fn with_accel(mut self, accel: Accel) -> Libvirt {
        self.accel = accel;
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn connection(&self) -> Result<Arc<Connect>, virt::error::Error> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = slot.as_ref().filter(|c| c.is_alive().unwrap_or(false)) {
            return Ok(conn.clone());
        }
        // Errors come back as values; libvirt's default handler would also print each one
        // (every "no such domain" lookup) to stderr.
        virt::error::clear_error_callback();
        let conn = Arc::new(Connect::open(Some(&self.uri))?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `f` on the blocking pool with a connection, giving up after `deadline`.
    async fn call<T: Send + 'static>(
        &self,
        deadline: Duration,
        f: impl FnOnce(&Connect) -> Result<T, virt::error::Error> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let this = self.clone();
        let work = tokio::task::spawn_blocking(move || {
            let conn = this.connection()?;
            f(&conn)
        });
        match tokio::time::timeout(deadline, work).await {
            Ok(joined) => Ok(joined??),
            Err(_) => Err(LibvirtError::Deadline(deadline)),
        }
    }

    /// Opens the connection now, so a bad URI fails at start-up rather than at the first call.
    pub async fn check(&self, deadline: Duration) -> Result<(), LibvirtError> {
        self.call(deadline, |_| Ok(())).await
    }

    pub async fn node(&self, deadline: Duration) -> Result<NodeFacts, LibvirtError> {
        self.call(deadline, |c| {
            let info = c.node_info()?;
            Ok(NodeFacts {
                cpus: info.cpus,
                memory_bytes: info.memory.saturating_mul(1024),
                model: info.model,
                driver: c.driver_type()?,
            })
        })
        .await
    }

    pub async fn domains(&self, deadline: Duration) -> Result<Vec<Domain>, LibvirtError> {
        self.call(deadline, |c| {
            let mut out = Vec::new();
            for dom in c.list_all_domains(0)? {
                let info = dom.info()?;
                out.push(Domain {
                    uuid: dom.uuid_string()?,
                    name: dom.name()?,
                    state: state_name(info.state.unwrap_or(DomainState::NoState)).to_string(),
                    vcpus: info.nr_virt_cpu,
                    memory_bytes: info.memory.saturating_mul(1024),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }
}

fn state_name(state: DomainState) -> &'static str {
    match state {
        DomainState::NoState => "nostate",
        DomainState::Running => "running",
        DomainState::Blocked => "blocked",
        DomainState::Paused => "paused",
        DomainState::Shutdown => "shutdown",
        DomainState::Shutoff => "shutoff",
        DomainState::Crashed => "crashed",
        DomainState::PMSuspended => "pmsuspended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libvirt's test driver runs in-process: a real libvirt, no daemon.
    #[tokio::test]
    async fn test_driver_node_and_domains() -> Result<(), LibvirtError> {
        let lv = Libvirt::new("test:///default");
        let node = lv.node(Duration::from_secs(10)).await?;
        assert!(node.cpus > 0);
        assert!(node.memory_bytes > 0);
        assert_eq!(node.driver, "TEST");
        let domains = lv.domains(Duration::from_secs(10)).await?;
        let test = domains
            .iter()
            .find(|d| d.name == "test")
            .expect("test driver defines 'test'");
        assert_eq!(test.state, "running");
        assert!(test.vcpus > 0);
        Ok(())
    }

    /// Job numbers come through ffi.rs; the test driver has none to give, and says so. (A
    /// real libvirtd answers "no job" with a NULL array: tests/agent_migration.rs polls it.)
    #[tokio::test]
    async fn job_numbers_fail_as_errors() {
        let lv = Libvirt::new("test:///default");
        let deadline = Duration::from_secs(10);
        let err = lv
            .job_progress("test", deadline)
            .await
            .expect_err("the test driver keeps no job numbers");
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = lv
            .job_progress("no-such-domain", deadline)
            .await
            .expect_err("no domain");
        assert!(err.is_no_domain(), "{err}");
    }

    #[tokio::test]
    async fn bad_uri_is_an_error_not_a_hang() {
        let lv = Libvirt::new("bogus:///nowhere");
        assert!(lv.check(Duration::from_secs(10)).await.is_err());
    }
}
