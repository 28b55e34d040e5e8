//! The two libvirt calls the `virt` crate lacks or gets wrong, wrapped once each: the only
//! `unsafe` in the agent.

use std::ffi::{CStr, c_int, c_ulonglong};
use std::ptr;
use virt::domain::Domain;
use virt::error::Error;
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
