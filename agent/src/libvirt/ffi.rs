//! The libvirt calls the `virt` crate lacks or gets wrong, wrapped once each: the only
//! `unsafe` in the agent.

use std::ffi::{CStr, c_int, c_ulonglong};
use std::ptr;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::nodedev::NodeDevice;
use virt::sys;

/// What `virDomainGetJobStats` says of a job (the numbers plinth reads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    /// `VIR_DOMAIN_JOB_*`: none, bounded, unbounded, completed, failed, cancelled.
    pub kind: i32,
    pub time_elapsed_ms: Option<u64>,
    pub data_total: Option<u64>,
    pub data_processed: Option<u64>,
    pub data_remaining: Option<u64>,
}

/// `virDomainGetJobStats`. The `virt` crate's wrapper makes a `Vec` of the parameter array
/// libvirt allocates, which is NULL when there are none (undefined behaviour: a debug build
/// aborts the process), and frees it without its strings.
#[allow(unsafe_code)]
pub fn job_stats(dom: &Domain, flags: u32) -> Result<JobStats, Error> {
    let mut kind: c_int = 0;
    let mut params: sys::virTypedParameterPtr = ptr::null_mut();
    let mut nparams: c_int = 0;
    // SAFETY: `dom` is borrowed, so its handle stays referenced and valid for the call, and
    // the out-pointers point at live locals. On success libvirt hands over `params`: NULL,
    // or an array of `nparams` it allocated. It is only read through
    // virTypedParamsGetULLong (given the array with its length, and a live `value`), never
    // when NULL, and freed exactly once with virTypedParamsFree, as libvirt documents.
    // Failure is -1 with the calling thread's libvirt error set, which `last_error` reads on
    // this same thread.
    unsafe {
        if sys::virDomainGetJobStats(dom.as_ptr(), &mut kind, &mut params, &mut nparams, flags) < 0
        {
            return Err(Error::last_error());
        }
        let get = |name: &CStr| -> Option<u64> {
            let mut value: c_ulonglong = 0;
            let found = !params.is_null()
                && sys::virTypedParamsGetULLong(params, nparams, name.as_ptr(), &mut value) == 1;
            found.then_some(value)
        };
        let stats = JobStats {
            kind,
            time_elapsed_ms: get(sys::VIR_DOMAIN_JOB_TIME_ELAPSED),
            data_total: get(sys::VIR_DOMAIN_JOB_DATA_TOTAL),
            data_processed: get(sys::VIR_DOMAIN_JOB_DATA_PROCESSED),
            data_remaining: get(sys::VIR_DOMAIN_JOB_DATA_REMAINING),
        };
        sys::virTypedParamsFree(params, nparams);
        Ok(stats)
    }
}

/// `virDomainAbortJob`, which the `virt` crate does not wrap.
#[allow(unsafe_code)]
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `dom` is borrowed for the whole call, so its handle stays referenced and valid;
    // virDomainAbortJob only reads it, and reports failure as -1 with the calling thread's
    // libvirt error set, which `last_error` reads on this same thread.
    let ret = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// `virNodeDeviceDefineXML` (libvirt 7.3+): a persistent node device, such as an mdev that
/// libvirt (through mdevctl) brings back at boot. The `virt` crate exposes it only raw.
#[allow(unsafe_code)]
pub fn define_node_device(conn: &Connect, xml: &CStr) -> Result<NodeDevice, Error> {
    // SAFETY: `conn` is borrowed for the call, so its handle stays valid; `xml` is a
    // NUL-terminated string that outlives the call and libvirt only reads it. On success
    // libvirt returns a new reference to the device, which `NodeDevice::from_ptr` takes
    // over (and frees once when dropped); on failure it returns NULL with the calling
    // thread's libvirt error set, which `last_error` reads on this same thread.
    let dev = unsafe { sys::virNodeDeviceDefineXML(conn.as_ptr(), xml.as_ptr(), 0) };
    if dev.is_null() {
        return Err(Error::last_error());
    }
    // SAFETY: `dev` is the non-NULL reference libvirt just handed over, owned by no one else.
    Ok(unsafe { NodeDevice::from_ptr(dev) })
}

/// `virNodeDeviceSetAutostart`: start the defined device when the host boots.
#[allow(unsafe_code)]
pub fn set_node_device_autostart(dev: &NodeDevice, on: bool) -> Result<(), Error> {
    // SAFETY: `dev` is borrowed for the whole call, so its handle stays referenced and
    // valid; libvirt reports failure as -1 with the thread's error set.
    let ret = unsafe { sys::virNodeDeviceSetAutostart(dev.as_ptr(), c_int::from(on)) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// `virNodeDeviceUndefine`: forget a persistent node device's definition.
#[allow(unsafe_code)]
pub fn undefine_node_device(dev: &NodeDevice) -> Result<(), Error> {
    // SAFETY: as for `set_node_device_autostart`: a borrowed, valid handle; -1 and the
    // thread's error on failure.
    let ret = unsafe { sys::virNodeDeviceUndefine(dev.as_ptr(), 0) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}
