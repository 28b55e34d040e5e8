//! Domain lifecycle by name: define, look up, start, shut down, destroy, reboot, undefine.
//! Each call looks the domain up afresh, so a caller never holds a handle across awaits, and
//! "no such domain" stays distinguishable (`LibvirtError::is_no_domain`).

use super::{Accel, Libvirt, LibvirtError, state_name};
use std::time::Duration;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::ErrorNumber;

/// A domain as libvirt reports it now.
#[derive(Debug, Clone)]
pub struct DomainStatus {
    pub uuid: String,
    /// libvirt's state name: running, shutoff, paused, ...
    pub state: &'static str,
    pub active: bool,
    pub vcpus: u32,
    pub memory_bytes: u64,
}

/// Which hypervisor a new domain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// libvirt's in-process test driver.
    Test,
    /// QEMU with hardware acceleration.
    Kvm,
    /// QEMU emulating the CPU (TCG): no /dev/kvm, or libvirt may not use it.
    Qemu,
}

impl LibvirtError {
    /// The call named a domain libvirt does not know.
    pub fn is_no_domain(&self) -> bool {
        matches!(self, LibvirtError::Virt(e) if e.code().is(ErrorNumber::NoDomain))
    }

    /// The hypervisor cannot do this at all (the test driver hot-plugs nothing; a QEMU may
    /// lack a device model): asking again will not help, so it is the caller's to know.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, LibvirtError::Virt(e) if [
            ErrorNumber::NoSupport,
            ErrorNumber::OperationUnsupported,
            ErrorNumber::ConfigUnsupported,
        ]
        .into_iter()
        .any(|n| e.code().is(n)))
    }

    /// libvirt did not answer in time (the call may still finish on its own).
    pub fn is_deadline(&self) -> bool {
        matches!(self, LibvirtError::Deadline(_))
    }
}

impl Libvirt {
    /// The hypervisor new domains should use: the test driver for `test:///`; with QEMU, what
    /// the agent was told ([`Accel`]), and for `auto` KVM where libvirt's capabilities offer
    /// it, TCG otherwise.
    pub async fn hypervisor(&self, deadline: Duration) -> Result<Hypervisor, LibvirtError> {
        let accel = self.accel;
        self.call(deadline, move |c| {
            if c.driver_type()? == "TEST" {
                return Ok(Hypervisor::Test);
            }
            match accel {
                Accel::Kvm => return Ok(Hypervisor::Kvm),
                Accel::Tcg => return Ok(Hypervisor::Qemu),
                Accel::Auto => {}
            }
            // libvirt lists <domain type='kvm'/> for a guest only when /dev/kvm is usable.
            let caps = c.capabilities()?;
            let kvm = caps.contains("<domain type='kvm'") || caps.contains("<domain type=\"kvm\"");
            Ok(if kvm && std::path::Path::new("/dev/kvm").exists() {
                Hypervisor::Kvm
            } else {
                Hypervisor::Qemu
            })
        })
        .await
    }

    /// Defines a persistent domain from `xml`.
    pub async fn define_domain(&self, xml: String, deadline: Duration) -> Result<(), LibvirtError> {
        self.call(deadline, move |c| c.define_domain_xml(&xml).map(|_| ()))
            .await
    }

    /// The domain called `name`, or `None` when there is none.
    pub async fn domain(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<Option<DomainStatus>, LibvirtError> {
        let name = name.to_string();
        self.call(deadline, move |c| match c.lookup_domain_by_name(&name) {
            Ok(dom) => status(&dom).map(Some),
            Err(e) if e.code().is(ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    /// Boots a defined domain; resumes a paused one; leaves a running one alone.
    pub async fn start_domain(&self, name: &str, deadline: Duration) -> Result<(), LibvirtError> {
        self.with_domain(name, deadline, |dom| {
            match dom.info()?.state.unwrap_or(DomainState::NoState) {
                DomainState::Running | DomainState::Blocked => Ok(()),
                DomainState::Paused => dom.resume(),
                _ if dom.is_active()? => Ok(()),
                _ => dom.create(),
            }
        })
        .await
    }

    /// Asks the guest to power off (ACPI); returns at once. A domain already off is left alone.
    pub async fn shutdown_domain(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<(), LibvirtError> {
        self.with_domain(name, deadline, |dom| {
            if dom.is_active()? {
                ignore_not_running(dom.shutdown())
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Powers the domain off now. A domain already off is left alone.
    pub async fn destroy_domain(&self, name: &str, deadline: Duration) -> Result<(), LibvirtError> {
        self.with_domain(name, deadline, |dom| {
            if dom.is_active()? {
                ignore_not_running(dom.destroy())
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Asks the guest to reboot.
    pub async fn reboot_domain(&self, name: &str, deadline: Duration) -> Result<(), LibvirtError> {
        self.with_domain(name, deadline, |dom| {
            dom.reboot(virt::sys::VIR_DOMAIN_REBOOT_DEFAULT)
        })
        .await
    }

    /// Forgets the domain's definition with its managed save, snapshot and checkpoint metadata
    /// and NVRAM. `false` when there was no such domain. The domain must be off.
    pub async fn undefine_domain(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<bool, LibvirtError> {
        let name = name.to_string();
        self.call(deadline, move |c| {
            let dom = match c.lookup_domain_by_name(&name) {
                Ok(dom) => dom,
                Err(e) if e.code().is(ErrorNumber::NoDomain) => return Ok(false),
                Err(e) => return Err(e),
            };
            // Drivers refuse flags they do not know (the test driver knows only the first
            // two), so fall back to fewer rather than fail.
            use virt::sys::*;
            let full = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | VIR_DOMAIN_UNDEFINE_NVRAM
                | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
            let basic = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
            for flags in [full, basic] {
                match dom.undefine_flags(flags) {
                    Ok(()) => return Ok(true),
                    Err(e) if e.code().is(ErrorNumber::InvalidArg) => continue,
                    Err(e) => return Err(e),
                }
            }
            dom.undefine().map(|()| true)
        })
        .await
    }

    pub(super) async fn with_domain(
        &self,
        name: &str,
        deadline: Duration,
        f: impl FnOnce(&Domain) -> Result<(), virt::error::Error> + Send + 'static,
    ) -> Result<(), LibvirtError> {
        let name = name.to_string();
        self.call(deadline, move |c: &Connect| {
            let dom = c.lookup_domain_by_name(&name)?;
            f(&dom)
        })
        .await
    }
}

fn status(dom: &Domain) -> Result<DomainStatus, virt::error::Error> {
    let info = dom.info()?;
    Ok(DomainStatus {
        uuid: dom.uuid_string()?,
        state: state_name(info.state.unwrap_or(DomainState::NoState)),
        active: dom.is_active()?,
        vcpus: info.nr_virt_cpu,
        memory_bytes: info.memory.saturating_mul(1024),
    })
}

/// A domain that went off between the check and the call is what the caller wanted.
fn ignore_not_running(result: Result<(), virt::error::Error>) -> Result<(), virt::error::Error> {
    match result {
        Err(e) if e.code().is(ErrorNumber::OperationInvalid) => Ok(()),
        other => other,
    }
}
